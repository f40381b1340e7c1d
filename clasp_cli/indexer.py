"""`clasp index`: scan recordings, skip what is unchanged, embed passages, update the store.

Each file is committed in its own transaction (old passages out, new ones in), so an
interrupted run keeps every file it finished and a rerun picks up the rest, with no duplicates.
The stages both engines share live in pipeline.py; this module runs them in this process (the
local engine) or hands the run to engines/ray_engine.py.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import AudioError, PartialAudioWarning, UsageError
from .names import display_path
from .passages import (
    DEFAULT_SEGMENTATION, SEGMENTATIONS, PassageConfig, WindowConfig, segmentation_from_json, segmentation_name,
    segmentation_to_json,
)
from .pipeline import (
    GRAPH_SAVE_S, NO_SPEECH, Event, IndexRun, IndexSummary, check_file, commit_file, cut_windows, fail_file, finish_run,
    hear_speakers, partial_warning, queue_reading, start_reading, stop_hearing,
)
from .store import LOCK, Store, index_file_names

if TYPE_CHECKING:
    from .engines.ray_engine import RayConfig

AUDIO_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".m4b", ".mp4", ".aac",
    ".webm", ".mka", ".mkv", ".wma", ".aif", ".aiff", ".caf", ".amr", ".3gp", ".mov", ".spx",
}
ENGINES = ("local", "ray")
ANN_CHOICES = ("auto", "hnsw", "usearch")



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
    reader: str | None = None,
    speakers: bool | None = None,
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
    this language (a Whisper code) instead of the one detected for it. reader: the Whisper that
    reads what was said (see `reader_name`), recorded in the index; None: the recorded one, else
    the Whisper of the model's encoder family. speakers: find who speaks where (clasp_cli.speakers);
    None: as the index records, on for a new index; False on a new index records that it is off."""
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
                           transcribe, t0, read_stall_s, ann, engine, ray, language, reader, speakers)
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
                t0, read_stall_s, ann=None, engine="local", ray=None, language=None, reader=None, speakers=None) -> IndexSummary:
    if engine not in ENGINES:
        raise UsageError(f"unknown --engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "ray":
        from .extras import require

        require("ray", "--engine ray")
    # quick_check reads every page once: a damaged database is found here, not skipped as "unchanged".
    with Store.open(index_dir, write=True, model_id=model.id, dim=model.dim, check=True) as store:
        run = prepare_run(store, model, model_ref, passages, transcribe, on_event, batch_size, read_stall_s, ann, language,
                          reader, speakers)
        if engine == "ray":
            from dataclasses import replace

            from .engines.ray_engine import RayConfig, index_files_ray

            cfg = replace(ray or RayConfig(), model_ref=(ray.model_ref if ray and ray.model_ref else model_ref))
            index_files_ray(store, run, files, paths, prune, summary, cfg)
        else:
            index_files(store, run, files, paths, prune, summary)
    summary.elapsed = time.perf_counter() - t0
    return summary



def prepare_run(store: Store, model, model_ref: str, passages: PassageConfig | WindowConfig | None, transcribe: bool | None,
                on_event: Event = _noop, batch_size: int = 64, read_stall_s: float = 120.0, ann: str | None = None,
                language: str | None = None, reader: str | None = None, speakers: bool | None = None) -> IndexRun:
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
    name = index_reader(store, model, reader)
    transcriber = chunk_reader = None
    if store.transcribed():
        from .reading.reader import ChunkReader
        from .transcribe import shared_transcriber

        transcriber = shared_transcriber(name, model.device)
        chunk_reader = ChunkReader(transcriber)
        if store.meta("reader") != name:
            with store.transaction():
                store.set_meta("reader", name)  # the Whisper that reads (`clasp info`, `--rerank`)
    language = check_language(language, transcriber)
    return IndexRun(model, passages, transcriber, batch_size, read_stall_s, on_event, chunk_reader, language,
                    Counter(store.languages()), speakers=speaker_finder(store, speakers))


def speaker_finder(store: Store, speakers: bool | None):
    """The Diarizer of this run, or None when it finds no speakers: `speakers` None keeps what the
    index records (on for a new one); False on a new index records that it is off. Raises
    ModelError (one line, exit 4) when the speaker models are damaged."""
    from .speakers.index import has_speakers

    if speakers is None:
        speakers = store.meta("speakers") != "0"
    elif speakers is False and store.meta("speakers") is None and not store.files():
        with store.transaction():
            store.set_meta("speakers", "0")  # chosen for a new index: later default runs keep it
    if speakers and store.meta("speakers") == "0":
        with store.transaction():
            store.set_meta("speakers", "1")
    if not speakers or not has_speakers(store):
        return None
    from .speakers.diarize import Diarizer

    return Diarizer()


def reader_name(reader: str) -> str:
    """How a reader is recorded: a named model as named, a CTranslate2 directory as its full path."""
    p = Path(reader).expanduser()
    return str(p.resolve()) if p.is_dir() else reader


def index_reader(store: Store, model, requested: str | None = None) -> str:
    """The Whisper that reads this index: `requested` (--reader), else the recorded one, else the
    Whisper of the model's encoder family. One index is read by one reader, so that its
    transcripts compare: asking another for an index that holds transcripts is a usage error."""
    from .transcribe import whisper_for

    recorded = store.meta("reader")
    if requested is None:
        return recorded or whisper_for(model.config.speech_encoder)
    name = reader_name(requested)
    if recorded and name != recorded and store.has_transcript_table and \
            store.db.execute("SELECT 1 FROM transcripts LIMIT 1").fetchone():
        raise UsageError(f"{store.dir} was read by {recorded}; its transcripts and {name}'s would not compare. "
                         f"Index into a new folder (--index) to read with {name}")
    return name


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
    start_reading(store, run, summary)
    try:
        for path in files:
            _index_one(store, run, path, summary)
            if time.monotonic() - last_save > GRAPH_SAVE_S:  # bound what a kill -9 makes the next open rebuild
                store.save_graphs()
                last_save = time.monotonic()
        finish_run(store, run, files, paths, prune, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        run.queue = None  # what is still queued is read by the next run
        stop_hearing(run)  # and what speaker work was not stored is found by the next run
    return summary




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
    return done + fill_e5_vectors(store, on_event, chunk)


def fill_e5_vectors(store: Store, on_event: Event = _noop, chunk: int = 256) -> int:
    """Embed with e5 the stored transcripts that have no e5 vector yet (an index transcribed
    before e5, or by an install where it could not load), a committed chunk at a time, so a kill
    loses at most one chunk. Does nothing where e5 cannot load here."""
    from .encoders.e5 import available
    from .store import E5

    total = store.count_transcripts_without_vectors(space=E5)
    if not total:
        return 0
    e5 = available()
    if e5 is None:
        return 0
    done = 0
    while rows := store.transcripts_without_vectors(limit=chunk, space=E5):
        vecs = e5.encode([t for _, t in rows])
        store.put_transcript_vectors({pid: v for (pid, _), v in zip(rows, vecs)}, space=E5)
        done += len(rows)
        on_event("e5_vectors", done=done, total=total)
    return done


def _index_one(store: Store, run: IndexRun, path: Path, summary: IndexSummary) -> None:
    """Embed one file's windows and commit them; then, in an index that transcribes, read the
    recording whole (queue_reading: with the next recordings of the batch). A kill between the two
    leaves windows without transcripts, which the next run reads (transcribe_missing)."""
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
    file_id = store.file(job.key).id
    hear_speakers(store, run, file_id, job.key, str(path))  # on a worker thread, while Whisper reads
    if run.queue is not None:
        queue_reading(store, run, file_id, job.key, str(path))
