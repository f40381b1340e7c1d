"""The ANN for large indexes: usearch int8 graphs in shards, searched through memory-mapped views.

hnswlib keeps float32 vectors and its graph in RAM, about 2.3 KB a window: 10M windows need
23 GB. Here each vector is int8 (512 B at 512 dimensions) and a reader maps the shard files
instead of loading them, so the operating system pages in only what queries touch.

The graph answers with candidates only: their scores are recomputed from the exact vectors
(SQLite's float16 copy, handed in as `vectors`), so a hit's score is the same cosine the
hnswlib engine reports and int8 rounding cannot reorder the top k.

`ShardedUsearch` speaks the small part of hnswlib's interface that graph.py and store.py use
(add_items, mark_deleted, knn_query, get_items, ...), so both engines share one stamp, one
load-check-repair path and one set of rules. Shards hold up to SHARD_SIZE windows; a full
shard is never rewritten, except to compact it once more than COMPACT_AT of it is dead.
Deletes are tombstones, filtered at query time and recorded in the stamp.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

SHARD_SIZE = 10_000_000
COMPACT_AT = 0.20
# hnswlib's own density (M 32, built at 200). At 16 links built at 128, recall@10 at a breadth of
# 1024 fell from 0.99 (1M windows) to 0.956 (3M) whatever the breadth or rescoring, so 10M would
# have missed 0.95; at 32/200 it is 0.9998 at both (benchmarks/ann_scale.py). It costs 127 B more
# a window (882 B of RSS, 36% of hnswlib's) and 2.5x the build time.
CONNECTIVITY = 32
EXPANSION_ADD = 200
# The search's breadth per shard size. On the sparser graph, recall@10 at 1M windows went 0.90,
# 0.97, 0.99 for 128, 256, 512, while the number of candidates rescored changed nothing; at 100k,
# 128 already gave 1.00. The time of a query grows with the breadth (about 0.5 ms per 128 on 2
# cores), so each shard gets what its size needs, up to 1024 from 2M windows (full shards of 10M).
EXPANSION_SEARCH = 128
EXPANSION_BY_SIZE = ((200_000, 128), (2_000_000, 512), (None, 1024))
# Candidates rescored exactly per query: the scores are then hnswlib's cosines, not int8 estimates.
RESCORE = 40
# A shard this small is scanned, not walked: a walk over a few hundred scattered vectors can miss
# the nearest one outright, and a scan of 10,000 costs 0.38 ms on 2 cores (a walk 0.08 ms).
SCAN_UP_TO = 10_000
DTYPE = "i8"


@dataclass
class Shard:
    index: object  # usearch.index.Index
    file: str | None = None  # its file under the index folder; None until first written
    bytes: int = 0
    crc32: int = 0
    view: bool = False  # memory-mapped, read-only: adds go to a newer shard
    dirty: bool = True  # differs from `file`

    @property
    def count(self) -> int:
        return len(self.index)

    def holds(self, pid: int) -> bool:
        return bool(self.index.contains(pid))


def expansion_for(windows: int) -> int:
    """The search breadth a shard of this many windows needs for recall@10 of about 0.99."""
    for limit, ef in EXPANSION_BY_SIZE:
        if limit is None or windows < limit:
            return ef
    return EXPANSION_BY_SIZE[-1][1]


def index_class():
    """usearch's Index class, always imported after onnxruntime.

    usearch's extension links its own copy of libstdc++, and that copy's locale ids are unique
    symbols, which bind process-wide: every C++ library loaded after it (onnxruntime's VAD, Ray's
    core) then finds facets it never built. `import usearch.index; import onnxruntime` dies with
    SIGSEGV and `ray.init()` aborts with std::regex_error, while the other order works (usearch
    2.26.6, onnxruntime 1.32). So usearch is imported here and nowhere else in clasp.
    """
    import onnxruntime  # noqa: F401  (first: it must own the locale ids; about 0.1 s, and the VAD needs it anyway)
    from usearch.index import Index

    return Index


def exact_nearest(rows: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k rows nearest `query` by cosine distance, every row scored: (row positions, distances),
    nearest first. The rows are read in their own dtype, float16 included, by usearch's SIMD
    kernels: no float32 copy of them is made (for a speaker's 2,000 windows in three spaces,
    that copy cost more than a graph search)."""
    k = min(int(k), len(rows))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    index_class()  # usearch only after onnxruntime (see there)
    from usearch.index import MetricKind, search

    found = search(rows, np.asarray(query, dtype=rows.dtype).reshape(-1), k, MetricKind.Cos, exact=True, threads=1)
    keys, dists = np.asarray(found.keys, dtype=np.int64), np.asarray(found.distances, dtype=np.float32)
    order = np.lexsort((keys, dists))  # equal distances (windows sharing a vector) in row order, as a stable sort gives
    return keys[order], dists[order]


def _new_index(dim: int):
    Index = index_class()
    return Index(ndim=dim, metric="cos", dtype=DTYPE, connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                 expansion_search=EXPANSION_SEARCH)


class ShardedUsearch:
    """Passage vectors in usearch shards, with hnswlib's method names."""

    engine = "usearch"

    def __init__(self, dim: int, vectors: Callable[[Sequence[int]], np.ndarray] | None = None, shard_size: int = SHARD_SIZE):
        self.dim = dim
        self.vectors = vectors  # exact vectors by id (float32, any norm), for rescoring and compaction
        self.shard_size = shard_size
        self.shards: list[Shard] = []
        self.deleted: set[int] = set()
        self.ef = EXPANSION_SEARCH

    # -- hnswlib's interface, as graph.py and store.py use it -----------------------------------
    def add_items(self, data: np.ndarray, ids: Sequence[int]) -> None:
        data = np.asarray(data, dtype=np.float32).reshape(-1, self.dim)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not len(ids):
            return
        fresh = np.array([int(i) not in self.deleted and not self._held(int(i)) for i in ids], dtype=bool)
        for i in ids[~fresh]:  # an id is never reused by SQLite; a re-add after a delete revives it
            self.deleted.discard(int(i))
        data, ids = data[fresh], ids[fresh]
        start = 0
        while start < len(ids):
            shard = self._open_shard()
            room = self.shard_size - shard.count
            part = slice(start, start + room)
            shard.index.add(ids[part], data[part], threads=os.cpu_count() or 1)
            shard.dirty = True
            start += room

    def mark_deleted(self, pid: int) -> None:
        pid = int(pid)
        if pid in self.deleted or not self._held(pid):
            raise RuntimeError(f"label {pid} not found")  # what hnswlib raises; graph.mark_deleted ignores it
        self.deleted.add(pid)

    def get_ids_list(self) -> np.ndarray:
        parts = [np.asarray(s.index.keys, dtype=np.int64) for s in self.shards if s.count]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def get_current_count(self) -> int:
        return sum(s.count for s in self.shards)

    def get_max_elements(self) -> int:
        return 1 << 62  # shards grow as needed

    def resize_index(self, _n: int) -> None:
        pass

    def set_ef(self, ef: int) -> None:
        self.ef = max(EXPANSION_SEARCH, int(ef))  # a floor; each shard searches at least expansion_for(its size)

    def get_items(self, ids: Sequence[int]) -> np.ndarray:
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for j, pid in enumerate(int(i) for i in ids):
            shard = self._shard_of(pid)
            if shard is None:
                raise RuntimeError(f"label {pid} not found")
            out[j] = np.asarray(shard.index.get(pid, dtype=np.float32), dtype=np.float32).reshape(-1)
        return out

    def knn_query(self, query: np.ndarray, k: int = 1, filter: Callable[[int], bool] | None = None):
        """([1, k] ids, [1, k] cosine distances), nearest first, skipping tombstones and ids the
        filter refuses. Fewer than k live matches: a RuntimeError, as hnswlib raises."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        live = self.get_current_count() - len(self.deleted)
        want = max(k, RESCORE)
        count = want + len(self.deleted)
        while True:
            found = self._candidates(q, count, filter)
            if len(found) >= want or count >= self.get_current_count():
                if len(found) < k or live < k:
                    raise RuntimeError("contiguous 2D array: cannot return the results, fewer matches than k")
                ids = np.fromiter(found, dtype=np.int64)
                dist = self.exact_distances(q, ids) if self.vectors is not None else np.fromiter(found.values(), dtype=np.float32)
                kept = np.isfinite(dist)  # inf: removed by another process since this graph was read
                if kept.sum() >= k or count >= self.get_current_count():
                    ids, dist = ids[kept], dist[kept]
                    break
            count *= 4  # a filter that refuses most ids, or windows pruned meanwhile: widen the net
        order = np.argsort(dist, kind="stable")[:k]
        return ids[order].reshape(1, -1), dist[order].astype(np.float32).reshape(1, -1)

    # -- files -------------------------------------------------------------------------------
    def write_shards(self, directory: Path, name: str, serial: int, crc: Callable[[Path], int]) -> list[dict]:
        """Write every changed shard to a new file (`name`.<serial>-<n>.usearch, through a temp file
        and a rename) and return the stamp's list of shards. Files of the last stamp stay until the
        caller has replaced the stamp."""
        self._compact()
        out = []
        for n, shard in enumerate(self.shards):
            if shard.dirty or shard.file is None:
                final = f"{name}.{serial}-{n}.usearch"
                tmp = directory / f".{final}.tmp"
                try:
                    shard.index.save(str(tmp))
                    with open(tmp, "rb+") as fh:
                        os.fsync(fh.fileno())
                    shard.bytes, shard.crc32 = tmp.stat().st_size, crc(tmp)
                    os.replace(tmp, directory / final)
                finally:
                    tmp.unlink(missing_ok=True)
                shard.file, shard.dirty = final, False
            out.append({"file": shard.file, "bytes": shard.bytes, "crc32": shard.crc32, "count": shard.count})
        return out

    @classmethod
    def from_files(cls, directory: Path, dim: int, entries: Sequence[dict], view: bool,
                   vectors: Callable[[Sequence[int]], np.ndarray] | None) -> "ShardedUsearch":
        """Shards named by a stamp, already checked against its sizes and checksums. view: map every
        shard (a reader); else map the full ones and load the last into memory, to keep adding."""
        Index = index_class()

        g = cls(dim, vectors)
        for n, e in enumerate(entries):
            path = directory / e["file"]
            as_view = view or (int(e["count"]) >= g.shard_size) or n < len(entries) - 1
            index = Index.restore(str(path), view=as_view)
            if index is None or index.ndim != dim:
                raise ValueError(f"{e['file']} is not a usearch index of {dim} dimensions")
            if len(index) != int(e["count"]):
                raise ValueError(f"{e['file']} holds {len(index)} vectors, its stamp says {e['count']}")
            g.shards.append(Shard(index, e["file"], int(e["bytes"]), int(e["crc32"]), as_view, False))
        return g

    # -- inside ------------------------------------------------------------------------------
    def _held(self, pid: int) -> bool:
        return self._shard_of(pid) is not None

    def _shard_of(self, pid: int) -> Shard | None:
        for s in self.shards:
            if s.holds(pid):
                return s
        return None

    def _open_shard(self) -> Shard:
        last = self.shards[-1] if self.shards else None
        if last is None or last.view or last.count >= self.shard_size:
            last = Shard(_new_index(self.dim))
            self.shards.append(last)
        return last

    def _candidates(self, q: np.ndarray, count: int, keep: Callable[[int], bool] | None) -> dict[int, float]:
        found: dict[int, float] = {}
        for s in self.shards:
            if not s.count:
                continue
            s.index.expansion_search = max(expansion_for(s.count), self.ef, count)
            # Asked for most of a shard, a graph walk can come back short; a scan cannot, and costs little then.
            m = s.index.search(q, min(count, s.count), threads=1, exact=2 * count >= s.count or s.count <= SCAN_UP_TO)
            for key, d in zip(np.asarray(m.keys, dtype=np.int64), np.asarray(m.distances, dtype=np.float32)):
                key = int(key)
                if key in self.deleted or (keep is not None and not keep(key)):
                    continue
                found[key] = float(d)
        return found

    def exact_distances(self, q: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """1 - cosine of q with each id's exact vector (from SQLite); inf for an id whose vector
        came back as NaN (the database no longer holds it)."""
        v = np.asarray(self.vectors(ids), dtype=np.float32)
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        d = 1.0 - v @ (q / max(float(np.linalg.norm(q)), 1e-12))
        return np.where(np.isnan(d), np.inf, d)

    def _compact(self) -> None:
        """Rebuild each shard more than COMPACT_AT dead from its live vectors (exact, from SQLite)."""
        if self.vectors is None:
            return
        for n, s in enumerate(self.shards):
            if not s.count or not self.deleted:
                continue
            keys = np.asarray(s.index.keys, dtype=np.int64)
            dead = np.isin(keys, np.fromiter(self.deleted, dtype=np.int64, count=len(self.deleted)))
            if dead.sum() <= COMPACT_AT * len(keys):
                continue
            live = np.sort(keys[~dead])
            index = _new_index(self.dim)
            for start in range(0, len(live), 100_000):
                part = live[start : start + 100_000]
                index.add(part, np.asarray(self.vectors(part), dtype=np.float32), threads=os.cpu_count() or 1)
            self.deleted.difference_update(int(k) for k in keys[dead])
            self.shards[n] = Shard(index, None, 0, 0, False, True)
