"""The HNSW graph file (vectors.hnsw) and the stamp (vectors.json) that ties it to one database state.

The graph is derived data: SQLite holds every vector, so a graph can always be rebuilt. What
must never happen is answering from a graph that belongs to another state or another index.
The stamp therefore records the index's id, the passage state the graph was built from, and
the graph file's size and CRC32. A graph whose stamp does not match is rebuilt; one that only
lags the database (a writer was killed before saving) is brought up to date incrementally.
"""

from __future__ import annotations

import errno
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

GRAPH = "vectors.hnsw"
GRAPH_META = "vectors.json"
# Each derived graph is a pair of files named after what it holds: "vectors" (the CLASP passage
# vectors) and "transcripts" (the text encoder's vectors of what was said).
PASSAGE_GRAPH = "vectors"
TRANSCRIPT_GRAPH = "transcripts"


def graph_files(name: str = PASSAGE_GRAPH) -> tuple[str, str]:
    """(graph file, stamp file) of the graph called `name`."""
    return f"{name}.hnsw", f"{name}.json"


def _words(name: str) -> tuple[str, str]:
    """(what a label stands for, what the graph is called) in messages."""
    return ("passages", "graph") if name == PASSAGE_GRAPH else ("transcript vectors", "transcript graph")
STAMP_FORMAT = 2
# HNSW settings, shared with benchmarks/index_search.py so the recall it reports is what ships.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128
# Graph labels checked against the database's own vectors on every load: a graph copied from
# another index holds the same labels but different vectors, and this is how that shows.
SAMPLE_CHECKS = 16


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


def new_graph(dim: int, max_elements: int):
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


def _why_not_loadable(directory: Path, stamp: dict | None, state: DbState, name: str) -> str | None:
    """Why the graph file cannot be trusted as a starting point, or None when it can."""
    path = directory / graph_files(name)[0]
    if not path.exists():
        return "graph file missing"
    if stamp is None:
        return "graph stamp missing or unreadable"
    if stamp.get("index_id") != state.index_id:
        return "graph belongs to another index"
    try:
        size = path.stat().st_size
    except OSError as e:
        return f"graph file unreadable ({e.strerror})"
    # Size and checksum before hnswlib sees the file: it trusts its input and can crash on a damaged one.
    if size != stamp.get("bytes") or _crc32(path) != stamp.get("crc32"):
        return "graph file damaged or replaced"
    return None


def _load_file(directory: Path, dim: int, state: DbState, db_ids: np.ndarray, vectors: Callable[[Sequence[int]], np.ndarray],
               name: str = PASSAGE_GRAPH):
    """(graph, live labels, stamp, None) for a trustworthy graph file, else (None, None, stamp, reason)."""
    import hnswlib

    stamp = _read_stamp(directory, name)
    reason = _why_not_loadable(directory, stamp, state, name)
    if reason is not None:
        return None, None, stamp, reason
    try:
        graph = hnswlib.Index(space="cosine", dim=dim)
        graph.load_index(str(directory / graph_files(name)[0]))
        deleted = [int(i) for i in stamp.get("deleted", [])]
        for pid in deleted:
            mark_deleted(graph, pid)
        held = np.setdiff1d(np.asarray(graph.get_ids_list(), dtype=np.int64), np.asarray(deleted, dtype=np.int64))
    except Exception as e:  # hnswlib raises plain RuntimeError/ValueError on a bad file
        return None, None, stamp, f"graph file unreadable ({e})"
    reason = _foreign_vectors(graph, np.intersect1d(held, db_ids), vectors)
    if reason is not None:
        return None, None, stamp, reason
    return graph, held, stamp, None


def load_graph(
    directory: Path, dim: int, state: DbState, db_ids: np.ndarray, vectors: Callable[[Sequence[int]], np.ndarray],
    name: str = PASSAGE_GRAPH,
) -> LoadedGraph:
    """The graph on disk, checked against the database and brought up to date; rebuilt when untrustworthy."""
    graph, held, stamp, reason = _load_file(directory, dim, state, db_ids, vectors, name)
    if graph is None:
        return _rebuild(dim, db_ids, vectors, reason)
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
    name: str = PASSAGE_GRAPH,
) -> list[str]:
    """How the graph file on disk disagrees with the database (empty when it matches exactly)."""
    if not len(db_ids) and not (directory / graph_files(name)[0]).exists():
        return []
    graph, held, stamp, reason = _load_file(directory, dim, state, db_ids, vectors, name)
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


def _rebuild(dim: int, db_ids: np.ndarray, vectors: Callable[[Sequence[int]], np.ndarray], reason: str) -> LoadedGraph:
    graph = new_graph(dim, max(1024, len(db_ids)))
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
