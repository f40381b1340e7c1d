"""The on-disk index: SQLite (files, passages, vectors) plus an hnswlib graph for fast lookup.

SQLite is the source of truth and every file is indexed in one transaction, so `kill -9`
at any moment leaves a consistent database. The HNSW graph is derived from it: saved
atomically (temp file + rename) with the set of passage ids it holds, and repaired on open
when a crash left it behind the database. One writer at a time holds an flock on `lock`;
readers never take it (SQLite WAL lets them read while a writer works).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import ClaspError

DB = "index.sqlite"
GRAPH = "vectors.hnsw"
GRAPH_META = "vectors.json"
LOCK = "lock"
# HNSW settings, shared with benchmarks/index_search.py so the recall it reports is what ships.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128

# Numbered migrations: each runs once, in order; user_version records the last one applied.
MIGRATIONS = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        path TEXT UNIQUE NOT NULL,
        size INTEGER, mtime REAL, hash TEXT, duration REAL,
        status TEXT NOT NULL,            -- 'ok' or 'failed'
        error TEXT,
        indexed_at REAL
    );
    CREATE TABLE passages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- the HNSW label; never reused, unlike a plain rowid
        file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        start REAL NOT NULL, end REAL NOT NULL,
        vector BLOB NOT NULL             -- float16, so the graph can always be rebuilt
    );
    CREATE INDEX passages_file ON passages(file_id);
    """,
]


class IndexError_(ClaspError):
    exit_code = 7


class IndexLockedError(IndexError_):
    pass


@dataclass
class FileRecord:
    id: int
    path: str
    size: int
    mtime: float
    hash: str | None
    duration: float | None
    status: str
    error: str | None


@dataclass
class Hit:
    passage_id: int
    score: float
    path: str
    start: float
    end: float


class Store:
    """Open with Store.open(dir, ...). Use as a context manager; writers pass write=True."""

    def __init__(self, directory: Path, db: sqlite3.Connection, write: bool, lock_fd: int | None):
        self.dir = directory
        self.db = db
        self.write = write
        self._lock_fd = lock_fd
        self._graph = None
        self._graph_dirty = False
        self._live = 0  # passages in the graph not marked deleted; knn_query needs k <= this

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, directory: str | Path, write: bool = False, model_id: str | None = None, dim: int | None = None) -> "Store":
        directory = Path(directory).expanduser()
        if not write and not (directory / DB).exists():
            raise IndexError_(f"no index at {directory}: build one with `clasp index PATH --index {directory}`")
        lock_fd = None
        if write:
            directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(lock_fd, 64, 0).decode(errors="replace").strip() or "?"
                os.close(lock_fd)
                raise IndexLockedError(
                    f"{directory} is being written by another clasp process (pid {holder}); "
                    "wait for it to finish (searching still works meanwhile)"
                ) from None
            os.ftruncate(lock_fd, 0)
            os.pwrite(lock_fd, str(os.getpid()).encode(), 0)
        try:
            db = sqlite3.connect(directory / DB, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            store = cls(directory, db, write, lock_fd)
            if write:
                store._migrate()
                store._check_model(model_id, dim)
            elif db.execute("PRAGMA user_version").fetchone()[0] < len(MIGRATIONS):
                raise IndexError_(f"{directory}: index is from an older clasp; run `clasp index` once to upgrade it")
        except sqlite3.DatabaseError as e:
            if lock_fd is not None:
                os.close(lock_fd)
            raise IndexError_(f"{directory / DB}: not a usable index database ({e})") from None
        return store

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for n, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN; {sql}; PRAGMA user_version={n}; COMMIT;")

    def _check_model(self, model_id: str | None, dim: int | None) -> None:
        have = self.meta("model_id")
        if have is None and model_id is not None:
            with self.transaction():
                self.set_meta("model_id", model_id)
                self.set_meta("dim", str(dim))
                self.set_meta("created", str(time.time()))
        elif model_id is not None and have != model_id:
            raise IndexError_(
                f"{self.dir} was built with model {have}, not {model_id}; "
                "embeddings of different models cannot be mixed: use that model or another --index"
            )

    def close(self) -> None:
        if self.write and self._graph_dirty:
            self.save_graph()
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- metadata -----------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    @property
    def dim(self) -> int:
        return int(self.meta("dim") or 0)

    def transaction(self):
        return _Transaction(self.db)

    # -- files and passages ---------------------------------------------------------------------
    def file(self, path: str) -> FileRecord | None:
        row = self.db.execute("SELECT id, path, size, mtime, hash, duration, status, error FROM files WHERE path=?", (path,)).fetchone()
        return FileRecord(*row) if row else None

    def files(self) -> list[FileRecord]:
        rows = self.db.execute("SELECT id, path, size, mtime, hash, duration, status, error FROM files ORDER BY path").fetchall()
        return [FileRecord(*r) for r in rows]

    def touch_file(self, file_id: int, mtime: float) -> None:
        self.db.execute("UPDATE files SET mtime=? WHERE id=?", (mtime, file_id))

    def replace_file(
        self, path: str, size: int, mtime: float, hash_: str | None, duration: float | None,
        spans: Sequence[tuple[float, float]] = (), vectors: np.ndarray | None = None, error: str | None = None,
    ) -> list[int]:
        """Atomically swap a file's passages (or record its failure). Returns the new passage ids."""
        graph = self.graph()
        with self.transaction():
            old = self.db.execute("SELECT p.id FROM passages p JOIN files f ON p.file_id=f.id WHERE f.path=?", (path,)).fetchall()
            self.db.execute("DELETE FROM files WHERE path=?", (path,))  # cascades to passages
            cur = self.db.execute(
                "INSERT INTO files(path, size, mtime, hash, duration, status, error, indexed_at) VALUES(?,?,?,?,?,?,?,?)",
                (path, size, mtime, hash_, duration, "failed" if error else "ok", error, time.time()),
            )
            fid = cur.lastrowid
            ids = []
            if vectors is not None and len(spans):
                v16 = np.asarray(vectors, dtype=np.float16)
                for (s, e), v in zip(spans, v16):
                    ids.append(self.db.execute("INSERT INTO passages(file_id, start, end, vector) VALUES(?,?,?,?)", (fid, s, e, v.tobytes())).lastrowid)
            self.set_meta("updated", str(time.time()))
        for (pid,) in old:
            _mark_deleted(graph, pid)
        if ids:
            _ensure_capacity(graph, len(ids))
            graph.add_items(np.asarray(vectors, dtype=np.float32), np.asarray(ids))
        self._live += len(ids) - len(old)
        self._graph_dirty = bool(old or ids) or self._graph_dirty
        return ids

    def remove_files(self, paths: Iterable[str]) -> int:
        graph = self.graph()
        n = 0
        for path in paths:
            with self.transaction():
                old = self.db.execute("SELECT p.id FROM passages p JOIN files f ON p.file_id=f.id WHERE f.path=?", (path,)).fetchall()
                self.db.execute("DELETE FROM files WHERE path=?", (path,))
                self.set_meta("updated", str(time.time()))
            for (pid,) in old:
                _mark_deleted(graph, pid)
            self._live -= len(old)
            n += 1
            self._graph_dirty = True
        return n

    # -- the graph ------------------------------------------------------------------------------
    def graph(self):
        """The HNSW graph, loaded or rebuilt so it holds exactly the database's passages."""
        if self._graph is None:
            self._graph = self._load_or_repair_graph()
        return self._graph

    def _db_ids(self) -> np.ndarray:
        return np.array([r[0] for r in self.db.execute("SELECT id FROM passages ORDER BY id")], dtype=np.int64)

    def _vectors(self, ids: Sequence[int]) -> np.ndarray:
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for s in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            chunk = [int(i) for i in ids[s : s + 900]]
            rows = dict(self.db.execute(f"SELECT id, vector FROM passages WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall())
            for j, i in enumerate(chunk):
                out[s + j] = np.frombuffer(rows[i], dtype=np.float16)
        return out

    def _load_or_repair_graph(self):
        import hnswlib

        dim = self.dim
        if dim <= 0:
            raise IndexError_(f"{self.dir}: index has no model recorded yet; index some files first")
        graph = hnswlib.Index(space="cosine", dim=dim)
        held: set[int] = set()
        meta_path, graph_path = self.dir / GRAPH_META, self.dir / GRAPH
        loaded = False
        if graph_path.exists() and meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                graph.load_index(str(graph_path))  # capacity as saved
                held = set(graph.get_ids_list()) - set(meta.get("deleted", []))
                for pid in meta.get("deleted", []):
                    _mark_deleted(graph, pid)
                loaded = True
            except Exception:
                pass  # unreadable graph file: rebuilt from the database below
        if not loaded:
            graph = new_graph(dim, 1024)
        db_ids = self._db_ids()
        missing = np.setdiff1d(db_ids, np.fromiter(held, dtype=np.int64, count=len(held)))
        extra = held - set(db_ids.tolist())
        if len(missing):
            _ensure_capacity(graph, len(missing))
            for s in range(0, len(missing), 10000):
                part = missing[s : s + 10000]
                graph.add_items(self._vectors(part), part)
        for pid in extra:
            _mark_deleted(graph, pid)
        self._live = len(db_ids)
        if (len(missing) or extra) and self.write:
            self._graph = graph
            self.save_graph()
        return graph

    def save_graph(self) -> None:
        g = self._graph
        if g is None:
            return
        tmp = self.dir / f".{GRAPH}.tmp"
        g.save_index(str(tmp))
        deleted = sorted(set(g.get_ids_list()) - set(self._db_ids().tolist()))
        tmp_meta = self.dir / f".{GRAPH_META}.tmp"
        tmp_meta.write_text(json.dumps({"count": g.get_current_count(), "deleted": deleted}))
        os.replace(tmp, self.dir / GRAPH)
        os.replace(tmp_meta, self.dir / GRAPH_META)
        self._graph_dirty = False

    def search(self, query: np.ndarray, k: int = 10, path_glob: str | None = None) -> list[Hit]:
        """Nearest passages by cosine similarity (score = 1 - cosine distance)."""
        graph = self.graph()
        n = self._live
        if n <= 0:
            return []
        allowed = None
        if path_glob:
            rows = self.db.execute("SELECT p.id FROM passages p JOIN files f ON p.file_id=f.id WHERE f.path GLOB ?", (path_glob,)).fetchall()
            allowed = {r[0] for r in rows}
            if not allowed:
                return []
            n = min(n, len(allowed))
        k = min(k, n)
        graph.set_ef(max(HNSW_EF_SEARCH, k * 2))
        labels, dists = graph.knn_query(np.asarray(query, dtype=np.float32).reshape(1, -1), k=k,
                                        filter=(lambda i: i in allowed) if allowed is not None else None)
        ids = [int(i) for i in labels[0]]
        rows = {r[0]: r[1:] for r in self.db.execute(
            f"SELECT p.id, f.path, p.start, p.end FROM passages p JOIN files f ON p.file_id=f.id WHERE p.id IN ({','.join('?' * len(ids))})", ids)}
        return [Hit(i, float(1.0 - d), *rows[i]) for i, d in zip(ids, dists[0]) if i in rows]

    def passage(self, passage_id: int) -> Hit | None:
        """One passage's file and span (score 0), or None when no passage has that id."""
        row = self.db.execute("SELECT f.path, p.start, p.end FROM passages p JOIN files f ON p.file_id=f.id WHERE p.id=?",
                              (passage_id,)).fetchone()
        return Hit(passage_id, 0.0, *row) if row else None

    # -- summary --------------------------------------------------------------------------------
    def stats(self) -> dict:
        q = self.db.execute
        files_ok = q("SELECT COUNT(*), COALESCE(SUM(duration), 0) FROM files WHERE status='ok'").fetchone()
        failed = q("SELECT path, error FROM files WHERE status='failed' ORDER BY path").fetchall()
        size = sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())
        updated = self.meta("updated")
        return {
            "index": str(self.dir),
            "model": self.meta("model_id"),
            "dim": self.dim,
            "files": files_ok[0],
            "failed_files": [{"path": p, "error": e} for p, e in failed],
            "passages": q("SELECT COUNT(*) FROM passages").fetchone()[0],
            "hours": files_ok[1] / 3600.0,
            "size_bytes": size,
            "updated": float(updated) if updated else None,
        }


def new_graph(dim: int, max_elements: int):
    import hnswlib

    g = hnswlib.Index(space="cosine", dim=dim)
    g.init_index(max_elements=max_elements, ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M)
    g.set_ef(HNSW_EF_SEARCH)
    return g


def _mark_deleted(graph, pid: int) -> None:
    try:
        graph.mark_deleted(int(pid))
    except RuntimeError:
        pass  # not in the graph, or already deleted


def _ensure_capacity(graph, extra: int) -> None:
    need = graph.get_current_count() + extra
    if need > graph.get_max_elements():
        graph.resize_index(max(need, 2 * graph.get_max_elements()))


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
