"""A test archive of long recordings, and passage-level scoring: how search does on whole programs.

`build_archive` joins a manifest's utterances (normally the held-out test split) into programs:
one voice each, sentences in a row with natural pauses, like a radio segment or a lecture; or,
where every utterance names its episode (a game level's dialogue), one program per episode with
its lines in script order. It
records where each sentence lies. Every sentence is then a query (its text and each of its
translations), and a search answers it when a hit lies in the right program and covers at
least half of that sentence (`hit_rank`). Nothing here tunes anything: the test split is only
ever measured.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .fsutil import atomic_path, atomic_write_text
from .manifest import read_manifest

SAMPLE_RATE = 16_000
ARCHIVE_JSON = "archive.json"


@dataclass
class ArchiveConfig:
    manifest: Path
    out: Path
    per_program: int = 10  # sentences per program
    pause: tuple[float, float] = (0.4, 1.2)  # seconds between sentences
    lead: float = 0.5  # room tone at each end of a program
    seed: int = 0


@dataclass
class Sentence:
    id: str
    text: str
    lang: str
    start: float
    end: float
    translations: dict[str, str] = field(default_factory=dict)


@dataclass
class Program:
    path: str  # relative to the archive folder
    voice: str
    duration: float
    sentences: list[Sentence]


def spread(programs: Sequence[Program], n: int) -> list[Program]:
    """n programs taken evenly through the list: programs come grouped by voice, so the first n
    would hear only the first few voices."""
    return list(programs[:: max(1, len(programs) // n)][:n])


# Defaults are tuned on archives joined from these, never from test: the synthetic English and
# multilingual validation splits, and short English prompts in Kokoro's natural voices, which no
# shipped model has heard (`make dataset-kokoro-prompts`): English voices as real ones sound to it.
KOKORO_PROMPTS = Path("data/kokoro-prompts-en/val.jsonl")
VALIDATION_MANIFESTS = (Path("data/synth/val.jsonl"), Path("data/synth-ml/val.jsonl"), KOKORO_PROMPTS)
# Real voices for validation: the Asterisk phone prompts in Italian and Russian (`clasp dataset
# import asterisk`). English, French and Spanish prompts are kept for reporting, never tuned on.
REAL_VALIDATION_MANIFESTS = (Path("data/asterisk/it.jsonl"), Path("data/asterisk/ru.jsonl"))
# Whole-utterance validation (`clasp benchmark`'s setting) for the fusion: real and natural voices.
UTTERANCE_VALIDATION_MANIFESTS = (*REAL_VALIDATION_MANIFESTS, KOKORO_PROMPTS)


def tuning_archive(manifest: Path, n_programs: int, root: Path = Path("data")) -> tuple[Path, list[Program]]:
    """The archive a tuning script builds from a validation manifest (its folder is shared by
    every such script, so each reuses the programs the others wrote) and n of its programs,
    spread over the voices."""
    work = Path(root) / f"arch-tune-{manifest.parent.name}-{manifest.stem}"
    return work, spread(build_archive(ArchiveConfig(manifest=manifest, out=work)), n_programs)


def build_archive(cfg: ArchiveConfig, progress: Callable[[int, int], None] | None = None) -> list[Program]:
    """Write programs/*.flac and archive.json (resumable: finished programs are kept)."""
    import soundfile as sf

    from .audio import load_audio
    from .data.joined import join_waves

    manifest = Path(cfg.manifest)
    utts = read_manifest(manifest)
    rng = np.random.default_rng(cfg.seed)
    if utts and all(u.episode for u in utts):
        groups = _episodes(utts)
    else:
        by_voice: dict[str, list] = {}
        for u in utts:
            by_voice.setdefault(u.voice or "unknown", []).append(u)
        groups = []
        for voice in sorted(by_voice):
            us = by_voice[voice]
            us = [us[int(i)] for i in rng.permutation(len(us))]
            groups += [(voice, us[i : i + cfg.per_program]) for i in range(0, len(us), cfg.per_program)]
    (cfg.out / "programs").mkdir(parents=True, exist_ok=True)
    programs = []
    for n, (voice, parts) in enumerate(groups):
        pauses = rng.uniform(*cfg.pause, size=max(0, len(parts) - 1))
        digest = hashlib.sha1(repr(([u.id for u in parts], np.round(pauses, 3).tolist(), cfg.lead)).encode()).hexdigest()[:10]
        rel = f"programs/program-{n:04d}-{digest}.flac"
        path = cfg.out / rel
        waves = [load_audio(u.audio_path(manifest.parent), SAMPLE_RATE) for u in parts]
        wave, spans = join_waves(waves, pauses, seed=int(digest, 16), lead=cfg.lead)
        if not path.exists():
            with atomic_path(path) as tmp:
                sf.write(str(tmp), wave, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        programs.append(Program(rel, voice, round(wave.size / SAMPLE_RATE, 3), [
            Sentence(u.id, u.text, u.lang, round(a, 3), round(b, 3), dict(u.translations)) for u, (a, b) in zip(parts, spans)
        ]))
        if progress:
            progress(n + 1, len(groups))
    atomic_write_text(cfg.out / ARCHIVE_JSON, json.dumps([_program_dict(p) for p in programs], ensure_ascii=False, indent=1) + "\n")
    return programs


def _episodes(utts: Sequence) -> list[tuple[str, list]]:
    """One program per episode (a game level's dialogue), its lines in manifest (script) order and
    its voices all in it, as a recorded scene has them."""
    groups: dict[str, list] = {}
    for u in utts:
        groups.setdefault(u.episode, []).append(u)
    return [("+".join(sorted({u.voice or "unknown" for u in us})), us) for us in groups.values()]


def _program_dict(p: Program) -> dict:
    return {"path": p.path, "voice": p.voice, "duration": p.duration, "sentences": [vars(s) for s in p.sentences]}


def load_archive(folder: Path) -> list[Program]:
    rows = json.loads((Path(folder) / ARCHIVE_JSON).read_text(encoding="utf-8"))
    return [Program(r["path"], r["voice"], r["duration"], [Sentence(**s) for s in r["sentences"]]) for r in rows]


@dataclass(frozen=True)
class Query:
    text: str
    lang: str  # the query's language ("en" for the sentence itself when it is English)
    program: str  # absolute path of the right recording
    start: float
    end: float


def queries(programs: Sequence[Program], root: Path, langs: Sequence[str] | None = None) -> list[Query]:
    """Each sentence's own text, and each translation it has, as a query for that sentence."""
    out = []
    for p in programs:
        path = str((Path(root) / p.path).resolve())
        for s in p.sentences:
            for lang, text in [(s.lang, s.text), *sorted(s.translations.items())]:
                if langs is None or lang in langs:
                    out.append(Query(text, lang, path, s.start, s.end))
    return out


def hit_rank(query: Query, hits: Sequence[tuple[str, float, float]], min_cover: float = 0.5) -> int | None:
    """1-based rank of the first hit (path, start, end) covering at least `min_cover` of the sentence."""
    need = min_cover * (query.end - query.start)
    for rank, (path, start, end) in enumerate(hits, 1):
        if path == query.program and min(end, query.end) - max(start, query.start) >= need:
            return rank
    return None


def passage_scores(ranks: Sequence[int | None]) -> dict:
    """HITS@1, HITS@5 and MRR over queries; a query whose sentence was not found scores 0."""
    r = np.array([x if x is not None else 0 for x in ranks], dtype=np.float64)
    found = r > 0
    n = len(r)
    if n == 0:
        return {"n": 0, "hits@1": 0.0, "hits@5": 0.0, "mrr": 0.0}
    return {
        "n": n,
        "hits@1": round(float(np.mean(found & (r == 1))), 4),
        "hits@5": round(float(np.mean(found & (r <= 5))), 4),
        "mrr": round(float(np.mean(np.where(found, 1.0 / np.maximum(r, 1), 0.0))), 4),
    }


# -- measuring segmentations in memory (choosing defaults; the benchmark uses the real index) -----


@dataclass
class ProgramWindows:
    """Every window of some programs, in order: where it lies, its CLASP vector and, when asked,
    what Whisper heard in it."""

    paths: list[str]
    spans: list[tuple[float, float]]
    speech: np.ndarray  # [windows, dim], unit norm
    texts: list[str]  # empty unless a transcriber was given
    audio_s: float  # seconds of audio in the windows
    asr_s: float  # seconds the transcriber took


def embed_programs(
    model,
    programs: Sequence[Program],
    root: Path,
    segment: Callable[[Path], list],
    transcribe: Callable[[list[np.ndarray]], list[str]] | None = None,
    on_program: Callable[[int, int], None] | None = None,
) -> ProgramWindows:
    """Cut each program with `segment`, embed every window and, with `transcribe`, read it."""
    import time

    from .passages import iter_passage_audio

    paths, spans, speech, texts = [], [], [], []
    audio_s = asr_s = 0.0
    for n, p in enumerate(programs):
        path = (Path(root) / p.path).resolve()
        windows = segment(path)
        waves = [w for _, w in iter_passage_audio(path, windows, model.config.sample_rate)]
        speech.append(model.embed_audio(waves))
        if transcribe is not None:
            t = time.perf_counter()
            texts += transcribe(waves)
            asr_s += time.perf_counter() - t
        audio_s += sum(w.size for w in waves) / model.config.sample_rate
        paths += [str(path)] * len(windows)
        spans += [(w.start, w.end) for w in windows]
        if on_program:
            on_program(n + 1, len(programs))
    vecs = np.concatenate(speech) if speech else np.zeros((0, model.dim), dtype=np.float32)
    return ProgramWindows(paths, spans, vecs, texts, audio_s, asr_s)


def evaluate_segmentation(
    model,
    programs: Sequence[Program],
    root: Path,
    segment: Callable[[Path], list],
    qs: Sequence[Query],
    transcriber=None,
    top_k: int = 10,
    on_program: Callable[[int, int], None] | None = None,
) -> dict:
    """Passage scores of CLASP (and of transcribe-then-embed on the same windows, when a
    transcriber is given) with brute-force ranking over every window of every program."""
    got = embed_programs(model, programs, root, segment, transcriber.transcribe if transcriber is not None else None, on_program)
    q = model.embed_text([x.text for x in qs])
    systems = {"clasp": got.speech}
    if transcriber is not None:
        t = model.embed_text(got.texts)
        systems["asr"] = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-9)
    out: dict = {"windows": len(got.spans), "mean_window_s": round(float(np.mean([b - a for a, b in got.spans])), 2)}
    for name, vecs in systems.items():
        out[name] = scores_by_lang(rank_windows(q, vecs, got.paths, got.spans, qs, top_k), qs)
    return out


def rank_windows(query_vecs: np.ndarray, window_vecs: np.ndarray, paths: Sequence[str],
                 spans: Sequence[tuple[float, float]], qs: Sequence[Query], top_k: int) -> list[int | None]:
    """Brute-force ranking of every window for every query, then `hit_rank` of each query's top k."""
    top = np.argsort(-(query_vecs @ window_vecs.T), axis=1)[:, :top_k]
    return [hit_rank(x, [(paths[j], *spans[j]) for j in row]) for x, row in zip(qs, top)]


def scores_by_lang(ranks: Sequence[int | None], qs: Sequence[Query]) -> dict:
    """`passage_scores` over all queries ("all") and over each query language."""
    out = {"all": passage_scores(ranks)}
    for lang in sorted({q.lang for q in qs}):
        out[lang] = passage_scores([r for r, q in zip(ranks, qs) if q.lang == lang])
    return out
