"""`clasp index`: scan recordings, skip what is unchanged, embed passages, update the store.

Each file is committed in its own transaction (old passages out, new ones in), so an
interrupted run keeps every file it finished and a rerun picks up the rest, with no duplicates.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .errors import AudioError, UsageError
from .feature_cache import file_key
from .passages import PassageConfig, WindowConfig, find_spans, iter_passage_audio
from .store import Store

AUDIO_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".m4b", ".mp4", ".aac",
    ".webm", ".mka", ".mkv", ".wma", ".aif", ".aiff", ".caf", ".amr", ".3gp", ".mov", ".spx",
}
Event = Callable[..., None]


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
    interrupted: bool = False

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
    """Audio files under the given paths (files named explicitly are always tried)."""
    found: list[Path] = []
    problems: list[tuple[str, str]] = []
    for p in paths:
        p = Path(os.path.abspath(Path(p).expanduser()))
        if p.is_dir():
            for root, dirs, files in os.walk(p, onerror=lambda e: problems.append((e.filename, e.strerror or str(e)))):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    f = Path(root) / name
                    if f.suffix.lower() in AUDIO_EXTENSIONS and not name.startswith("."):
                        found.append(f)
        elif p.exists() or p.is_symlink():
            found.append(p)
        else:
            problems.append((str(p), "path not found"))
    return sorted(set(found)), problems


def index_paths(
    paths: Sequence[str | Path],
    index_dir: str | Path,
    model=None,
    model_ref: str | None = None,
    passages: PassageConfig | WindowConfig = WindowConfig(),
    prune: bool = False,
    batch_size: int = 16,
    on_event: Event = _noop,
) -> IndexSummary:
    """Index recordings under `paths` into the index at `index_dir`."""
    from .registry import DEFAULT_MODEL, load_model

    if not paths:
        raise UsageError("nothing to index: give at least one file or folder")
    t0 = time.perf_counter()
    model_ref = model_ref or (str(model.path) if model is not None and model.path else DEFAULT_MODEL)
    model = model or load_model(model_ref)
    files, problems = scan(paths)
    summary = IndexSummary(failed=list(problems))
    on_event("scan", files=len(files))
    with Store.open(index_dir, write=True, model_id=model.id, dim=model.dim) as store:
        if store.meta("model_ref") is None:
            with store.transaction():
                store.set_meta("model_ref", model_ref)
        last_save = time.monotonic()
        try:
            for path in files:
                _index_one(store, model, path, passages, batch_size, summary, on_event)
                if time.monotonic() - last_save > 60:  # bound what a kill -9 makes the next open rebuild
                    store.save_graph()
                    last_save = time.monotonic()
            if prune:
                roots = [os.path.abspath(p) for p in paths]
                gone = [f.path for f in store.files() if _under(f.path, roots) and not os.path.lexists(f.path)]
                summary.removed = store.remove_files(gone)
                for g in gone:
                    on_event("removed", path=g)
        except KeyboardInterrupt:
            summary.interrupted = True
    summary.elapsed = time.perf_counter() - t0
    return summary


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _index_one(store: Store, model, path: Path, cfg: PassageConfig | WindowConfig, batch_size: int, summary: IndexSummary, on_event: Event) -> None:
    key = str(path)
    try:
        st = path.stat()
    except OSError as e:
        reason = "broken symbolic link" if path.is_symlink() else (e.strerror or str(e))
        store.replace_file(key, 0, 0.0, None, None, error=reason)
        summary.failed.append((key, reason))
        on_event("file", path=key, status="failed", reason=reason, seconds=0.0)
        return
    old = store.file(key)
    if old is not None and old.size == st.st_size and old.mtime == st.st_mtime:
        summary.unchanged += 1
        on_event("file", path=key, status="unchanged", seconds=old.duration or 0.0)
        return
    try:
        digest = file_key(path)
    except OSError as e:
        reason = e.strerror or str(e)
        store.replace_file(key, st.st_size, st.st_mtime, None, None, error=reason)
        summary.failed.append((key, reason))
        on_event("file", path=key, status="failed", reason=reason, seconds=0.0)
        return
    if old is not None and old.hash == digest and old.status == "ok":
        with store.transaction():  # touched but not changed: no need to re-embed
            store.touch_file(old.id, st.st_mtime)
        summary.unchanged += 1
        on_event("file", path=key, status="unchanged", seconds=old.duration or 0.0)
        return
    try:
        spans, duration = find_spans(path, cfg)
        vectors, kept = [], []
        batch: list = []
        for span, wave in iter_passage_audio(path, spans, model.config.sample_rate):
            if wave.size < 160:  # past the real end of a file whose header overstated its length
                continue
            batch.append(wave)
            kept.append((span.start, span.end))
            if len(batch) == batch_size:
                vectors.append(model.embed_audio(batch))
                batch = []
        if batch:
            vectors.append(model.embed_audio(batch))
        if not kept:
            raise AudioError(path, "no speech found (silent or too quiet)")
    except AudioError as e:
        store.replace_file(key, st.st_size, st.st_mtime, digest, None, error=e.reason)
        summary.failed.append((key, e.reason))
        on_event("file", path=key, status="failed", reason=e.reason, seconds=0.0)
        return
    import numpy as np

    store.replace_file(key, st.st_size, st.st_mtime, digest, duration, kept, np.concatenate(vectors))
    if old is None:
        summary.added += 1
    else:
        summary.updated += 1
    summary.passages += len(kept)
    summary.audio_seconds += duration
    on_event("file", path=key, status="updated" if old else "added", seconds=duration, passages=len(kept))
