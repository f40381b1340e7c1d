"""Augmented copies of recorded speech: each clip of a manifest again through a telephone line,
a room, noise or another speaking rate, so that a few hours of real voices count several times
in training (`clasp dataset augment`).

Each copy's augmentation is drawn from the seed, the copy number and the clip's id, so a rerun
makes the same audio and keeps what an earlier run finished. The copies go into a manifest of
their own beside their audio; train on it together with the original manifest.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import UsageError
from ..fsutil import atomic_path
from ..manifest import Utterance, read_manifest, write_manifest
from .augment import AugmentConfig, apply_plan, draw_plan

BABBLE_SOURCES = 8  # other clips of the manifest talked over a copy that gets babble noise


@dataclass(frozen=True)
class CopiesConfig:
    manifest: Path
    out: Path
    copies: int = 2
    seed: int = 0
    # Real voices' usual training chain: the phone line the Asterisk prompts come through, other
    # people talking, a room, a codec, a faster or slower speaker.
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(noise="babble", phone_prob=0.3, speed_prob=0.2))


@dataclass
class CopiesSummary:
    manifest: Path
    written: int = 0
    made: int = 0
    kept: int = 0
    hours: float = 0.0
    seconds_elapsed: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (clip id, reason)

    def to_dict(self) -> dict:
        return {"manifest": str(self.manifest), "written": self.written, "made": self.made, "kept": self.kept,
                "hours": round(self.hours, 4), "seconds": round(self.seconds_elapsed, 1),
                "skipped": len(self.skipped), "skipped_examples": [list(s) for s in self.skipped[:20]]}


def _copy_rng(seed: int, copy: int, clip_id: str) -> np.random.Generator:
    digest = hashlib.sha256(clip_id.encode("utf-8")).digest()
    return np.random.default_rng([seed, copy, int.from_bytes(digest[:8], "little")])


def _file_name(u: Utterance, copy: int, plan_key: dict) -> str:
    """A name from the clip, the copy and what was done to it: a changed plan never reuses audio."""
    tag = hashlib.sha256(json.dumps([u.id, u.audio, copy, plan_key], sort_keys=True).encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in u.id)[:80]
    return f"{stem}-c{copy}-{tag}.flac"


def make_copies(cfg: CopiesConfig, progress: Callable[[int, int], None] | None = None) -> CopiesSummary:
    """Write `cfg.copies` augmented copies of every clip of `cfg.manifest` into `cfg.out`
    (audio/ and a manifest named after the source's), keeping those an earlier run made."""
    import soundfile as sf

    from ..audio import AudioError, load_audio

    if cfg.copies < 1:
        raise UsageError(f"--copies must be at least 1 (got {cfg.copies})")
    if not cfg.augment.active:
        raise UsageError("every augmentation is off: the copies would be the clips themselves")
    t0 = time.perf_counter()
    source = Path(cfg.manifest)
    utts = read_manifest(source)
    if not utts:
        raise UsageError(f"{source}: the manifest holds no clips")
    out = Path(cfg.out)
    summary = CopiesSummary(manifest=out / source.name)
    if summary.manifest.resolve() == source.resolve():
        raise UsageError(f"--out {out} holds the source manifest itself; give another folder")
    root = source.resolve().parent

    def clip(u: Utterance) -> np.ndarray:
        return load_audio(u.audio_path(root), SAMPLE_RATE)

    babble: list[tuple[str, np.ndarray]] = []  # (clip id, its audio)
    if cfg.augment.noise == "babble":
        rng = np.random.default_rng([cfg.seed, 7])
        for i in rng.permutation(len(utts))[: BABBLE_SOURCES * 2]:
            try:
                babble.append((utts[int(i)].id, clip(utts[int(i)])))
            except AudioError:
                continue
            if len(babble) == BABBLE_SOURCES:
                break
    rows: list[Utterance] = []
    total = len(utts) * cfg.copies
    done = 0
    for u in utts:
        wave = None
        for k in range(1, cfg.copies + 1):
            plan = draw_plan(cfg.augment, _copy_rng(cfg.seed, k, u.id))
            path = out / "audio" / _file_name(u, k, plan.key())
            if path.exists():
                frames = sf.info(str(path)).frames
                summary.kept += 1
            else:
                if wave is None:
                    try:
                        wave = clip(u)
                    except AudioError as e:
                        summary.skipped.append((u.id, str(e)))
                        done += cfg.copies - k + 1
                        break
                # The clip itself is never its own babble: other lines talk over it.
                others = [b for clip_id, b in babble if clip_id != u.id]
                y = apply_plan(wave, plan, SAMPLE_RATE, babble_sources=others or None)
                # Written under a temporary name and renamed: a killed run leaves no half file.
                with atomic_path(path) as tmp:
                    sf.write(str(tmp), y, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
                frames = len(y)
                summary.made += 1
            rows.append(replace(u, id=f"{u.id}~c{k}", audio=f"audio/{path.name}", duration=frames / SAMPLE_RATE))
            done += 1
            if progress is not None:
                progress(done, total)
    summary.written = write_manifest(summary.manifest, rows)
    summary.hours = sum(r.duration for r in rows) / 3600
    summary.seconds_elapsed = time.perf_counter() - t0
    return summary
