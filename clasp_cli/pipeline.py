"""The stages every engine of `clasp index` shares, on the one writer: check a file (skip it when
unchanged), cut it into windows, commit its windows and vectors, read what was said in it (a
recording at a time, in chunks), and finish a run (prune, fill in transcripts). indexer.py runs
them in this process; engines/ray_engine.py cuts and embeds on a cluster and commits through them.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .aliases import own_name
from .errors import AudioError, PartialAudioWarning
from .feature_cache import file_key
from .names import display_path, raw_name
from .passages import PassageConfig, Span, WindowConfig, find_spans, iter_passage_audio
from .store import Store

Event = Callable[..., None]
MIN_WINDOW_SAMPLES = 160  # a shorter window lies past the real end of a file whose header overstated its length
NO_SPEECH = "no speech found (silent or too quiet)"
GRAPH_SAVE_S = 60.0


@dataclass
class IndexSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    passages: int = 0
    audio_seconds: float = 0.0
    elapsed: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # indexed, with a caveat (partly decoded)
    interrupted: bool = False
    transcribed: int = 0  # passages given a transcript by this run
    diarized: int = 0  # recordings whose speakers this run found

    @property
    def indexed(self) -> int:
        return self.added + self.updated

    @property
    def speed(self) -> float:
        """Audio seconds embedded per wall-clock second."""
        return self.audio_seconds / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class IndexRun:
    """What every batch of one writer's run shares: the model, how files are cut, the transcriber."""

    model: object
    passages: PassageConfig | WindowConfig
    transcriber: object | None
    batch_size: int
    read_stall_s: float
    on_event: Event
    reader: object | None = None  # reading.ChunkReader: what was said, read a recording at a time
    language: str | None = None  # `--language`: every recording read in it
    languages: Counter = field(default_factory=Counter)  # recordings per language: the prior of a short one
    queue: object | None = None  # reading.queue.ReadingQueue: the recordings of this batch, read together
    speakers: object | None = None  # speakers.diarize.Diarizer: who speaks where (None: --no-speakers)
    # Recordings whose speakers are being found on a worker thread: file id -> (path, windows, Future).
    speaker_jobs: dict = field(default_factory=dict)
    speaker_pool: object | None = None

    @property
    def prior(self) -> str | None:
        """The language most of the index is read in."""
        return self.languages.most_common(1)[0][0] if self.languages else None


def finish_run(store: Store, run: IndexRun, files: Sequence[Path], paths: Sequence[str | Path], prune: bool,
               summary: IndexSummary) -> None:
    """After the files of a run (either engine): prune, report earlier failures, transcribe what lacks a transcript."""
    on_event = run.on_event
    if run.queue is not None:
        run.queue.flush()  # what this batch indexed is read before anything is pruned
    roots = [display_path(os.path.abspath(p)) for p in paths]
    seen = {display_path(f) for f in files}
    if prune:
        # A recording replaced by a folder of its name is gone too (the folder's files are indexed
        # anew), and so is a second name of a recording indexed under its own (a link beside it).
        gone = [f.path for f in store.files() if _under(f.path, roots)
                and (not os.path.lexists(f.fs_path) or os.path.isdir(f.fs_path) or own_name(f.fs_path, paths) is not None)]
        summary.removed += store.remove_files(gone)
        for g in gone:
            on_event("removed", path=g)
        # A folder that is gone was pruned as asked, not a failure to index it.
        summary.failed = [(p, e) for p, e in summary.failed
                          if not (e == "path not found" and any(_under(g, [p]) for g in gone))]
    for f in store.files():  # failures this run could not retry stay in the summary until pruned
        if f.status == "failed" and f.path not in seen and _under(f.path, roots):
            summary.failed.append((f.path, f"{f.error} (earlier run; the file is gone: --prune forgets it)"))
    if run.reader is not None:
        transcribe_missing(store, run, summary)
    if run.speakers is not None:
        summary.diarized += find_speakers(store, run)


def hear_speakers(store: Store, run: IndexRun, file_id: int, key: str, fs_path: str) -> None:
    """Start finding one recording's speakers on a worker thread, so the models hear it while
    Whisper reads (Whisper alone leaves about 14% of two cores idle); find_speakers stores what
    they found on this thread, the writer's."""
    if run.speakers is None:
        return
    if run.speaker_pool is None:
        from concurrent.futures import ThreadPoolExecutor

        run.speaker_pool = ThreadPoolExecutor(1, thread_name_prefix="clasp-speakers")
    items = store.file_passages(file_id)
    run.speaker_jobs[file_id] = (key, items, run.speaker_pool.submit(_hear, run, fs_path, items))


def _hear(run: IndexRun, fs_path: str, items: list[tuple[int, float, float]]):
    """One recording's Diarization, its windows being `items` (passage id, start, end). A
    second pass over the file: its partial-decoding warning was given when it was embedded."""
    from .audio import stream_audio

    return run.speakers(stream_audio(fs_path, 16_000, block_seconds=10.0, warn=False), [(a, b) for _, a, b in items])


def stop_hearing(run: IndexRun) -> None:
    """Drop speaker work not started yet (an interrupted run: the next run does it)."""
    if run.speaker_pool is not None:
        run.speaker_pool.shutdown(wait=False, cancel_futures=True)
        run.speaker_pool = None
    run.speaker_jobs = {}


def find_speakers(store: Store, run: IndexRun) -> int:
    """Find the voices and turns of every recording whose speakers were not looked for yet, a
    recording per transaction (a killed run keeps what it committed; the next does the rest),
    and join them to the index's speakers. Events: "speakers_start" (files), then "speakers" per
    recording (voices) or "speakers_failed" (reason). Returns the recordings done."""
    from .speakers.index import files_to_diarize, forget_empty, save_diarization

    done = 0
    jobs, run.speaker_jobs = run.speaker_jobs, {}
    for file_id, (path, items, job) in jobs.items():
        try:
            found = job.result()
        except AudioError as e:  # changed or gone since it was embedded: the next run tries again
            run.on_event("speakers_failed", path=path, reason=e.reason)
            continue
        if store.file_passages(file_id) == items:  # else re-indexed meanwhile: found again below
            save_diarization(store, file_id, [pid for pid, _, _ in items], found)
            done += 1
    todo = files_to_diarize(store)
    if not todo:
        if done:
            forget_empty(store)
        return done
    run.on_event("speakers_start", files=len(todo))
    for file_id, path, fs_path in todo:
        items = store.file_passages(file_id)
        try:
            found = _hear(run, fs_path, items)
        except AudioError as e:  # changed or gone since it was embedded: the next run tries again
            run.on_event("speakers_failed", path=path, reason=e.reason)
            continue
        save_diarization(store, file_id, [pid for pid, _, _ in items], found)
        done += 1
        run.on_event("speakers", path=path, voices=len(found.voices))
    forget_empty(store)
    return done


def transcribe_missing(store: Store, run: IndexRun, summary: IndexSummary) -> None:
    """Read every passage that has no transcript yet, in chunks with its recording's context and
    language, the recordings read together (start_reading) and each one's transcripts committed
    at once; `run` must have a reader.

    This is how an index embedded without transcripts gets them: the index stays searchable
    throughout (each commit is a short transaction beside the readers), searches use each
    transcript as soon as it lands, and a killed run keeps what it committed, so a rerun does
    only the rest. Events: "transcribe_start" (passages, seconds), then "transcribed" per recording.
    """
    rows = store.db.execute(
        "SELECT p.id, f.path, p.start, p.end FROM passages p JOIN files f ON p.file_id=f.id "
        "WHERE NOT EXISTS (SELECT 1 FROM transcripts t WHERE t.passage_id=p.id) ORDER BY f.path, p.start").fetchall()
    if not rows:
        return
    missing: dict[str, set[int]] = {}
    for pid, path, _, _ in rows:
        missing.setdefault(path, set()).add(int(pid))
    run.on_event("transcribe_start", passages=len(rows), seconds=sum(e - s for _, _, s, e in rows))
    if run.queue is None:
        start_reading(store, run, summary)
    for path, ids in missing.items():
        rec = store.file(path)
        if rec is not None:
            queue_reading(store, run, rec.id, path, rec.fs_path, ids)
    run.queue.flush()


def read_windows(store: Store, reader, file_id: int, fs_path: str, sample_rate: int, prior: str | None,
                 forced: str | None, wanted: set[int] | None = None):
    """(the recording's windows as (passage id, start, end), the Reading of them): the recording
    streamed once, the windows whose passage ids are in `wanted` (or all) read in chunks. What
    `--rerank` reads a recording with."""
    from .reading.recording import read_recording

    items = store.file_passages(file_id)
    want = None if wanted is None else {n for n, (pid, _, _) in enumerate(items) if pid in wanted}
    return items, read_recording(reader, [(a, b) for _, a, b in items], _audio_of(fs_path, sample_rate), prior, forced,
                                 want)


def _audio_of(fs_path: str, sample_rate: int):
    def audio_of(sp):
        return (w for _, w in iter_passage_audio(fs_path, [Span(a, b) for a, b in sp], sample_rate))
    return audio_of


@dataclass(frozen=True)
class _Queued:
    """What the reading queue carries for one recording, to store its Reading when it is done."""

    file_id: int
    key: str
    items: tuple  # its windows, (passage id, start, end)
    keep: tuple[int, ...]  # the positions in `items` read for this run


def start_reading(store: Store, run: IndexRun, summary: IndexSummary) -> None:
    """Open this batch's reading queue (run.queue): recordings queued with queue_reading are read
    together, and each one's transcripts are stored (counted in `summary`) as soon as all of it
    is read. finish_run reads what is left; a run stopped before that leaves it to the next."""
    from .reading.queue import ReadingQueue

    def done(q: _Queued, reading) -> None:
        summary.transcribed += _store_reading(store, run, q, reading)

    run.queue = ReadingQueue(run.reader, done) if run.reader is not None else None


def queue_reading(store: Store, run: IndexRun, file_id: int, key: str, fs_path: str, wanted: set[int] | None = None) -> None:
    """Queue one recording's windows (those in `wanted`, or all) for reading in chunks; what was
    said in each, its language and its text vector are stored in one transaction once it is read.
    Raises AudioError when the file cannot be read (nothing of it is stored then)."""
    items = tuple(store.file_passages(file_id))
    if not items:
        return
    keep = tuple(n for n, (pid, _, _) in enumerate(items) if wanted is None or pid in wanted)
    want = None if wanted is None else set(keep)
    try:
        language = run.queue.add(_Queued(file_id, key, items, keep), [(a, b) for _, a, b in items],
                                 _audio_of(fs_path, run.model.config.sample_rate), run.prior, run.language, want)
    except AudioError as e:  # changed or gone since it was embedded: the next run reads it
        run.on_event("transcribe_failed", path=key, reason=e.reason)
        return
    # Counted when decided, not when read: the next recordings' prior is known before decoding.
    run.languages[language.code if language else "en"] += 1


def _store_reading(store: Store, run: IndexRun, q: _Queued, r) -> int:
    items, keep = q.items, q.keep
    texts = {items[n][0]: r.texts[n] for n in keep}
    said = [r.texts[n] for n in keep]
    vecs = text_vectors(run.model, said)
    e5 = e5_vectors(said)
    code = r.language.code if r.language else "en"  # an English-only reader reads English
    store.put_transcripts(texts, {items[n][0]: v for n, v in zip(keep, vecs)},
                          langs={items[n][0]: r.langs[n] or code for n in keep}, file_language=(q.file_id, code),
                          e5_vectors=None if e5 is None else {items[n][0]: v for n, v in zip(keep, e5)})
    run.on_event("transcribed", path=q.key, passages=len(keep), seconds=r.seconds, language=code)
    return len(keep)


def text_vectors(model, texts: Sequence[str]):
    """The text encoder's vector of each transcript (zeros for an empty one, which is not stored)."""
    import numpy as np

    out = np.zeros((len(texts), model.dim), dtype=np.float32)
    spoken = [i for i, t in enumerate(texts) if t.strip()]
    if spoken:
        out[spoken] = model.embed_text([texts[i] for i in spoken])
    return out


def e5_vectors(texts: Sequence[str]):
    """e5's vector of each transcript (zeros for an empty one, which is not stored), or None where
    e5 cannot load on this install (the index then holds USE vectors alone, as before)."""
    import numpy as np

    from .encoders.e5 import available

    e5 = available()
    if e5 is None:
        return None
    out = np.zeros((len(texts), e5.dim), dtype=np.float32)
    spoken = [i for i, t in enumerate(texts) if t.strip()]
    if spoken:
        out[spoken] = e5.encode([texts[i] for i in spoken])
    return out


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _stat_failure(path: Path, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if path.is_symlink() and e.errno == errno.ENOENT:
        return "broken symbolic link"
    return e.strerror or str(e)


def _hash_bounded(path: Path, stall_s: float) -> str:
    """file_key(path), read on a thread of its own: a read that makes no progress for stall_s
    seconds (a hung network mount) raises TimeoutError instead of holding the writer lock for
    ever. A slow read that keeps moving is waited for. The stuck thread is left behind (a
    blocked read cannot be cancelled); it ends with the process."""
    box: dict = {}
    ticks = [0]

    def work() -> None:
        try:
            box["key"] = file_key(path, on_chunk=lambda: ticks.__setitem__(0, ticks[0] + 1))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    t = threading.Thread(target=work, daemon=True, name="clasp-hash")
    t.start()
    seen = -1
    while True:
        t.join(stall_s)
        if not t.is_alive():
            break
        if ticks[0] == seen:
            raise TimeoutError(path)
        seen = ticks[0]
    if "error" in box:
        raise box["error"]
    return box["key"]


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a file"


@dataclass
class FileJob:
    """A file this run must embed: checked (a regular file, changed since it was indexed) and hashed."""

    path: Path
    key: str  # its name in the index
    raw: bytes | None
    size: int
    mtime: float
    digest: str
    old: object | None  # the FileRecord it replaces


def fail_file(store: Store, key: str, raw: bytes | None, reason: str, summary: IndexSummary, on_event: Event, size: int = 0,
              mtime: float = 0.0, digest: str | None = None) -> None:
    """Record that `key` could not be indexed, and why (its old passages go: the file changed)."""
    store.replace_file(key, size, mtime, digest, None, error=reason, path_bytes=raw)
    summary.failed.append((key, reason))
    on_event("file", path=key, status="failed", reason=reason, seconds=0.0)


def check_file(store: Store, path: Path, summary: IndexSummary, on_event: Event, read_stall_s: float = 120.0) -> FileJob | None:
    """The file as a job to embed, or None when it is unchanged (counted) or cannot be read (recorded).
    Both engines ask this on the writer, so they skip and fail files alike."""
    key, raw = display_path(path), raw_name(path)
    try:
        st = path.stat()
    except OSError as e:
        return fail_file(store, key, raw, _stat_failure(path, e), summary, on_event)
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or a device (or a link to one) never ends, or blocks, when read: never open it.
        return fail_file(store, key, raw, f"not a regular file ({_kind(st.st_mode)})", summary, on_event)
    old = store.file(key)
    # Only a success is final: a file that failed before is tried again (it may be readable now).
    if old is not None and old.status == "ok" and old.size == st.st_size and old.mtime == st.st_mtime:
        summary.unchanged += 1
        on_event("file", path=key, status="unchanged", seconds=old.duration or 0.0)
        return None
    try:
        digest = _hash_bounded(path, read_stall_s)
    except TimeoutError:
        return fail_file(store, key, raw, f"reading stalled for {read_stall_s:g} s (a hung network mount?)", summary, on_event,
                         st.st_size, st.st_mtime)
    except OSError as e:
        return fail_file(store, key, raw, e.strerror or str(e), summary, on_event, st.st_size, st.st_mtime)
    if old is not None and old.hash == digest and old.status == "ok":
        with store.transaction():  # touched but not changed: no need to re-embed
            store.touch_file(old.id, st.st_mtime)
        summary.unchanged += 1
        on_event("file", path=key, status="unchanged", seconds=old.duration or 0.0)
        return None
    return FileJob(path, key, raw, st.st_size, st.st_mtime, digest, old)


def commit_file(store: Store, job: FileJob, spans: Sequence[tuple[float, float]], vectors, duration: float,
                warning: str | None, summary: IndexSummary, on_event: Event, texts: Sequence[str] | None = None,
                text_vectors=None) -> list[int]:
    """Swap in a file's windows, vectors (and transcripts) in one transaction; returns their ids."""
    ids = store.replace_file(job.key, job.size, job.mtime, job.digest, duration, spans, vectors, path_bytes=job.raw,
                             warning=warning, texts=texts, text_vectors=text_vectors)
    summary.transcribed += len(texts or [])
    if job.old is None:
        summary.added += 1
    else:
        summary.updated += 1
    summary.passages += len(spans)
    summary.audio_seconds += duration
    if warning:
        summary.warnings.append((job.key, warning))
    on_event("file", path=job.key, status="updated" if job.old else "added", seconds=duration, passages=len(spans),
             warning=warning)
    return ids


def cut_windows(path: Path, cfg: PassageConfig | WindowConfig, sample_rate: int):
    """(duration, the file's windows as (span, audio), read lazily): what either engine embeds.
    Decoding problems surface as AudioError or, for a partly decoded file, PartialAudioWarning."""
    spans, duration = find_spans(path, cfg)
    return duration, ((span, wave) for span, wave in iter_passage_audio(path, spans, sample_rate)
                      if wave.size >= MIN_WINDOW_SAMPLES)


def partial_warning(caught: Sequence[warnings.WarningMessage]) -> str | None:
    """Why a file was only partly decoded, from the warnings recorded while cutting it."""
    partial = [w.message for w in caught if isinstance(w.message, PartialAudioWarning)]
    return str(partial[0].reason) if partial else None
