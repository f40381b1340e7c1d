"""Running the benchmark: load the usable utterances, encode with every system, score."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from ..errors import AudioError, ModelError, UsageError
from ..manifest import Utterance, read_manifest
from .base import BABBLE_POOL, SAMPLE_RATE, BenchmarkConfig, Event, noop
from .cost import machine_info
from .scoring import BenchmarkResult, score_system, score_fused, translation_rows
from .systems import EncodeJob, SystemSpec, check_asr_reader, encode_system, run_isolated


# -- the data -----------------------------------------------------------------------------------------


def load_usable(path: str | Path, limit: int | None, on_event: Event = noop) -> tuple[list[Utterance], list[Path], list[tuple[str, str]]]:
    """Utterances whose audio decodes, one per text, at most `limit`; and the skipped ones with why."""
    from ..audio import load_audio
    from ..train import unique_by_text

    path = Path(path)
    root = path.resolve().parent
    items = read_manifest(path)
    keep, paths, skipped = [], [], []
    seen = set()
    for u in items:
        if limit is not None and len(keep) >= limit:
            break
        key = u.text.strip().lower()
        if key in seen:
            continue
        p = u.audio_path(root)
        try:
            w = load_audio(p, SAMPLE_RATE)
        except AudioError as e:
            skipped.append((u.id, str(e)))
            on_event("skip", id=u.id, reason=str(e))
            continue
        if w.size == 0:
            skipped.append((u.id, f"{p}: contains no audio samples"))
            continue
        seen.add(key)
        u.duration = u.duration or w.size / SAMPLE_RATE
        keep.append(u)
        paths.append(p)
    unique = unique_by_text(keep)  # one right recording per text query (a no-op after the check above)
    return [keep[i] for i in unique], [paths[i] for i in unique], skipped

def _calibration(clasp, raw, queries, lang_queries, ml_queries, ml_en, cfg) -> dict:
    from ..calibration import nonsense_queries
    from .scoring import calibration_check

    emb = raw["emb"]
    # Seed 1 here, seed 1000+ in training's fit: the benchmark's nonsense is never the fitted one.
    junk = clasp.text.encode(nonsense_queries(cfg.nonsense, seed=1))
    rows = {lang: (q, emb, np.asarray(r)) for lang, (r, q) in lang_queries.items()}
    if ml_queries:
        ml = raw["ml_emb"]
        rows["foreign:native"] = (ml_queries["native"], ml, np.arange(len(ml)))
        if ml_en is not None:
            rows["foreign:en"] = (ml_en[1], ml, np.asarray(ml_en[0]))
    return calibration_check(clasp, emb, queries, junk, rows)


# -- the benchmark ------------------------------------------------------------------------------------


def run_benchmark(cfg: BenchmarkConfig, on_event: Event = noop) -> BenchmarkResult:
    """Run every system on the manifest and score them. Events: load, skip, system_start,
    system_loaded, advance, system_done."""
    from ..devices import resolve_device
    from ..encoders.speech import resolve_whisper_path
    from ..registry import load_model

    t0 = time.perf_counter()
    if cfg.beam_size < 1:
        raise UsageError("--beam-size must be at least 1")
    check_asr_reader(cfg.asr_reader)
    if cfg.limit is not None and cfg.limit < 2:
        raise UsageError("--limit must be at least 2 (retrieval needs candidates to choose from)")
    device = resolve_device(cfg.device)
    # Fail fast, before minutes of encoding: the CLASP model (with weights) and the ASR model.
    clasp = load_model(cfg.model, device=device)
    resolve_whisper_path(cfg.asr_model)
    if cfg.ctc_model and not Path(cfg.ctc_model).expanduser().is_dir() and not re.fullmatch(r"[\w.-]+/[\w.-]+", cfg.ctc_model):
        raise ModelError(f"CTC model {cfg.ctc_model!r}: not a directory and not a Hugging Face hub id (owner/name)")

    utts, paths, skipped = load_usable(cfg.manifest, cfg.limit, on_event)
    if len(utts) < 2:
        why = f" ({len(skipped)} skipped; first: {skipped[0][1]})" if skipped else ""
        raise UsageError(f"{cfg.manifest}: {len(utts)} usable utterance(s) with distinct texts{why}; the benchmark needs at least 2")
    ml_utts: list[Utterance] = []
    ml_paths: list[Path] = []
    if cfg.multilingual:
        ml_utts, ml_paths, ml_skipped = load_usable(cfg.multilingual, cfg.limit, on_event)
        skipped += ml_skipped
        if len(ml_utts) < 2:
            raise UsageError(f"{cfg.multilingual}: fewer than 2 usable utterances for the multilingual benchmark")
    on_event("load", n=len(utts), skipped=len(skipped), multilingual=len(ml_utts))

    # Queries: every system shares the CLASP model's text encoder, so embed them once.
    text = clasp.text
    queries = text.encode([u.text for u in utts])
    lang_queries = {lang: (rows, text.encode([utts[i].translations[lang] for i in rows]))
                    for lang, rows in translation_rows(utts).items()}
    ml_queries: dict[str, np.ndarray] = {}
    ml_en = None
    if ml_utts:
        ml_queries["native"] = text.encode([u.text for u in ml_utts])
        en_rows = translation_rows(ml_utts).get("en")
        if en_rows:  # English queries for the recordings that have them, ranking every recording
            ml_en = (en_rows, text.encode([ml_utts[i].translations["en"] for i in en_rows]))

    rng = np.random.default_rng(cfg.seed)
    noise_idx: list[int] = []
    pool: list[int] = []
    kinds = tuple(cfg.noise_kinds)
    if cfg.noise:
        m = min(cfg.noise_n, len(utts))
        noise_idx = sorted(int(i) for i in rng.choice(len(utts), size=m, replace=False))
        pool = sorted(int(i) for i in rng.choice(len(utts), size=min(BABBLE_POOL, len(utts)), replace=False))
    job = EncodeJob(
        paths=[str(p) for p in paths], langs=[u.lang for u in utts], noise_idx=noise_idx,
        noise_kinds=kinds if cfg.noise else (), snrs=tuple(float(s) for s in cfg.snrs) if cfg.noise else (),
        babble_pool=pool, seed=cfg.seed, ml_paths=[str(p) for p in ml_paths], ml_langs=[u.lang for u in ml_utts],
    )

    specs = [SystemSpec("clasp", cfg.model, device=device), SystemSpec("whisper", cfg.model, cfg.asr_model, device, cfg.beam_size, cfg.asr_reader)]
    if cfg.ctc_model:
        specs.append(SystemSpec("ctc", cfg.model, cfg.ctc_model, device))

    results = []
    raws: dict[str, dict] = {}
    for spec in specs:
        on_event("system_start", label=spec.label, total=job.units)
        ts = time.perf_counter()
        raw = run_isolated(spec, job, on_event) if cfg.isolate else encode_system(spec, job, on_event)
        on_event("system_done", label=spec.label, name=raw["name"], seconds=time.perf_counter() - ts)
        res = score_system(spec, raw, utts, queries, lang_queries, noise_idx, ml_utts, ml_queries, ml_en, cfg)
        if raw["kind"] == "clasp" and cfg.nonsense:
            res.calibration = _calibration(clasp, raw, queries, lang_queries, ml_queries, ml_en, cfg)
        results.append(res)
        raws[spec.backend] = raw
    if "clasp" in raws and "whisper" in raws:
        results.append(score_fused(clasp, raws["clasp"], raws["whisper"], utts, queries, lang_queries, noise_idx, ml_utts,
                                   ml_queries, ml_en, cfg))

    return BenchmarkResult(
        n=len(utts), systems=results, machine=machine_info(device), skipped=skipped, query_langs=list(lang_queries),
        seconds=time.perf_counter() - t0, noise_n=len(noise_idx), multilingual_n=len(ml_utts), config=cfg,
    )
