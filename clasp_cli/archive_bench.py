"""`clasp benchmark --archive`: search over long recordings, through the real index, against ASR.

Rows, all on one archive built from a manifest (normally the held-out test split):
- CLASP through `clasp index` + `clasp search`, once with sentence windows (the default) and
  once with the earlier 3-12 s passages, with index speed, query latency and size on disk;
- CLASP on the windows index with `--rerank`, timing each query's first run (its windows
  transcribed, unless an earlier query already read them) and its second (all cached);
- keyword search on the windows index after `clasp index --transcribe` fills its transcripts in;
- fused search (CLASP vector + transcript vector + words, clasp_cli.fusion) on a windows index
  built with transcripts in one pass (the Whisper encoder's output read by head and decoder);
- transcribe-then-embed on the very same windows: the Whisper of the model's encoder family
  transcribes each window, the model's text encoder embeds the transcript, cosine ranks them.
A hit answers a query when it lies in the right program and covers half its sentence.

`rows` picks some of them (clasp, rerank, keyword, fused, asr). With `reuse`, an index or the ASR
transcripts an earlier run in the same work folder finished for the same files and model are
kept, and their build times are that run's, so a change to search alone (the fusion's weights)
is measured again in minutes, and a stopped run picks up where it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .archive import ArchiveConfig, Query, build_archive, hit_rank, queries, rank_windows, scores_by_lang, spread
from .benchmark.systems import asr_reader, check_asr_reader
from .defaults import DEFAULT_MODEL

Event = Callable[..., None]


def _noop(*_a, **_k) -> None:
    pass


ROWS = ("clasp", "rerank", "keyword", "fused", "asr")


@dataclass
class ArchiveBenchConfig:
    manifest: Path
    out: Path  # work folder: the archive and one index per segmentation
    model: str = DEFAULT_MODEL
    asr_model: str | None = None  # None: the Whisper of the model's encoder family
    asr_reader: str = "chunks"  # as `clasp benchmark --asr-reader`: chunks (as the index reads), batched or faster-whisper
    per_program: int = 10
    langs: tuple[str, ...] | None = None  # query languages; None: every language a sentence has
    top_k: int = 10
    limit_programs: int | None = None
    device: str = "cpu"
    seed: int = 0
    rerank: int | None = None  # windows read by the rerank row; None: what a bare --rerank reads
    cold_queries: int = 20  # rerank queries timed with no transcript cached at all
    noise: str | None = None  # "babble" or "white": every program heard through this noise
    snr: float = 5.0  # dB, with noise
    rows: tuple[str, ...] = ROWS
    reuse: bool = False  # keep what an earlier run in `out` built for the same files and model


def _built(cfg: ArchiveBenchConfig, name: str, files: Sequence[Path], build: Callable[[], dict]) -> dict:
    """What `build` reports (its seconds included), or with cfg.reuse the record an earlier run
    left for the same files, model and step; `build` starts from nothing, so a half-made step
    is made again whole."""
    key = hashlib.sha1(json.dumps([cfg.model, cfg.asr_model, cfg.asr_reader, name, [str(f) for f in files]]).encode()).hexdigest()
    stamp = cfg.out / f"{name}.built.json"
    if cfg.reuse and stamp.is_file():
        try:
            rec = json.loads(stamp.read_text())
        except (OSError, ValueError):
            rec = {}
        if rec.get("key") == key:
            return {**rec["result"], "reused": True}
    stamp.unlink(missing_ok=True)
    t = time.perf_counter()
    result = build()
    result["seconds"] = time.perf_counter() - t
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps({"key": key, "result": result}))
    tmp.replace(stamp)
    return result


def _dir_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 2)


def run_archive_benchmark(cfg: ArchiveBenchConfig, on_event: Event = _noop) -> dict:
    from .audio import load_audio
    from .indexer import index_paths
    from .passages import PassageConfig, WindowConfig, find_spans, iter_passage_audio
    from .reading.reader import ChunkReader
    from .reading.recording import read_recording, wave_audio
    from .registry import load_model
    from .search import Searcher
    from .transcribe import Transcriber, whisper_for

    check_asr_reader(cfg.asr_reader)  # before minutes of indexing, not after
    programs = build_archive(ArchiveConfig(manifest=cfg.manifest, out=cfg.out / "archive", per_program=cfg.per_program, seed=cfg.seed))
    if cfg.limit_programs:
        programs = spread(programs, cfg.limit_programs)
    root = cfg.out / "archive"
    files = [root / p.path for p in programs]
    qs = queries(programs, root, cfg.langs)
    if cfg.noise:
        noisy = _noisy_copies(cfg, programs, root)
        moved = {str(f.resolve()): str(n.resolve()) for f, n in zip(files, noisy)}
        files, qs = noisy, [replace(q, program=moved[q.program]) for q in qs]
    audio_s = sum(p.duration for p in programs)
    on_event("archive", programs=len(programs), queries=len(qs), hours=audio_s / 3600)
    model = load_model(cfg.model, device=cfg.device)
    # Load the encoders and the head before the clock starts: the windows run goes first and would
    # otherwise pay alone for importing torch and loading the models (about 5 s on 2 cores).
    model.embed_audio([np.zeros(model.config.sample_rate, dtype=np.float32)])
    rows = []
    want = set(cfg.rows)
    unknown = want - set(ROWS)
    if unknown:
        raise ValueError(f"unknown benchmark rows {sorted(unknown)} (choose from {', '.join(ROWS)})")

    def index_into(idx: Path, **kw) -> Callable[[], dict]:
        def build() -> dict:
            shutil.rmtree(idx, ignore_errors=True)
            summary = index_paths(files, idx, model=model, **kw)
            return {"passages": summary.passages, "transcribed": summary.transcribed}
        return build

    def scored(where: Path, system: str, mode: str | None = None) -> tuple[dict, list[float]]:
        lat, ranks = [], []
        with Searcher(where, model=model) as s:
            for q in qs:
                t = time.perf_counter()
                res = s.search(q.text, top_k=cfg.top_k, **({"mode": mode} if mode else {})).results
                lat.append(time.perf_counter() - t)
                ranks.append(hit_rank(q, [(r.path, r.start, r.end) for r in res]))
                on_event("query", system=system)
        return scores_by_lang(ranks, qs), lat

    def reused(built: dict) -> dict:
        return {"reused": True} if built.get("reused") else {}

    segs = [("windows", WindowConfig())] if want & {"clasp", "rerank", "keyword"} else []
    if "clasp" in want:
        segs.append(("passages", PassageConfig()))
    for name, seg in segs:
        idx = cfg.out / f"index-{name}"
        built = _built(cfg, f"index-{name}", files, index_into(idx, passages=seg))
        if "clasp" not in want:
            continue
        # "vector": what the index answered before any transcript was in it, also on a reused index.
        scores, lat = scored(idx, f"clasp-{name}", "vector")
        rows.append({
            "system": f"CLASP ({name})", "model": cfg.model, "scores": scores,
            "spans": built["passages"], "index_s": round(built["seconds"], 1),
            "index_x_realtime": round(audio_s / built["seconds"], 1),
            "query_ms_p50": round(1000 * float(np.median(lat)), 1), "index_mb": _dir_mb(idx), **reused(built),
        })
        on_event("row", **rows[-1])

    idx = cfg.out / "index-windows"
    if "rerank" in want:
        (cfg.out / "fill-in.built.json").unlink(missing_ok=True)  # the rerank row empties the windows' transcripts
        rows += _rerank_row(cfg, model, idx, qs)
        on_event("row", **rows[-1])
    if "keyword" in want:
        # The fill-in transcribes what the rerank row left untranscribed.
        filled = _built(cfg, "fill-in", files,
                        lambda: {"transcribed": index_paths(files, idx, model=model, transcribe=True).transcribed})
        scores, lat = scored(idx, "clasp-keyword", "keyword")
        rows.append({"system": "CLASP keyword (windows, after --transcribe fill-in)", "model": cfg.model, "scores": scores,
                     "query_ms_p50": round(1000 * float(np.median(lat)), 1), "index_mb": _dir_mb(idx),
                     "transcribe_s": round(filled["seconds"], 1), "transcribed": filled["transcribed"], **reused(filled)})
        on_event("row", **rows[-1])
    if "fused" in want:
        fused_idx = cfg.out / "index-fused"
        built = _built(cfg, "index-fused", files, index_into(fused_idx, transcribe=True))
        scores, lat = scored(fused_idx, "clasp-hybrid", "hybrid")
        rows.append({"system": "fused: CLASP + transcripts (windows, --transcribe, one encoder pass)", "model": cfg.model,
                     "scores": scores, "spans": built["passages"], "query_ms_p50": round(1000 * float(np.median(lat)), 1),
                     "index_mb": _dir_mb(fused_idx), "index_s": round(built["seconds"], 1),
                     "index_x_realtime": round(audio_s / built["seconds"], 1), **reused(built)})
        on_event("row", **rows[-1])
    if "asr" not in want:
        return {"programs": len(programs), "queries": len(qs), "audio_hours": round(audio_s / 3600, 3), "rows": rows}

    # Transcribe-then-embed on the same windows the CLASP index holds.
    asr_name = cfg.asr_model or whisper_for(model.config.speech_encoder)

    def transcribe_windows() -> dict:
        asr = Transcriber(asr_name, device=cfg.device)
        sr = model.config.sample_rate
        if cfg.asr_reader == "chunks":  # a program is a recording, read as `clasp index` reads one
            chunk_reader = ChunkReader(asr)

            def read_file(f: Path, windows) -> list[str]:
                return read_recording(chunk_reader, [(w.start, w.end) for w in windows], wave_audio(load_audio(f, sr))).texts
        else:
            read = asr_reader(asr, cfg.asr_reader)

            def read_file(f: Path, windows) -> list[str]:
                return read([w for _, w in iter_passage_audio(f, windows, sr)])

        paths, spans, texts = [], [], []
        for f in files:
            windows, _ = find_spans(f, WindowConfig())
            texts += read_file(f, windows)
            paths += [str(f.resolve())] * len(windows)
            spans += [(w.start, w.end) for w in windows]
            on_event("transcribed", path=str(f))
        return {"paths": paths, "spans": spans, "texts": texts}

    heard = _built(cfg, f"asr-{asr_name}", files, transcribe_windows)
    paths, spans, texts = heard["paths"], [tuple(x) for x in heard["spans"]], heard["texts"]
    suffix = "" if cfg.asr_reader == "chunks" else f", {cfg.asr_reader}"
    vecs = model.embed_text([x if x.strip() else "." for x in texts])
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
    qv = model.embed_text([q.text for q in qs])
    ranks = rank_windows(qv, vecs, paths, spans, qs, cfg.top_k)
    rows.append({
        "system": f"ASR ({asr_name} + {model.config.text_encoder}, same windows{suffix})", "model": asr_name,
        "asr_reader": cfg.asr_reader,
        "scores": scores_by_lang(ranks, qs), "spans": len(spans), "index_s": round(heard["seconds"], 1),
        "index_x_realtime": round(audio_s / heard["seconds"], 1), **reused(heard),
    })
    on_event("row", **rows[-1])
    return {"programs": len(programs), "queries": len(qs), "audio_hours": round(audio_s / 3600, 3), "rows": rows}


def _noisy_copies(cfg: ArchiveBenchConfig, programs: Sequence, root: Path) -> list[Path]:
    """Each program mixed with noise at cfg.snr dB (babble: other test utterances talking), in a
    folder of its own; made once per setting and seed."""
    import soundfile as sf

    from .audio import load_audio
    from .data.augment import add_noise
    from .manifest import read_manifest

    dest = cfg.out / f"archive-{cfg.noise}-{cfg.snr:g}db"
    dest.mkdir(parents=True, exist_ok=True)
    sources = []
    if cfg.noise == "babble":
        utts = read_manifest(cfg.manifest)
        rng = np.random.default_rng(cfg.seed + 1)
        picks = rng.choice(len(utts), size=min(8, len(utts)), replace=False)
        sources = [load_audio(utts[int(i)].audio_path(Path(cfg.manifest).parent), 16_000) for i in picks]
    out = []
    for k, p in enumerate(programs):
        target = dest / p.path
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            noisy = add_noise(load_audio(root / p.path, 16_000), cfg.snr, rng=np.random.default_rng([cfg.seed, k]),
                              kind=cfg.noise, sources=sources)
            tmp = target.with_name(f".{target.stem}.tmp.flac")
            sf.write(tmp, np.clip(noisy, -1, 1), 16_000)
            tmp.replace(target)
        out.append(target)
    return out


def _rerank_row(cfg: ArchiveBenchConfig, model, idx: Path, qs: Sequence[Query]) -> list[dict]:
    from .search import Searcher, default_rerank

    n = cfg.rerank or default_rerank(model)
    first, cached, ranks, cold = [], [], [], []
    with Searcher(idx, model=model) as s:
        s.transcriber()  # loading Whisper is paid once per process, not by a query
        # A query's first run in the loop below often finds some of its windows read by earlier
        # queries; these few start from an empty cache, so they pay for all n windows.
        for q in qs[:: max(1, len(qs) // cfg.cold_queries)][: cfg.cold_queries]:
            _forget_transcripts(idx)
            t = time.perf_counter()
            s.search(q.text, top_k=cfg.top_k, rerank=n)
            cold.append(time.perf_counter() - t)
        _forget_transcripts(idx)
        for q in qs:
            t = time.perf_counter()
            res = s.search(q.text, top_k=cfg.top_k, rerank=n).results
            first.append(time.perf_counter() - t)
            t = time.perf_counter()
            s.search(q.text, top_k=cfg.top_k, rerank=n)
            cached.append(time.perf_counter() - t)
            ranks.append(hit_rank(q, [(r.path, r.start, r.end) for r in res]))
    return [{
        "system": f"CLASP (windows) --rerank {n}", "model": cfg.model, "scores": scores_by_lang(ranks, qs),
        "query_ms_p50": round(1000 * float(np.median(first)), 1),
        "cold_query_ms_p50": round(1000 * float(np.median(cold)), 1) if cold else None, "cold_queries": len(cold),
        "first_query_ms_p50": round(1000 * float(np.median(first)), 1),
        "cached_query_ms_p50": round(1000 * float(np.median(cached)), 1), "index_mb": _dir_mb(idx),
    }]


def _forget_transcripts(idx: Path) -> None:
    """Empty the index's transcript cache (the benchmark's own index), so the next query reads
    every window it reranks."""
    import sqlite3

    from .store import DB

    with sqlite3.connect(idx / DB) as db:
        db.execute("DELETE FROM transcripts")
