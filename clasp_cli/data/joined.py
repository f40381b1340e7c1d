"""Passage samples: 2-4 utterances of one voice joined with natural pauses, like what gets indexed.

A search index embeds windows cut from long recordings, which often hold more than one
sentence. Training only on single sentences never shows the model such a window, so these
samples (target: the joined text) are mixed into training. Utterances are joined only within
one manifest (one split) and one voice, so no test sentence or voice can leak in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..fsutil import atomic_path
from ..manifest import Utterance, read_manifest, write_manifest

SAMPLE_RATE = 16_000


@dataclass
class JoinConfig:
    manifest: Path
    out: Path  # folder: passages.jsonl + audio/
    n: int = 2000
    min_parts: int = 2
    max_parts: int = 4
    min_seconds: float = 3.0
    max_seconds: float = 15.0
    pause: tuple[float, float] = (0.25, 0.9)  # seconds of near-silence between sentences
    seed: int = 0


def plan_passages(utts: list[Utterance], cfg: JoinConfig) -> list[list[int]]:
    """Groups of utterance indices (same voice, total length within bounds), drawn from the seed."""
    rng = np.random.default_rng(cfg.seed)
    by_voice: dict[str, list[int]] = {}
    for i, u in enumerate(utts):
        by_voice.setdefault(f"{u.voice}|{u.lang}", []).append(i)
    voices = sorted(v for v, ids in by_voice.items() if len(ids) >= cfg.min_parts)
    plans: list[list[int]] = []
    tries = 0
    while voices and len(plans) < cfg.n and tries < cfg.n * 20:
        tries += 1
        ids = by_voice[voices[int(rng.integers(len(voices)))]]
        k = int(rng.integers(cfg.min_parts, cfg.max_parts + 1))
        group = [ids[int(j)] for j in rng.choice(len(ids), size=min(k, len(ids)), replace=False)]
        total = sum(utts[i].duration for i in group) + 0.5 * (len(group) - 1)
        while len(group) > cfg.min_parts and total > cfg.max_seconds:
            total -= utts[group.pop()].duration + 0.5
        if cfg.min_seconds <= total <= cfg.max_seconds:
            plans.append(group)
    return plans


def join_waves(waves: list[np.ndarray], pauses, seed: int, lead: float = 0.0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Waves joined with the given pauses (seconds) of room tone; returns the audio and each part's span.

    `lead` seconds of room tone go before the first part and after the last. The tone has its own
    generator (from `seed`): what one file holds must not depend on which files a rerun skips.
    """
    tone = np.random.default_rng(seed)

    def gap(seconds: float) -> np.ndarray:
        # Room tone, not digital silence: real pauses are never exactly zero.
        return tone.normal(0, 1e-3, int(seconds * SAMPLE_RATE)).astype(np.float32)

    pieces, spans, pos = [gap(lead)], [], int(lead * SAMPLE_RATE)
    for j, w in enumerate(waves):
        spans.append((pos / SAMPLE_RATE, (pos + w.size) / SAMPLE_RATE))
        pieces.append(w)
        pos += w.size
        if j < len(waves) - 1:
            pieces.append(gap(float(pauses[j])))
            pos += pieces[-1].size
    pieces.append(gap(lead))
    return np.concatenate(pieces), spans


def build_passages(cfg: JoinConfig, progress: Callable[[int, int], None] | None = None) -> tuple[Path, list[str]]:
    """Write the joined audio (FLAC, resumable: finished files are kept) and passages.jsonl.

    Returns the manifest and one line per passage left out because a part would not decode: one
    bad recording must not cost the rest of the corpus."""
    import soundfile as sf

    from ..audio import load_audio
    from ..errors import AudioError

    manifest = Path(cfg.manifest)
    utts = read_manifest(manifest)
    plans = plan_passages(utts, cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    out_items: list[Utterance] = []
    skipped: list[str] = []
    audio_dir = cfg.out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    for n, group in enumerate(plans):
        parts = [utts[i] for i in group]
        pauses = rng.uniform(*cfg.pause, size=len(parts) - 1)
        digest = hashlib.sha1(repr(([u.id for u in parts], np.round(pauses, 3).tolist())).encode()).hexdigest()[:10]
        path = audio_dir / f"passage-{n:06d}-{digest}.flac"
        if not path.exists():
            try:
                waves = [load_audio(u.audio_path(manifest.parent), SAMPLE_RATE) for u in parts]
            except AudioError as e:
                skipped.append(str(e))
                continue
            wave, _ = join_waves(waves, pauses, seed=int(digest, 16))
            with atomic_path(path) as tmp:
                sf.write(str(tmp), wave, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            duration = wave.size / SAMPLE_RATE
        else:
            duration = sf.info(str(path)).duration
        out_items.append(Utterance(
            id=f"passage-{n:06d}", audio=path.relative_to(cfg.out).as_posix(), text=" ".join(u.text for u in parts),
            lang=parts[0].lang, voice=parts[0].voice, engine=parts[0].engine, domain="passage",
            duration=round(duration, 3), split=parts[0].split,
        ))
        if progress:
            progress(n + 1, len(plans))
    target = cfg.out / "passages.jsonl"
    write_manifest(target, out_items)
    return target, skipped
