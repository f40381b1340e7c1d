"""The ANN graph files (vectors.hnsw, or usearch shards) and the stamp (vectors.json) that ties
them to one database state.

The graph is derived data: SQLite holds every vector, so a graph can always be rebuilt. What
must never happen is answering from a graph that belongs to another state or another index.
The stamp therefore records the index's id, the passage state the graph was built from, and
the graph file's size and CRC32. A graph whose stamp does not match is rebuilt; one that only
lags the database (a writer was killed before saving) is brought up to date incrementally.

Two engines sit behind these rules: hnswlib (float32 in RAM; small indexes, filters inside the
graph) and usearch (int8 shards, memory-mapped by readers; see ann_usearch.py). The stamp names
the engine; an index whose recorded choice differs from its stamp is rebuilt in the new engine.
"""

from __future__ import annotations

import errno
import json
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

GRAPH = "vectors.hnsw"
GRAPH_META = "vectors.json"
# Each derived graph is a pair of files named after what it holds: "vectors" (the CLASP passage
# vectors), "transcripts" (the text encoder's vectors of what was said) and "transcripts-e5" (e5's
# vectors of it, clasp_cli.encoders.e5).
PASSAGE_GRAPH = "vectors"
TRANSCRIPT_GRAPH = "transcripts"
E5_GRAPH = "transcripts-e5"


def graph_files(name: str = PASSAGE_GRAPH) -> tuple[str, str]:
    """(graph file, stamp file) of the graph called `name`."""
    return f"{name}.hnsw", f"{name}.json"


def _words(name: str) -> tuple[str, str]:
    """(what a label stands for, what the graph is called) in messages."""
    if name == PASSAGE_GRAPH:
        return "passages", "graph"
    if name == E5_GRAPH:
        return "e5 transcript vectors", "e5 transcript graph"
    return "transcript vectors", "transcript graph"
STAMP_FORMAT = 2
# HNSW settings, shared with benchmarks/index_search.py so the recall it reports is what ships.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128
# Graph labels checked against the database's own vectors on every load: a graph copied from
# another index holds the same labels but different vectors, and this is how that shows.
SAMPLE_CHECKS = 16
ENGINES = ("hnsw", "usearch")
# `--ann auto` picks usearch from this many windows: below it hnswlib's RAM (about 2.3 KB a window)
# is small, every index made so far uses it, and it filters --path inside the graph.
USEARCH_FROM = 1_000_000


def auto_engine(windows: int, directory: Path) -> str:
    """`--ann auto`'s engine for the index in `directory`, of this many windows. Once on usearch it
    stays there down to half the threshold, so an index near it does not flip back and forth (each
    switch rebuilds the graphs); only there is the stamp on disk read."""
    if windows >= USEARCH_FROM:
        return "usearch"
    if windows >= USEARCH_FROM // 2 and _engine_of(_read_stamp(directory, PASSAGE_GRAPH)) == "usearch":
        return "usearch"
    return "hnsw"


def shard_files(directory: Path, name: str) -> list[str]:
    """The usearch shard files of graph `name` present in `directory` (any generation)."""
    try:
        return sorted(p.name for p in directory.glob(f"{name}.*.usearch"))
    except OSError:
        return []


@dataclass(frozen=True)
class DbState:
    """The passage table as a graph sees it: which index, how many passages, which ids."""

    index_id: str
    passages: int
    max_id: int
    id_sum: int

    def to_dict(self) -> dict:
        return {"index_id": self.index_id, "passages": self.passages, "max_id": self.max_id, "id_sum": self.id_sum}


@dataclass
class LoadedGraph:
    graph: object  # hnswlib.Index
    live: int  # labels not marked deleted; knn_query needs k <= this
    rebuilt: bool = False  # built from the database, not loaded
    changed: bool = False  # differs from the file on disk: a writer should save it
    reasons: list[str] = field(default_factory=list)


def new_graph(dim: int, max_elements: int, engine: str = "hnsw", vectors: Callable[[Sequence[int]], np.ndarray] | None = None):
    """An empty graph. vectors: exact vectors by id, which usearch rescores its candidates with."""
    if engine == "usearch":
        from .ann_usearch import ShardedUsearch

        return ShardedUsearch(dim, vectors)
    import hnswlib

    g = hnswlib.Index(space="cosine", dim=dim)
    g.init_index(max_elements=max(1, max_elements), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M)
    g.set_ef(HNSW_EF_SEARCH)
    return g


def mark_deleted(graph, pid: int) -> None:
    try:
        graph.mark_deleted(int(pid))
    except RuntimeError:
        pass  # not in the graph, or already deleted


def ensure_capacity(graph, extra: int) -> None:
    need = graph.get_current_count() + extra
    if need > graph.get_max_elements():
        graph.resize_index(max(need, 2 * graph.get_max_elements()))


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def _read_stamp(directory: Path, name: str) -> dict | None:
    try:
        stamp = json.loads((directory / graph_files(name)[1]).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) and stamp.get("format") == STAMP_FORMAT else None


def _engine_of(stamp: dict | None) -> str:
    return (stamp or {}).get("engine", "hnsw")


def _why_not_loadable(directory: Path, stamp: dict | None, state: DbState, name: str, engine: str = "hnsw") -> str | None:
    """Why the graph file cannot be trusted as a starting point, or None when it can."""
    if stamp is not None and _engine_of(stamp) != engine and stamp.get("index_id") == state.index_id:
        return f"graph engine changed ({_engine_of(stamp)} to {engine})"
    if engine == "usearch":
        return _why_not_shards(directory, stamp, state)
    path = directory / graph_files(name)[0]
    if not path.exists():
        return "graph file missing"
    if stamp is None:
        return "graph stamp missing or unreadable"
    if stamp.get("index_id") != state.index_id:
        return "graph belongs to another index"
    return _file_problem(path, stamp.get("bytes"), stamp.get("crc32"))


def _file_problem(path: Path, size, crc) -> str | None:
    """Why the graph file at `path` is not the one a stamp describes (`size` bytes, CRC32 `crc`)."""
    try:
        have = path.stat().st_size
    except OSError as e:
        return f"graph file unreadable ({e.strerror})"
    # Size and checksum before hnswlib or usearch sees the file: both trust their input, and a
    # damaged one can crash the process (or, mapped, be read as vectors).
    if have != size or _crc32(path) != crc:
        return "graph file damaged or replaced"
    return None


def _why_not_shards(directory: Path, stamp: dict | None, state: DbState) -> str | None:
    if stamp is None:
        return "graph stamp missing or unreadable"
    if stamp.get("index_id") != state.index_id:
        return "graph belongs to another index"
    shards = stamp.get("shards")
    if not isinstance(shards, list):
        return "graph stamp missing or unreadable"
    for e in shards:
        try:
            path = directory / os.path.basename(str(e["file"]))
            if not path.exists():
                return "graph file missing"
            problem = _file_problem(path, e["bytes"], e["crc32"])
        except (KeyError, TypeError):
            return "graph stamp missing or unreadable"
        except OSError as err:
            return f"graph file unreadable ({err.strerror})"
        if problem is not None:
            return problem
    return None


def _open_graph(directory: Path, dim: int, stamp: dict, name: str, engine: str, view: bool,
                vectors: Callable[[Sequence[int]], np.ndarray]):
    if engine == "usearch":
        from .ann_usearch import ShardedUsearch

        return ShardedUsearch.from_files(directory, dim, stamp["shards"], view, vectors)
    import hnswlib

    graph = hnswlib.Index(space="cosine", dim=dim)
    graph.load_index(str(directory / graph_files(name)[0]))
    return graph


def _load_file(directory: Path, dim: int, state: DbState, db_ids: np.ndarray, vectors: Callable[[Sequence[int]], np.ndarray],
               name: str = PASSAGE_GRAPH, engine: str = "hnsw", view: bool = False):
    """(graph, live labels, stamp, None) for a trustworthy graph file, else (None, None, stamp, reason)."""
    stamp = _read_stamp(directory, name)
    reason = _why_not_loadable(directory, stamp, state, name, engine)
    if reason is not None:
        return None, None, stamp, reason
    try:
        graph = _open_graph(directory, dim, stamp, name, engine, view, vectors)
        deleted = [int(i) for i in stamp.get("deleted", [])]
        for pid in deleted:
            mark_deleted(graph, pid)
        if engine == "usearch" and stamp.get("state") == state.to_dict():
            # Listing a mapped shard's keys reads every page of it; the stamp already ties these
            # checked files to this exact passage table (count, largest id, sum of ids).
            held = db_ids
        else:
            held = np.setdiff1d(np.asarray(graph.get_ids_list(), dtype=np.int64), np.asarray(deleted, dtype=np.int64))
    except Exception as e:  # hnswlib and usearch raise plain RuntimeError/ValueError on a bad file
        return None, None, stamp, f"graph file unreadable ({e})"
    reason = _foreign_vectors(graph, np.intersect1d(held, db_ids), vectors)
    if reason is not None:
        return None, None, stamp, reason
    return graph, held, stamp, None


def load_graph(
    directory: Path, dim: int, state: DbState, db_ids: np.ndarray, vectors: Callable[[Sequence[int]], np.ndarray],
    name: str = PASSAGE_GRAPH, engine: str = "hnsw", view: bool = False,
) -> LoadedGraph:
    """The graph on disk, checked against the database and brought up to date; rebuilt when untrustworthy.
    engine: the ANN this index uses now; view: map usearch shards read-only (a reader)."""
    graph, held, stamp, reason = _load_file(directory, dim, state, db_ids, vectors, name, engine, view)
    if graph is None:
        return _rebuild(dim, db_ids, vectors, reason, engine)
    missing = np.setdiff1d(db_ids, held)
    extra = np.setdiff1d(held, db_ids)
    _add(graph, missing, vectors)
    for pid in extra:
        mark_deleted(graph, pid)
    changed = bool(len(missing) or len(extra)) or stamp.get("state") != state.to_dict()
    reasons = [f"{_words(name)[1]} behind the database ({len(missing)} missing, {len(extra)} stale)"] if changed else []
    return LoadedGraph(graph, len(db_ids), rebuilt=False, changed=changed, reasons=reasons)


def graph_file_problems(
    directory: Path, dim: int, state: DbState, db_ids: np.ndarray, vectors: Callable[[Sequence[int]], np.ndarray],
    name: str = PASSAGE_GRAPH, engine: str = "hnsw",
) -> list[str]:
    """How the graph file on disk disagrees with the database (empty when it matches exactly)."""
    if not len(db_ids) and not has_graph_files(directory, name):
        return []
    graph, held, stamp, reason = _load_file(directory, dim, state, db_ids, vectors, name, engine, view=True)
    if graph is None:
        return [reason if name == PASSAGE_GRAPH else reason.replace("graph", _words(name)[1], 1)]
    problems = []
    if len(np.setdiff1d(db_ids, held)):
        problems.append(f"{len(np.setdiff1d(db_ids, held))} {_words(name)[0]} missing from the {_words(name)[1]}")
    if len(np.setdiff1d(held, db_ids)):
        problems.append(f"{len(np.setdiff1d(held, db_ids))} {_words(name)[1]} labels with no {_words(name)[0][:-1]}")
    if stamp.get("state") != state.to_dict():
        problems.append(f"{_words(name)[1]} stamp does not match the database state")
    return problems


def _foreign_vectors(graph, common: np.ndarray, vectors: Callable[[Sequence[int]], np.ndarray]) -> str | None:
    if not len(common):
        return None
    sample = common[np.linspace(0, len(common) - 1, min(SAMPLE_CHECKS, len(common))).astype(int)]
    try:
        have = np.asarray(graph.get_items(sample), dtype=np.float32)
    except Exception as e:
        return f"graph file unreadable ({e})"
    want = vectors(sample)
    want /= np.maximum(np.linalg.norm(want, axis=1, keepdims=True), 1e-12)
    have /= np.maximum(np.linalg.norm(have, axis=1, keepdims=True), 1e-12)
    # float16 in SQLite vs float32 in the graph: the same vector agrees far above 0.99.
    if np.min(np.sum(want * have, axis=1)) < 0.99:
        return "graph vectors do not match the database"
    return None


def _add(graph, ids: np.ndarray, vectors: Callable[[Sequence[int]], np.ndarray]) -> None:
    if not len(ids):
        return
    ensure_capacity(graph, len(ids))
    for s in range(0, len(ids), 10000):
        part = ids[s : s + 10000]
        graph.add_items(vectors(part), part)


def has_graph_files(directory: Path, name: str) -> bool:
    return (directory / graph_files(name)[0]).exists() or bool(shard_files(directory, name))


def _rebuild(dim: int, db_ids: np.ndarray, vectors: Callable[[Sequence[int]], np.ndarray], reason: str,
             engine: str = "hnsw") -> LoadedGraph:
    graph = new_graph(dim, max(1024, len(db_ids)), engine, vectors)
    _add(graph, db_ids, vectors)
    return LoadedGraph(graph, len(db_ids), rebuilt=True, changed=True, reasons=[reason])


def save_graph(directory: Path, graph, state: DbState, db_ids: np.ndarray, name: str = PASSAGE_GRAPH) -> None:
    """Write graph and stamp so that any crash leaves a pair the next load either trusts or rebuilds."""
    gfile, mfile = graph_files(name)
    tmp = directory / f".{gfile}.tmp"
    tmp_meta = directory / f".{mfile}.tmp"
    try:
        _write_pair(directory, graph, state, db_ids, tmp, tmp_meta, name)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)


def _write_pair(directory: Path, graph, state: DbState, db_ids: np.ndarray, tmp: Path, tmp_meta: Path, name: str) -> None:
    if getattr(graph, "engine", "hnsw") == "usearch":
        return _write_shards(directory, graph, state, db_ids, tmp_meta, name)
    graph.save_index(str(tmp))
    if tmp.stat().st_size != graph.index_file_size():  # hnswlib does not report a short write
        raise OSError(errno.ENOSPC, f"{tmp.name} written short; the disk is probably full")
    deleted = np.setdiff1d(np.asarray(graph.get_ids_list(), dtype=np.int64), db_ids)
    stamp = {
        "format": STAMP_FORMAT, "index_id": state.index_id, "state": state.to_dict(),
        "bytes": tmp.stat().st_size, "crc32": _crc32(tmp), "deleted": [int(i) for i in deleted],
    }
    with open(tmp_meta, "w") as fh:
        fh.write(json.dumps(stamp))
    # Graph first, then stamp: a kill between the two leaves a stamp whose checksum fails, so
    # the next open rebuilds rather than trusting a mismatched pair.
    gfile, mfile = graph_files(name)
    os.replace(tmp, directory / gfile)
    os.replace(tmp_meta, directory / mfile)
    _remove_files(directory, shard_files(directory, name))  # left by a switch from usearch


def _write_shards(directory: Path, graph, state: DbState, db_ids: np.ndarray, tmp_meta: Path, name: str) -> None:
    # Changed shards go to new files first; the stamp's rename then switches to them in one step,
    # and only after it are the files of the last generation removed. A kill at any point leaves
    # the old stamp with its old files, or the new stamp with its new ones.
    shards = graph.write_shards(directory, name, time.time_ns(), _crc32)
    deleted = np.setdiff1d(np.asarray(graph.get_ids_list(), dtype=np.int64), db_ids)
    stamp = {
        "format": STAMP_FORMAT, "engine": "usearch", "index_id": state.index_id, "state": state.to_dict(),
        "shards": shards, "deleted": [int(i) for i in deleted],
    }
    with open(tmp_meta, "w") as fh:
        fh.write(json.dumps(stamp))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp_meta, directory / graph_files(name)[1])
    keep = {e["file"] for e in shards}
    _remove_files(directory, [f for f in shard_files(directory, name) if f not in keep] + [graph_files(name)[0]])


def _remove_files(directory: Path, names: Sequence[str]) -> None:
    for n in names:
        try:
            (directory / n).unlink(missing_ok=True)
        except OSError:
            pass  # a stale file left is harmless: no stamp names it
