"""`clasp index`: scan recordings, skip what is unchanged, embed passages, update the store.

Each file is committed in its own transaction (old passages out, new ones in), so an
interrupted run keeps every file it finished and a rerun picks up the rest, with no duplicates.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from .aliases import own_name
from .errors import AudioError, PartialAudioWarning, UsageError
from .feature_cache import file_key
from .names import display_path, raw_name
from .passages import (
    DEFAULT_SEGMENTATION, SEGMENTATIONS, PassageConfig, Span, WindowConfig, find_spans, iter_passage_audio,
    segmentation_from_json, segmentation_name, segmentation_to_json,
)
from .store import LOCK, Store, index_file_names

if TYPE_CHECKING:
    from .engines.ray_engine import RayConfig

AUDIO_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".m4b", ".mp4", ".aac",
    ".webm", ".mka", ".mkv", ".wma", ".aif", ".aiff", ".caf", ".amr", ".3gp", ".mov", ".spx",
}
Event = Callable[..., None]
ENGINES = ("local", "ray")
ANN_CHOICES = ("auto", "hnsw", "usearch")
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

    @property
    def indexed(self) -> int:
        return self.added + self.updated

    @property
    def speed(self) -> float:
        """Audio seconds embedded per wall-clock second."""
        return self.audio_seconds / self.elapsed if self.elapsed > 0 else 0.0


def _noop(*_a, **_k) -> None:
    pass


def scan(paths: Sequence[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files under the given paths (files named explicitly are always tried).

    Symbolic links to folders are followed, each real folder once (so a link loop ends); a file
    reached by several paths (a link beside its target) is listed once, preferring a path that
    is not a link.
    """
    chosen: dict[str, Path] = {}  # real path -> the path it is indexed under
    problems: list[tuple[str, str]] = []
    seen_dirs: set[tuple[int, int]] = set()

    def offer(f: Path) -> None:
        try:
            real = os.path.realpath(f, strict=True)
        except OSError:
            real = str(f)  # broken link or loop: indexed (and failed) under its own name
        have = chosen.get(real)
        if have is None or (str(have) != real and (str(f) == real or (have.is_symlink() and not f.is_symlink()))):
            chosen[real] = f

    linked: list[Path] = []  # folders reached through a link: walked after every real folder

    def walk(top: Path) -> None:
        stack = [top]
        while stack:
            d = stack.pop()
            try:
                st = d.stat()
                if (st.st_dev, st.st_ino) in seen_dirs:
                    continue  # a link loop, or a folder already walked under its real name
                seen_dirs.add((st.st_dev, st.st_ino))
                entries = sorted(os.scandir(d), key=lambda e: e.name, reverse=True)
            except OSError as e:
                problems.append((display_path(d), e.strerror or str(e)))
                continue
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    is_dir = e.is_dir()  # follows links: a linked folder is walked like a real one
                except OSError:
                    is_dir = False
                if is_dir:
                    (linked if e.is_symlink() else stack).append(Path(e.path))
                elif Path(e.name).suffix.lower() in AUDIO_EXTENSIONS:
                    offer(Path(e.path))

    for p in paths:
        p = Path(os.path.abspath(Path(p).expanduser()))
        try:
            is_dir = p.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            walk(p)
        elif os.path.lexists(p):
            offer(p)
        else:
            problems.append((display_path(p), "path not found"))
    while linked:
        walk(linked.pop(0))
    return sorted(chosen.values()), problems


def index_paths(
    paths: Sequence[str | Path],
    index_dir: str | Path,
    model=None,
    model_ref: str | None = None,
    passages: PassageConfig | WindowConfig | None = None,
    prune: bool = False,
    batch_size: int = 64,
    on_event: Event = _noop,
    transcribe: bool | None = False,
    read_stall_s: float = 120.0,
    ann: str | None = None,
    engine: str = "local",
    ray: "RayConfig | None" = None,
    language: str | None = None,
) -> IndexSummary:
    """Index recordings under `paths` into the index at `index_dir`.

    passages: how recordings are cut. None: as this index was cut before (sentence windows for a
    new index). batch_size: passages embedded together, enough for the encoder to find several of
    each padded length per call. transcribe: also store every passage's transcript and its text
    vector (what fused search compares a query with), reading each window's encoder output once
    for both; an index that has windows without transcripts gets them filled in. Once asked for,
    an index keeps transcribing what later runs add. None: as the index records, transcribing a
    new index (what `clasp index` does); False on a new index records that it is not transcribed,
    and later None runs keep it so. read_stall_s: a file whose first read (its content hash) makes
    no progress for this long is recorded as failed, not waited on. ann: the nearest-neighbour
    engine, recorded in the index ("hnsw", "usearch", or "auto": by size); None keeps the
    recorded one. engine: "local" (this process) or "ray" (a Ray cluster, as `ray`, an
    engines.ray_engine.RayConfig, says: by default RAY_ADDRESS or a local cluster started for the
    run): the same windows and vectors either way. language: read every recording of this run in
    this language (a Whisper code) instead of the one detected for it."""
    from .registry import DEFAULT_MODEL, load_model

    if not paths:
        raise UsageError("nothing to index: give at least one file or folder")
    t0 = time.perf_counter()
    model_ref = model_ref or (str(model.path) if model is not None and model.path else DEFAULT_MODEL)
    model = model or load_model(model_ref)
    files, problems = scan(paths)
    summary = IndexSummary(failed=list(problems))
    on_event("scan", files=len(files))
    created = not Path(index_dir).expanduser().exists()
    try:
        return _index_into(index_dir, model, model_ref, files, summary, paths, passages, prune, batch_size, on_event,
                           transcribe, t0, read_stall_s, ann, engine, ray, language)
    except BaseException:
        if created:
            _remove_if_empty(Path(index_dir).expanduser())
        raise


def _remove_if_empty(index_dir: Path) -> None:
    """Take away an index folder this run created, when it failed before indexing a file
    (a model that could not load, say): no empty index is left behind."""
    try:
        with Store.open(index_dir) as store:
            if store.files():
                return
    except Exception:
        pass
    try:
        if {p.name for p in index_dir.iterdir()} <= {LOCK, *index_file_names(index_dir)}:  # nothing but what this run wrote
            shutil.rmtree(index_dir)
    except OSError:
        pass


def _index_into(index_dir, model, model_ref, files, summary, paths, passages, prune, batch_size, on_event, transcribe,
                t0, read_stall_s, ann=None, engine="local", ray=None, language=None) -> IndexSummary:
    if engine not in ENGINES:
        raise UsageError(f"unknown --engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "ray":
        from .extras import require

        require("ray", "--engine ray")
    # quick_check reads every page once: a damaged database is found here, not skipped as "unchanged".
    with Store.open(index_dir, write=True, model_id=model.id, dim=model.dim, check=True) as store:
        run = prepare_run(store, model, model_ref, passages, transcribe, on_event, batch_size, read_stall_s, ann, language)
        if engine == "ray":
            from dataclasses import replace

            from .engines.ray_engine import RayConfig, index_files_ray

            cfg = replace(ray or RayConfig(), model_ref=(ray.model_ref if ray and ray.model_ref else model_ref))
            index_files_ray(store, run, files, paths, prune, summary, cfg)
        else:
            index_files(store, run, files, paths, prune, summary)
    summary.elapsed = time.perf_counter() - t0
    return summary


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

    @property
    def prior(self) -> str | None:
        """The language most of the index is read in."""
        return self.languages.most_common(1)[0][0] if self.languages else None


def prepare_run(store: Store, model, model_ref: str, passages: PassageConfig | WindowConfig | None, transcribe: bool | None,
                on_event: Event = _noop, batch_size: int = 64, read_stall_s: float = 120.0, ann: str | None = None,
                language: str | None = None) -> IndexRun:
    """Record (or check) the index's model, segmentation, transcription setting and ANN engine,
    and repair its graphs, before the first file of a run; `clasp index --watch` does this once."""
    passages = segmentation_for(store, passages)
    if ann is not None:
        if ann not in ANN_CHOICES:
            raise UsageError(f"unknown --ann {ann!r}; choose one of {', '.join(ANN_CHOICES)}")
        store.set_ann_engine(ann)
    with store.transaction():
        if store.meta("model_ref") is None:
            store.set_meta("model_ref", model_ref)
        store.set_meta("segmentation", segmentation_to_json(passages))
    if transcribe is None:  # the caller's default: what the index records, transcribing a new one
        transcribe = store.meta("transcribe") != "0"
    if transcribe and not store.transcribed():
        with store.transaction():
            store.set_meta("transcribe", "1")
    elif transcribe is False and store.meta("transcribe") is None and not store.files():
        with store.transaction():
            store.set_meta("transcribe", "0")  # chosen for a new index: later default runs keep it
    store.graph()  # a graph left stale or damaged by an earlier run is repaired and written back now
    store.transcript_graph()  # likewise; loaded now, so what this run adds goes into it
    fill_transcript_vectors(store, model, on_event)  # an index transcribed by an older clasp
    transcriber = reader = None
    if store.transcribed():
        from .reading.reader import ChunkReader
        from .transcribe import shared_transcriber, whisper_for

        transcriber = shared_transcriber(whisper_for(model.config.speech_encoder), model.device)
        reader = ChunkReader(transcriber)
        if store.meta("reader") != transcriber.model:
            with store.transaction():
                store.set_meta("reader", transcriber.model)  # the Whisper that reads (`clasp info`)
    language = check_language(language, transcriber)
    return IndexRun(model, passages, transcriber, batch_size, read_stall_s, on_event, reader, language,
                    Counter(store.languages()))


def check_language(code: str | None, transcriber=None) -> str | None:
    """`--language`, checked against Whisper's own list (and the reader: tiny.en reads only English)."""
    if code is None:
        return None
    from .reading.language import WHISPER_LANGUAGES

    code = code.strip().lower()
    if code not in WHISPER_LANGUAGES:
        raise UsageError(f"--language {code!r} is not a language Whisper reads; use a code such as en, de, cs, ja")
    if transcriber is not None and not transcriber.multilingual and code != "en":
        raise UsageError(f"--language {code}: the reader {transcriber.model} reads English only")
    return code


def index_files(store: Store, run: IndexRun, files: Sequence[Path], paths: Sequence[str | Path], prune: bool,
                summary: IndexSummary) -> IndexSummary:
    """Index `files` (each in its own transaction), then with `prune` forget indexed files under
    `paths` that are gone, then transcribe what still lacks a transcript. Ctrl-C stops between
    files and sets summary.interrupted; what was finished is kept."""
    last_save = time.monotonic()
    try:
        for path in files:
            _index_one(store, run, path, summary)
            if time.monotonic() - last_save > GRAPH_SAVE_S:  # bound what a kill -9 makes the next open rebuild
                store.save_graphs()
                last_save = time.monotonic()
        finish_run(store, run, files, paths, prune, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
    return summary


def finish_run(store: Store, run: IndexRun, files: Sequence[Path], paths: Sequence[str | Path], prune: bool,
               summary: IndexSummary) -> None:
    """After the files of a run (either engine): prune, report earlier failures, transcribe what lacks a transcript."""
    on_event = run.on_event
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
        summary.transcribed += transcribe_missing(store, run.model, on_event, run=run)


def segmentation_for(store: Store, requested: PassageConfig | WindowConfig | None) -> PassageConfig | WindowConfig:
    """How this run cuts recordings. An index cuts them all one way, so a search compares like
    with like: the first run records it, later runs reuse it, and asking for the other kind fails."""
    recorded = store.meta("segmentation")
    if recorded is None:
        if requested is not None:
            return requested
        # Indexes from before this was recorded were cut into passages, then the only default.
        return PassageConfig() if store.files() else SEGMENTATIONS[DEFAULT_SEGMENTATION]()
    try:
        have = segmentation_from_json(recorded)
    except ValueError as e:
        raise UsageError(f"{store.dir}: {e}; `clasp index --rebuild` re-cuts every file") from None
    if requested is None:
        return have
    if segmentation_name(requested) != segmentation_name(have):
        raise UsageError(f"{store.dir}: this index is cut into {segmentation_name(have)}, not {segmentation_name(requested)}; "
                         f"use a new --index, or --rebuild --segmentation {segmentation_name(requested)} to re-cut every file")
    return requested  # other lengths apply to what this run embeds


def fill_transcript_vectors(store: Store, model, on_event: Event = _noop, chunk: int = 512) -> int:
    """Embed stored transcripts that have no text vector yet (an index transcribed by an older
    clasp, or a transcript cached where vectors could not be written); no transcribing again."""
    done = 0
    while rows := store.transcripts_without_vectors(limit=chunk):
        vecs = model.embed_text([t for _, t in rows])
        store.put_transcript_vectors({pid: v for (pid, _), v in zip(rows, vecs)})
        done += len(rows)
        on_event("text_vectors", done=done)
    return done


def transcribe_missing(store: Store, model, on_event: Event = _noop, run: IndexRun | None = None) -> int:
    """Read every passage that has no transcript yet, a recording at a time, in chunks with its
    recording's context and language (read_into_store), committing each recording's transcripts
    at once.

    This is how an index embedded without transcripts gets them: the index stays searchable
    throughout (each commit is a short transaction beside the readers), searches use each
    transcript as soon as it lands, and a killed run keeps what it committed, so a rerun does
    only the rest. Events: "transcribe_start" (passages, seconds), then "transcribed" per recording.
    """
    rows = store.db.execute(
        "SELECT p.id, f.path, p.start, p.end FROM passages p JOIN files f ON p.file_id=f.id "
        "WHERE NOT EXISTS (SELECT 1 FROM transcripts t WHERE t.passage_id=p.id) ORDER BY f.path, p.start").fetchall()
    if not rows:
        return 0
    missing: dict[str, set[int]] = {}
    for pid, path, _, _ in rows:
        missing.setdefault(path, set()).add(int(pid))
    on_event("transcribe_start", passages=len(rows), seconds=sum(e - s for _, _, s, e in rows))
    if run is None or run.reader is None:
        from .reading.reader import ChunkReader
        from .transcribe import shared_transcriber, whisper_for

        transcriber = shared_transcriber(whisper_for(model.config.speech_encoder), model.device)
        run = IndexRun(model, WindowConfig(), transcriber, 64, 120.0, on_event, ChunkReader(transcriber), None,
                       Counter(store.languages()))
    done = 0
    for path, ids in missing.items():
        rec = store.file(path)
        if rec is None:
            continue
        try:
            done += read_into_store(store, run, rec.id, path, rec.fs_path, ids)
        except AudioError as e:  # gone or changed since it was embedded: the next run re-embeds it
            on_event("transcribe_failed", path=path, reason=e.reason)
    return done


def read_into_store(store: Store, run: IndexRun, file_id: int, key: str, fs_path: str, wanted: set[int] | None = None) -> int:
    """Read one recording's windows (those in `wanted`, or all) in chunks and store what was said in
    each, its language and its text vector, in one transaction. Returns windows stored."""
    from .reading.recording import read_recording

    items = store.file_passages(file_id)
    if not items:
        return 0
    spans = [(a, b) for _, a, b in items]
    sr = run.model.config.sample_rate

    def audio_of(sp):
        return (w for _, w in iter_passage_audio(fs_path, [Span(a, b) for a, b in sp], sr))

    want = None if wanted is None else {n for n, (pid, _, _) in enumerate(items) if pid in wanted}
    r = read_recording(run.reader, spans, audio_of, run.prior, run.language, want)
    keep = [n for n in range(len(items)) if want is None or n in want]
    texts = {items[n][0]: r.texts[n] for n in keep}
    vecs = text_vectors(run.model, [r.texts[n] for n in keep])
    code = r.language.code if r.language else "en"  # an English-only reader reads English
    store.put_transcripts(texts, {items[n][0]: v for n, v in zip(keep, vecs)},
                          langs={items[n][0]: r.langs[n] or code for n in keep}, file_language=(file_id, code))
    run.languages[code] += 1
    run.on_event("transcribed", path=key, passages=len(keep), seconds=r.seconds, language=code)
    return len(keep)


def text_vectors(model, texts: Sequence[str]):
    """The text encoder's vector of each transcript (zeros for an empty one, which is not stored)."""
    import numpy as np

    out = np.zeros((len(texts), model.dim), dtype=np.float32)
    spoken = [i for i, t in enumerate(texts) if t.strip()]
    if spoken:
        out[spoken] = model.embed_text([texts[i] for i in spoken])
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


def _index_one(store: Store, run: IndexRun, path: Path, summary: IndexSummary) -> None:
    """Embed one file's windows and commit them; then, in an index that transcribes, read the
    recording whole (read_into_store). A kill between the two leaves windows without transcripts,
    which the next run reads (transcribe_missing)."""
    model, on_event = run.model, run.on_event
    job = check_file(store, path, summary, on_event, run.read_stall_s)
    if job is None:
        return
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PartialAudioWarning)
            duration, windows = cut_windows(path, run.passages, model.config.sample_rate)
            vectors, kept = [], []
            batch: list = []
            for span, wave in windows:
                batch.append(wave)
                kept.append((span.start, span.end))
                if len(batch) == run.batch_size:
                    vectors.append(model.embed_audio(batch))
                    batch = []
            if batch:
                vectors.append(model.embed_audio(batch))
        if not kept:
            raise AudioError(path, NO_SPEECH)
    except AudioError as e:
        return fail_file(store, job.key, job.raw, e.reason, summary, on_event, job.size, job.mtime, job.digest)
    import numpy as np

    commit_file(store, job, kept, np.concatenate(vectors), duration, partial_warning(caught), summary, on_event)
    if run.reader is not None:
        rec = store.file(job.key)
        try:
            summary.transcribed += read_into_store(store, run, rec.id, job.key, str(path))
        except AudioError as e:  # changed or gone since it was embedded: the next run reads it
            on_event("transcribe_failed", path=job.key, reason=e.reason)
