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


class Busy(ClaspError):
    """Too many expensive requests are already waiting (answered 503)."""


class _Lane:
    """One worker thread and the Searcher it owns, reopened when the index on disk moves on."""

    def __init__(self, index_dir: Path, device: str, model, name: str) -> None:
        self.dir = index_dir
        self._device = device
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"clasp-{name}")
        self._searcher: Searcher | None = None
        self._stamp: tuple | None = None
        self._opened_at = 0.0
        try:
            self._worker.submit(self._open, model).result()
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
        if old is not None:
            searcher.inherit_noise_levels(old)
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
        return await asyncio.wrap_future(self._worker.submit(lambda: fn(self._current())))

    def close(self) -> None:
        def close_searcher() -> None:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None

        self._worker.submit(close_searcher).result()
        self._worker.shutdown()


class LiveIndex:
    """Searchers that follow their index directory: a newer index written by `clasp index` is
    picked up without a restart.

    Plain searches and index figures run on one lane. Expensive calls (reranking, which
    transcribes) run on a second lane with its own Searcher and model, loaded on first use, so a
    plain search never waits behind a transcription; at most `heavy_queue` of them wait or run
    at once, and more are refused (Busy) rather than queued without end."""

    def __init__(self, index_dir: str | Path, device: str = "auto", heavy_queue: int = 2) -> None:
        self.dir = Path(index_dir).expanduser()
        self._device = device
        self._lane = _Lane(self.dir, device, None, "index")
        self._heavy: _Lane | None = None
        self._heavy_queue = heavy_queue
        self._heavy_waiting = 0  # changed on the event loop only
        self._heavy_opening = asyncio.Lock()

    async def call(self, fn: Callable[[Searcher], T], heavy: bool = False) -> T:
        """Run fn(searcher) on the worker thread that owns the lane's index."""
        if not heavy:
            return await self._lane.call(fn)
        if self._heavy_waiting >= self._heavy_queue:
            raise Busy(f"{self._heavy_waiting} reranked searches are already running or waiting; try again shortly")
        self._heavy_waiting += 1
        try:
            async with self._heavy_opening:
                if self._heavy is None:
                    # Its own model: the text encoder and Whisper are not shared across threads.
                    self._heavy = await asyncio.to_thread(_Lane, self.dir, self._device, None, "rerank")
            return await self._heavy.call(fn)
        finally:
            self._heavy_waiting -= 1

    def close(self) -> None:
        for lane in (self._lane, self._heavy):
            if lane is not None:
                lane.close()
