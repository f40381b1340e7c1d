"""`clasp index PATH --watch`: keep an index up to date while recordings arrive, change or go away.

One writer for the whole watch: the index's lock is taken once and held, so a second `clasp
index` on the same index is refused as usual while searches (readers) go on. Changes come from
inotify (FSEvents, ReadDirectoryChangesW) through watchfiles, or from polling where the
filesystem gives no events (network mounts) or when asked. A file is indexed once it has stopped
changing for `settle` seconds, so a copy in progress is never indexed half-written; each file is
one transaction and the graphs are written after every batch, so searches and `clasp serve` see
a new file as soon as its batch is done, and Ctrl-C or kill -9 leave a consistent index.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .aliases import distinct
from .errors import MissingDependencyError, UsageError
from .indexer import AUDIO_EXTENSIONS, IndexSummary, index_files, prepare_run, scan
from .passages import PassageConfig, WindowConfig
from .store import Store

Event = Callable[..., None]


def _noop(*_a, **_k) -> None:
    pass


@dataclass(frozen=True)
class WatchConfig:
    settle: float = 1.0  # seconds a file must stay the same size and mtime before it is indexed
    tick: float = 0.25  # how often pending files are looked at
    poll: bool = False  # poll instead of filesystem events (network mounts give none)
    poll_every: float = 1.0  # seconds between two walks of the roots, when polling


@dataclass
class WatchSummary:
    """What a watch did after its first catch-up run (`first`)."""

    first: IndexSummary
    indexed: int = 0  # files added or re-embedded while watching
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    since: float  # monotonic time the file last changed


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _hidden(path: Path, roots: Sequence[Path]) -> bool:
    """A dot-file or a file in a dot-folder below a watched root: scan() never indexes those."""
    for root in roots:
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        return any(part.startswith(".") for part in rel.parts)
    return path.name.startswith(".")


class Watcher:
    """The watch loop, driven by `run()`; `stop()` (from any thread) ends it after the current batch."""

    def __init__(self, paths: Sequence[str | Path], index_dir: str | Path, model, model_ref: str,
                 passages: PassageConfig | WindowConfig | None = None, transcribe: bool | None = None,
                 batch_size: int = 64, cfg: WatchConfig = WatchConfig(), on_event: Event = _noop,
                 language: str | None = None, reader: str | None = None, speakers: bool | None = None) -> None:
        try:
            import watchfiles  # noqa: F401
        except ImportError:
            raise MissingDependencyError("--watch needs the package watchfiles (pip install watchfiles)") from None
        self.roots = [Path(os.path.abspath(Path(p).expanduser())) for p in paths]
        for r in self.roots:
            if not r.exists():
                raise UsageError(f"{r}: cannot watch a path that does not exist")
        self.index_dir = Path(index_dir).expanduser()
        self.model, self.model_ref, self.passages, self.transcribe = model, model_ref, passages, transcribe
        self.batch_size, self.cfg, self.on_event, self.language = batch_size, cfg, on_event, language
        self.reader, self.speakers = reader, speakers  # speakers: as `clasp index --speakers/--no-speakers`
        self._stop = threading.Event()
        self._pending: dict[Path, _Pending] = {}
        self._gone = False  # something was deleted or moved away since the last batch

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> WatchSummary:
        # Watching starts before the catch-up scan, so a file that lands during it is not missed.
        changes = self._polled() if self.cfg.poll else self._events()
        try:
            self._note(next(changes))
            files, problems = scan(self.roots)
            first = IndexSummary(failed=list(problems))
            self.on_event("scan", files=len(files))
            t0 = time.perf_counter()
            model = self.model
            with Store.open(self.index_dir, write=True, model_id=model.id, dim=model.dim, check=True) as store:
                run = prepare_run(store, model, self.model_ref, self.passages, self.transcribe, self.on_event,
                                  self.batch_size, language=self.language, reader=self.reader, speakers=self.speakers)
                index_files(store, run, files, self.roots, True, first)  # catch up, forgetting what went away meanwhile
                first.elapsed = time.perf_counter() - t0
                store.save_graphs()
                summary = WatchSummary(first=first, interrupted=first.interrupted)
                if summary.interrupted:
                    return summary
                self.on_event("watching", roots=[str(r) for r in self.roots], polling=self.cfg.poll)
                try:
                    for batch in changes:
                        self._note(batch)
                        self._flush(store, run, summary)
                        if self._stop.is_set():
                            break
                except KeyboardInterrupt:
                    summary.interrupted = True
                store.save_graphs()
            return summary
        finally:
            changes.close()

    # -- what changed ---------------------------------------------------------------------------
    def _events(self) -> Iterator[list[tuple[str, str]]]:
        """Batches of (added|modified|deleted, path) from the filesystem's events; an empty batch every tick."""
        import watchfiles

        kinds = {watchfiles.Change.added: "added", watchfiles.Change.modified: "modified", watchfiles.Change.deleted: "deleted"}
        tick_ms = max(1, int(self.cfg.tick * 1000))
        gen = watchfiles.watch(*self.roots, watch_filter=None, stop_event=self._stop, yield_on_timeout=True,
                               rust_timeout=tick_ms, debounce=tick_ms, step=min(50, tick_ms), ignore_permission_denied=True)
        try:
            for batch in gen:
                yield [(kinds[c], p) for c, p in batch]
        finally:
            gen.close()

    def _polled(self) -> Iterator[list[tuple[str, str]]]:
        """The same batches from walking the roots every `poll_every` seconds and comparing size and
        mtime (a poller that compares whole seconds misses a file replaced within the same second)."""
        seen: dict[Path, tuple[int, int]] = {}
        first = True
        while not self._stop.is_set():
            now: dict[Path, tuple[int, int]] = {}
            for f in scan(self.roots)[0]:
                st = _stat(f)
                if st is not None:
                    now[f] = st
            batch = [] if first else (
                [("deleted", str(p)) for p in seen.keys() - now.keys()]
                + [("added" if p not in seen else "modified", str(p)) for p, st in now.items() if seen.get(p) != st])
            seen, first = now, False
            yield batch
            self._stop.wait(self.cfg.poll_every)

    def _note(self, batch: list[tuple[str, str]]) -> None:
        now = time.monotonic()
        for change, raw in batch:
            path = Path(raw)
            if self._inside_index(path) or _hidden(path, self.roots):
                continue
            if change == "deleted":
                self._pending.pop(path, None)
                self._gone = True
                continue
            if change == "added" and path.is_dir():  # a folder moved in raises one event, not one per file
                for f in scan([path])[0]:
                    self._touch(f, now)
            elif path.suffix.lower() in AUDIO_EXTENSIONS and not path.is_dir():
                self._touch(path, now)

    def _inside_index(self, path: Path) -> bool:
        try:
            path.relative_to(self.index_dir.resolve())
            return True
        except ValueError:
            return False

    def _touch(self, path: Path, now: float) -> None:
        st = _stat(path)
        if st is None:
            self._gone = True
            return
        if path not in self._pending:
            self.on_event("waiting", path=str(path), size=st[0])
        self._pending[path] = _Pending(st[0], st[1], now)

    def _ready(self) -> list[Path]:
        """Pending files that have not changed for `settle` seconds; one that changed starts again."""
        now, ready = time.monotonic(), []
        for path, p in list(self._pending.items()):
            st = _stat(path)
            if st is None:
                del self._pending[path]
                self._gone = True
            elif st != (p.size, p.mtime_ns):
                self._pending[path] = _Pending(st[0], st[1], now)
            elif now - p.since >= self.cfg.settle:
                ready.append(path)
                del self._pending[path]
        return sorted(ready)

    def _flush(self, store: Store, run, summary: WatchSummary) -> None:
        ready = self._ready()
        if not ready and not self._gone:
            return
        gone, self._gone = self._gone, False
        batch = IndexSummary()
        # A link to a recording indexed under its own name is that recording, as scan() has it.
        index_files(store, run, distinct(ready, self.roots), self.roots, gone, batch)
        store.save_graphs()  # readers see the batch now, not at the next minute's save
        summary.indexed += batch.indexed
        summary.removed += batch.removed
        summary.failed += [(p, e) for p, e in batch.failed if "(earlier run" not in e]
        self.on_event("batch", indexed=batch.indexed, removed=batch.removed, failed=len(batch.failed))
        if batch.interrupted:
            summary.interrupted = True
            self._stop.set()
