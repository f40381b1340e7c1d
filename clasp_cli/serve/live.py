"""The open index and its model, kept for the life of the server and reopened when it changes.

SQLite and hnswlib objects are not safe to share between threads, so one worker thread owns
the Searcher and runs every call that touches it; requests await that thread instead of
blocking the event loop, which keeps serving audio meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import ClaspError
from ..search import Searcher
from ..store import GRAPH_META

T = TypeVar("T")
log = logging.getLogger("clasp.serve")

# While `clasp index` runs it commits file after file; reopening after every commit would
# reload the graph over and over, so a changed index is reopened at most this often.
REOPEN_EVERY_S = 1.0


class LiveIndex:
    """A Searcher that follows its index directory: a newer index written by `clasp index` is picked up without a restart."""

    def __init__(self, index_dir: str | Path, device: str = "auto") -> None:
        self.dir = Path(index_dir).expanduser()
        self._device = device
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clasp-index")
        self._searcher: Searcher | None = None
        self._stamp: tuple | None = None
        self._opened_at = 0.0
        try:
            self._worker.submit(self._open, None).result()
            # The text encoder loads its weights on first use; pay that before serving, not in the first query.
            self._worker.submit(lambda: self._searcher.model.embed_text(["warm up"])).result()
        except BaseException:
            self._worker.shutdown()
            raise

    def _read_stamp(self, searcher: Searcher) -> tuple:
        # `updated` moves with every committed file; the graph file's mtime with every saved graph.
        try:
            graph_mtime = (self.dir / GRAPH_META).stat().st_mtime_ns
        except FileNotFoundError:
            graph_mtime = None
        return searcher.store.meta("updated"), graph_mtime

    def _open(self, model) -> None:
        searcher = Searcher(self.dir, model=model, device=self._device)
        old, self._searcher = self._searcher, searcher
        self._stamp = self._read_stamp(searcher)
        self._opened_at = time.monotonic()
        if old is not None:
            old.close()

    def _current(self) -> Searcher:
        """The Searcher, reopened first when the index on disk has moved on (worker thread only)."""
        searcher = self._searcher
        assert searcher is not None, "LiveIndex used after close()"
        if time.monotonic() - self._opened_at >= REOPEN_EVERY_S and self._read_stamp(searcher) != self._stamp:
            try:
                self._open(searcher.model)
                log.info("reopened %s: the index changed on disk", self.dir)
            except ClaspError as e:
                # A half-rebuilt or replaced index must not take the server down: keep answering from the last good one.
                self._opened_at = time.monotonic()
                log.warning("keeping the open index: %s", e)
        return self._searcher

    async def call(self, fn: Callable[[Searcher], T]) -> T:
        """Run fn(searcher) on the worker thread that owns the index."""
        return await asyncio.wrap_future(self._worker.submit(lambda: fn(self._current())))

    def close(self) -> None:
        def close_searcher() -> None:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None

        self._worker.submit(close_searcher).result()
        self._worker.shutdown()
