"""`clasp index --engine ray`: the same index, with the decoding and embedding spread over a Ray cluster.

Data flow. The driver (this process, the index's only writer) lists the files and skips the
unchanged ones exactly as the local engine does (indexer.check_file). Ray Data then receives
the paths of the files to embed, never their bytes: CPU tasks decode each file, run the VAD and
cut it into windows (`_cut_file`), and find who speaks in which window (`_voices`, when the
index has speakers); an actor pool embeds them (`Embedder`, one model per actor, a GPU each
where the cluster has them). Only window ids, times, vectors and speakers come back. In an
index that transcribes, the driver then reads each new recording whole, in chunks with its
context and language (pipeline.transcribe_missing), as the local engine does.

One writer. The driver consumes the stream (`iter_batches`) and commits each file in its own
transaction as soon as all its windows have arrived, as the local engine does. Staged Parquet
shards committed by a second process were the alternative; they add a second store of state to
keep consistent and buy nothing here, because the commit (one SQLite transaction per file) is
far cheaper than the embedding. If the driver dies, every file it committed is in the index
and the rest is not: the next run skips the first kind and embeds the second, as after a
kill -9 of a local run. The cluster it started goes with it.

Failures stay per file. A file that cannot be decoded becomes an error row inside its task (so
Ray Data's max_errored_blocks=0 never aborts the run, and no block is silently dropped), and
the driver records it as failed like the local engine does. An actor that dies is restarted by
Ray and its batch retried; the driver keys windows by (file, window), so a retried batch can
not duplicate anything.

The same vectors as the local engine: the same segmentation, the same model files, and
padding that does not depend on what a window is batched with (the encoder pads each clip to
its own length quantum).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import AudioError, ClusterError, PartialAudioWarning, UsageError
from ..pipeline import (
    GRAPH_SAVE_S, NO_SPEECH, FileJob, IndexRun, IndexSummary, check_file, commit_file, cut_windows, fail_file, finish_run,
    partial_warning,
)
from ..passages import segmentation_from_json, segmentation_to_json
from ..speakers.embed import DIM as SPEAKER_DIM
from ..store import Store


MAX_BLOCKS = 2000


@dataclass
class RayConfig:
    """How `--engine ray` runs. address: a cluster ("auto", "ray://host:10001", host:port); None
    uses RAY_ADDRESS, else starts a local cluster for the run with `num_cpus` (all when None).
    actors: embedding actors (None: one per GPU, else one per `cpus_per_actor`); model_ref: what
    each actor loads (a registry name or a path every node can read)."""

    address: str | None = None
    model_ref: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    cut_cpus: float = 1.0
    num_cpus: int | None = None
    device: str = "auto"


def _cut_file(row: dict, segmentation: str, sample_rate: int, speakers=None, threads: int = 1) -> list[dict]:
    """One file -> one row per window (its audio), or one error row. Runs as a Ray task. With
    `speakers` (a DiarizeConfig), the file's voices are found here too: each row carries its
    window's voice and speaker vector, and the first row the file's voices and turns."""
    path = Path(os.fsdecode(row["path"]))
    job = int(row["job"])

    def error(reason: str, duration: float = 0.0) -> list[dict]:
        return [{"job": job, "w": -1, "n": 0, "start": 0.0, "end": 0.0, "duration": duration, "warning": "",
                 "error": reason, "wave": np.zeros(1, dtype=np.float32), **_no_voices(1)[0]}]

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PartialAudioWarning)
            duration, windows = cut_windows(path, segmentation_from_json(segmentation), sample_rate)
            cut = list(windows)
    except AudioError as e:
        return error(e.reason)
    except Exception as e:  # noqa: BLE001 - one unreadable file must never end the run
        return error(f"could not be read ({type(e).__name__}: {e})")
    if not cut:
        return error(NO_SPEECH, duration)
    warning = partial_warning(caught) or ""
    voices = _voices(path, [span for span, _ in cut], speakers, threads) if speakers is not None else _no_voices(len(cut))
    return [{"job": job, "w": i, "n": len(cut), "start": float(span.start), "end": float(span.end), "duration": float(duration),
             "warning": warning, "error": "", "wave": np.asarray(wave, dtype=np.float32), **voices[i]}
            for i, (span, wave) in enumerate(cut)]


def _no_voices(n: int) -> list[dict]:
    """The speaker columns of rows whose file was not diarized here (the driver does it after the run)."""
    return [{"voice": -1, "speaker_vector": np.zeros(SPEAKER_DIM, dtype=np.float32), "voices": ""} for _ in range(n)]


@functools.lru_cache(maxsize=2)
def _diarizer(cfg, threads: int):
    """One Diarizer per worker process (Ray reuses workers across tasks): the models load once."""
    from ..speakers.diarize import Diarizer

    return Diarizer(cfg, threads=threads)


def _voices(path: Path, spans: list, cfg, threads: int) -> list[dict]:
    """Each window's speaker columns, the file's voices and turns as JSON on the first; a file the
    speaker models cannot hear is left to the driver (find_speakers tries it, and says why)."""
    from ..audio import stream_audio

    try:
        d = _diarizer(cfg, threads)(stream_audio(path, 16_000, block_seconds=10.0, warn=False),
                                    [(float(sp.start), float(sp.end)) for sp in spans])
    except Exception:  # noqa: BLE001 - speakers are found again on the driver, where an error is reported
        return _no_voices(len(spans))
    rows = [{"voice": -1 if v is None else int(v), "speaker_vector": np.asarray(d.window_vectors[i], dtype=np.float32),
             "voices": ""} for i, v in enumerate(d.window_voice)]
    rows[0]["voices"] = json.dumps({"seconds": d.seconds,
                                    "voices": [[float(v.seconds), [float(x) for x in v.vector]] for v in d.voices],
                                    "turns": [[t.start, t.end, t.voice, t.overlap] for t in d.turns]})
    return rows


def _diarization(rows: list[tuple]):
    """A file's Diarization from its windows' rows (start, end, vector, duration, warning, voice,
    speaker vector, voices JSON), or None when its speakers were not found on the cluster."""
    from ..speakers.diarize import Diarization, Turn, Voice

    if not rows[0][7]:
        return None
    got = json.loads(rows[0][7])
    voices = [Voice(np.asarray(vec, dtype=np.float32), float(sec)) for sec, vec in got["voices"]]
    turns = [Turn(float(a), float(b), int(v), bool(o)) for a, b, v, o in got["turns"]]
    return Diarization(voices, turns, [None if r[5] < 0 else int(r[5]) for r in rows],
                       np.stack([r[6] for r in rows]).astype(np.float32), float(got["seconds"]))


class Embedder:
    """The actor: one model loaded once, embedding batches of windows. What was said is read
    afterwards, a recording at a time with its context (pipeline.transcribe_missing)."""

    def __init__(self, model_ref: str, device: str):
        from ..registry import load_model

        self.model = load_model(model_ref, device=device)
        self.model.ready()

    def __call__(self, batch: dict) -> dict:
        n = len(batch["job"])
        waves = [np.asarray(w, dtype=np.float32) for w in batch["wave"]]
        ok = [i for i in range(n) if int(batch["w"][i]) >= 0]
        # Longest first, so each encoder call holds clips of one padded length (the encoder groups them).
        ok.sort(key=lambda i: -len(waves[i]))
        vectors = np.zeros((n, self.model.dim), dtype=np.float32)
        if ok:
            vectors[ok] = self.model.embed_audio([waves[i] for i in ok])
        out = {k: np.asarray(batch[k]) for k in ("job", "w", "n", "start", "end", "duration", "warning", "error", "voice",
                                                 "speaker_vector", "voices")}
        out["vector"] = vectors
        return out


def _connect(cfg: RayConfig) -> bool:
    """Join (or start) the cluster; True when this call started Ray, and so must stop it."""
    import ray

    if ray.is_initialized():
        return False
    _quiet()
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=cfg.num_cpus, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = address or "a local cluster"
        raise ClusterError(f"could not start or reach the Ray cluster ({where}): {e}") from None
    return True


def _quiet() -> None:
    """Ray's own chatter off the user's terminal (the CLI reports files; real failures still raise)."""
    import ray.data  # noqa: F401  (configures its loggers on import: set the levels after)

    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _plan(cfg: RayConfig) -> tuple[str, int, float, float]:
    """(actor device, actors, CPUs per actor, GPUs per actor) for the cluster as it is now."""
    import ray

    res = ray.cluster_resources()
    gpus, cpus = int(res.get("GPU", 0)), max(1.0, float(res.get("CPU", 1)))
    if cfg.device == "cuda" and not gpus:
        raise UsageError("--device cuda was asked for, but the Ray cluster has no GPU")
    if gpus and cfg.device != "cpu":
        return "cuda", cfg.actors or gpus, 1.0, 1.0
    # One CPU is left to the decoding tasks on a small machine; the actors take the rest.
    actors = cfg.actors or max(1, int((cpus - cfg.cut_cpus) // cfg.cpus_per_actor))
    return "cpu", actors, cfg.cpus_per_actor, 0.0


def index_files_ray(store: Store, run: IndexRun, files: Sequence[Path], paths: Sequence[str | Path], prune: bool,
                    summary: IndexSummary, cfg: RayConfig) -> IndexSummary:
    """indexer.index_files, with the cutting and embedding done on Ray; this process writes."""
    jobs: list[FileJob] = []
    try:
        for path in files:
            job = check_file(store, path, summary, run.on_event, run.read_stall_s)
            if job is not None:
                jobs.append(job)
        if jobs:
            started = _connect(cfg)
            try:
                _embed_on_ray(store, run, jobs, summary, cfg)
            finally:
                if started:
                    import ray

                    ray.shutdown()
        finish_run(store, run, files, paths, prune, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
    return summary


def _embed_on_ray(store: Store, run: IndexRun, jobs: list[FileJob], summary: IndexSummary, cfg: RayConfig) -> None:
    import ray
    import ray.data

    _quiet()
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the CLI's own bar counts committed files
    ctx.print_on_execution_start = False
    device, actors, cpus, gpus = _plan(cfg)
    items = [{"job": i, "path": os.fsencode(j.path)} for i, j in enumerate(jobs)]
    # A block per file keeps the cutting spread evenly; past MAX_BLOCKS, Ray's own per-block cost
    # would grow faster than it helps, and a block holds several files.
    ds = (ray.data.from_items(items, override_num_blocks=max(1, min(len(items), MAX_BLOCKS)))
          .flat_map(_cut_file, fn_kwargs={"segmentation": segmentation_to_json(run.passages),
                                          "sample_rate": run.model.config.sample_rate,
                                          # Who speaks is found where the file is cut, not on the driver after the run.
                                          "speakers": run.speakers.cfg if run.speakers is not None else None,
                                          "threads": max(1, int(cfg.cut_cpus))}, num_cpus=cfg.cut_cpus)
          .map_batches(Embedder, fn_constructor_kwargs={"model_ref": cfg.model_ref or str(run.model.path), "device": device},
                       batch_size=run.batch_size, compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpus,
                       num_gpus=gpus or None, batch_format="numpy"))
    # Ray Data restarts a dead actor and retries its batch by default (max_restarts=-1,
    # max_task_retries=-1); a decoding task is retried as any Ray task is.
    pending: dict[int, dict[int, tuple]] = {}
    done: set[int] = set()
    last_save = time.monotonic()
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for r in range(len(batch["job"])):
                j = int(batch["job"][r])
                if j in done:
                    continue  # a retried batch: this file is committed already
                job = jobs[j]
                if str(batch["error"][r]):
                    fail_file(store, job.key, job.raw, str(batch["error"][r]), summary, run.on_event, job.size, job.mtime,
                              job.digest)
                    done.add(j)
                    continue
                got = pending.setdefault(j, {})
                got[int(batch["w"][r])] = (float(batch["start"][r]), float(batch["end"][r]), batch["vector"][r],
                                           float(batch["duration"][r]), str(batch["warning"][r]) or None,
                                           int(batch["voice"][r]), batch["speaker_vector"][r], str(batch["voices"][r]))
                if len(got) == int(batch["n"][r]):
                    _commit(store, run, job, [got[w] for w in sorted(got)], summary)
                    del pending[j]
                    done.add(j)
            if time.monotonic() - last_save > GRAPH_SAVE_S:
                store.save_graphs()
                last_save = time.monotonic()
    except ray.exceptions.RayError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ClusterError(f"the Ray run failed ({first}); the {len(done)} file(s) finished are kept: "
                          "rerun the same command to continue") from None
    for j, job in enumerate(jobs):  # the stream ended without them: say so rather than lose them quietly
        if j not in done:
            fail_file(store, job.key, job.raw, "the Ray run returned no windows for it; rerun to retry", summary, run.on_event,
                      job.size, job.mtime, job.digest)


def _commit(store: Store, run: IndexRun, job: FileJob, rows: list[tuple], summary: IndexSummary) -> None:
    """A file's windows and vectors in one transaction, then its speakers in the next (as the local
    engine stores them: a kill between the two leaves the file for find_speakers)."""
    spans = [(s, e) for s, e, *_ in rows]
    vectors = np.stack([r[2] for r in rows]).astype(np.float32)
    ids = commit_file(store, job, spans, vectors, rows[0][3], rows[0][4], summary, run.on_event)
    found = _diarization(rows) if run.speakers is not None else None
    if found is not None:
        from ..speakers.index import save_diarization

        rec = store.file(job.key)
        save_diarization(store, rec.id, ids, found)
        summary.diarized += 1
