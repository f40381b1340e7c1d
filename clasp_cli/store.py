"""The on-disk index: SQLite (files, passages, vectors) plus an hnswlib graph for fast lookup.

SQLite is the source of truth and every file is indexed in one transaction, so `kill -9`
at any moment leaves a consistent database. The HNSW graph is derived from it (see graph.py):
stamped with the database state it was built from, checked on every open, and rebuilt and
written back by the next writer when it does not match. One writer at a time holds an flock on
`lock`; readers never take it and open the database read-only, so an index on a read-only
mount can still be searched. SQLite's own failures (damaged file, read-only file, full disk)
become IndexError_ subclasses that name the file and the way out.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import sqlite3
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar
from urllib.parse import quote

import numpy as np

from .encoders.languages import covered
from .errors import ClaspError
from .names import rekey
from .ann_usearch import ShardedUsearch, exact_nearest
from .graph import (  # noqa: F401  (GRAPH*, HNSW_* and new_graph are re-exported for serve and benchmarks)
    E5_GRAPH, ENGINES, GRAPH, GRAPH_META, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, PASSAGE_GRAPH, TRANSCRIPT_GRAPH, DbState,
    auto_engine, ensure_capacity, graph_file_problems, graph_files, has_graph_files, load_graph, mark_deleted, new_graph,
    save_graph, shard_files,
)

DB = "index.sqlite"
LOCK = "lock"
# The files an index is made of, besides its lock (what --rebuild moves, and all a new index holds).
INDEX_FILES = (DB, f"{DB}-wal", f"{DB}-shm", *graph_files(PASSAGE_GRAPH), *graph_files(TRANSCRIPT_GRAPH), *graph_files(E5_GRAPH))


def index_file_names(directory: Path) -> list[str]:
    """The files of the index in `directory` that exist now: INDEX_FILES plus any usearch shards."""
    return [n for n in INDEX_FILES if (directory / n).exists()] + \
        [f for g in (PASSAGE_GRAPH, TRANSCRIPT_GRAPH, E5_GRAPH) for f in shard_files(directory, g)]

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
    """
    -- `path` is what people see: names that are not UTF-8 are shown with \\x escapes, and the
    -- name as the filesystem spells it is kept here so the file can still be opened.
    ALTER TABLE files ADD COLUMN path_bytes BLOB;
    -- Indexed, with a caveat a person should know about (decoding stopped early).
    ALTER TABLE files ADD COLUMN warning TEXT;
    """,
    """
    -- What was said in a passage, from Whisper: cached by `clasp search --rerank`, or filled for
    -- every passage by `clasp index --transcribe`. It goes when its passage goes.
    CREATE TABLE transcripts (
        passage_id INTEGER PRIMARY KEY REFERENCES passages(id) ON DELETE CASCADE,
        text TEXT NOT NULL
    );
    -- Keyword search over the transcripts. External content: the words are stored once, in
    -- `transcripts`, and the triggers keep the full-text index in step with every change to it,
    -- including the cascade when a file is replaced, removed or pruned.
    CREATE VIRTUAL TABLE transcripts_fts USING fts5(
        text, content='transcripts', content_rowid='passage_id', tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER transcripts_ai AFTER INSERT ON transcripts BEGIN
        INSERT INTO transcripts_fts(rowid, text) VALUES (new.passage_id, new.text);
    END;
    CREATE TRIGGER transcripts_ad AFTER DELETE ON transcripts BEGIN
        INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES ('delete', old.passage_id, old.text);
    END;
    CREATE TRIGGER transcripts_au AFTER UPDATE ON transcripts BEGIN
        INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES ('delete', old.passage_id, old.text);
        INSERT INTO transcripts_fts(rowid, text) VALUES (new.passage_id, new.text);
    END;
    """,
    """
    -- The text encoder's vector of each (non-empty) transcript, float16 like passage vectors, so a
    -- query in any language meets what was said, not only its words. Derived: a writer fills the
    -- missing ones from the transcripts (no transcribing again), and the transcript graph
    -- (transcripts.hnsw) is derived from these rows as vectors.hnsw is from passages.
    CREATE TABLE transcript_vectors (
        passage_id INTEGER PRIMARY KEY REFERENCES transcripts(passage_id) ON DELETE CASCADE,
        vector BLOB NOT NULL
    );
    -- A transcript whose text changes loses its vector; the next writer embeds the new text.
    CREATE TRIGGER transcripts_au_vector AFTER UPDATE OF text ON transcripts WHEN old.text IS NOT new.text BEGIN
        DELETE FROM transcript_vectors WHERE passage_id = new.passage_id;
    END;
    -- Earlier versions cached transcripts with INSERT OR REPLACE, which fires no delete trigger
    -- and so could leave the full-text index out of step with the transcripts: rebuild it once.
    INSERT INTO transcripts_fts(transcripts_fts) VALUES('rebuild');
    """,
    # 5: one key per distinct file name (a literal backslash is doubled; clasp_cli.names).
    rekey,
    """
    -- The language a recording is read in (Whisper's code: en, cs, ...), decided once for the
    -- whole recording (clasp_cli.reading.language); NULL until it is read.
    ALTER TABLE files ADD COLUMN language TEXT;
    -- The language each window was read in: its recording's, or another where the speaker
    -- changed language; NULL for transcripts read before this existed.
    ALTER TABLE transcripts ADD COLUMN language TEXT;
    CREATE INDEX files_language ON files(language);
    """,
    """
    -- e5's vector of each (non-empty) transcript (clasp_cli.encoders.e5), beside the USE vector in
    -- transcript_vectors: USE covers 16 languages, e5 about 100. Derived like those: a writer that
    -- can load e5 fills the missing ones from the transcripts, and transcripts-e5.hnsw is built
    -- from these rows. An install where e5 cannot load leaves this table as it is.
    CREATE TABLE transcript_vectors_e5 (
        passage_id INTEGER PRIMARY KEY REFERENCES transcripts(passage_id) ON DELETE CASCADE,
        vector BLOB NOT NULL
    );
    CREATE TRIGGER transcripts_au_vector_e5 AFTER UPDATE OF text ON transcripts WHEN old.text IS NOT new.text BEGIN
        DELETE FROM transcript_vectors_e5 WHERE passage_id = new.passage_id;
    END;
    """,
    """
    -- Who speaks (clasp_cli.speakers). A speaker is one person across the index; a voice is a
    -- speaker as heard in one recording, with its turns; each window has the voice that speaks
    -- in most of it and its own speaker vector (float16, what query by voice compares). Voices,
    -- turns and window voices go with their recording; a speaker without voices stays only
    -- while it has a name.
    CREATE TABLE speakers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: an id a person saw keeps its meaning
        name TEXT UNIQUE COLLATE NOCASE,
        vector BLOB,                           -- float32, the unit mean of its voices
        created_at REAL NOT NULL
    );
    CREATE TABLE voices (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        speaker_id INTEGER NOT NULL REFERENCES speakers(id),
        pinned INTEGER NOT NULL DEFAULT 0,     -- placed by a person (a name, a merge): re-clustering keeps it
        seconds REAL NOT NULL,
        vector BLOB NOT NULL                   -- float32, unit
    );
    CREATE INDEX voices_file ON voices(file_id);
    CREATE INDEX voices_speaker ON voices(speaker_id);
    CREATE TABLE turns (
        voice_id INTEGER NOT NULL REFERENCES voices(id) ON DELETE CASCADE,
        start REAL NOT NULL, end REAL NOT NULL,
        overlap INTEGER NOT NULL               -- another voice speaks during part of it
    );
    CREATE INDEX turns_voice ON turns(voice_id);
    CREATE TABLE passage_voices (
        passage_id INTEGER PRIMARY KEY REFERENCES passages(id) ON DELETE CASCADE,
        voice_id INTEGER REFERENCES voices(id) ON DELETE CASCADE,  -- NULL: no voice found in it
        vector BLOB                            -- float16
    );
    CREATE INDEX passage_voices_voice ON passage_voices(voice_id);
    -- Recordings whose speakers were looked for (found or not); the next run does the rest.
    CREATE TABLE diarized (
        file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
        at REAL NOT NULL
    );
    """,
    """
    -- A speaker's vector times its weight is the seconds-weighted sum of its voices' vectors, so a
    -- voice joining it updates it without reading its other voices (a speaker heard in thousands
    -- of recordings). A voice leaving or moving makes the weight NULL: recompute from the voices.
    ALTER TABLE speakers ADD COLUMN weight REAL;
    CREATE TRIGGER voices_left AFTER DELETE ON voices BEGIN
        UPDATE speakers SET weight = NULL WHERE id = OLD.speaker_id;
    END;
    CREATE TRIGGER voices_moved AFTER UPDATE OF speaker_id ON voices BEGIN
        UPDATE speakers SET weight = NULL WHERE id IN (OLD.speaker_id, NEW.speaker_id);
    END;
    """,
]
# Readers can search indexes this old: what came later (transcripts) only adds to search, and a
# read-only archive indexed by an older clasp must stay searchable without a rewrite.
READABLE_FROM = 2
TRANSCRIPTS_FROM = 3
TRANSCRIPT_VECTORS_FROM = 4
LANGUAGES_FROM = 6
E5_VECTORS_FROM = 7
SPEAKERS_FROM = 8


@dataclass(frozen=True)
class TextSpace:
    """One text encoder's vectors of the transcripts: their table, their graph, and the schema
    version that has the table. dim None: the index's own (USE shares the CLASP vectors' space)."""

    name: str
    table: str
    graph: str
    since: int
    dim: int | None


USE = "use"
E5 = "e5"
SPACE_ENCODERS = {USE: "use-multilingual", E5: "e5-small"}  # the encoder behind each space, as `clasp models` names it
TEXT_SPACES = {USE: TextSpace(USE, "transcript_vectors", TRANSCRIPT_GRAPH, TRANSCRIPT_VECTORS_FROM, None),
               E5: TextSpace(E5, "transcript_vectors_e5", E5_GRAPH, E5_VECTORS_FROM, 384)}
EXACT_FILTERED = 50_000  # a --path that leaves at most this many windows is scored exactly (usearch)
EXACT_FILTERED_HNSW = 10_000  # ... and with either engine, from SQLite (hnswlib's own filter slows as the scope narrows)
# A reader keeps the exact vectors of the narrow scopes it searched last (a --speaker, a --path),
# every space read in one pass, up to this many bytes: one search's three lists read them once,
# and the next query in the same scope (a speaker filter in `clasp serve`) not at all.
SCOPE_MEMO_BYTES = 64 << 20
SCOPE_MEMO_ENTRIES = 16
SCOPE_ID_BYTES = 64  # what a passage id costs in a Python set (its slot and its int)


@dataclass
class _Scoped:
    """One scope's passage ids and, once a list scored it exactly, each space's vectors in it."""

    allowed: frozenset
    vectors: dict | None = None  # space (None: CLASP) -> (ids, their float16 rows as stored)
    nbytes: int = 0


class IndexError_(ClaspError):
    exit_code = 7


class IndexLockedError(IndexError_):
    pass


class IndexDamagedError(IndexError_):
    pass


class IndexReadOnlyError(IndexError_):
    pass


class DiskFullError(IndexError_):
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
    path_bytes: bytes | None = None
    warning: str | None = None
    language: str | None = None  # the language it is read in, once read

    @property
    def fs_path(self) -> str:
        """The name to open: the original bytes where the shown path is an escaped form."""
        return os.fsdecode(self.path_bytes) if self.path_bytes else self.path


_FILE_COLUMNS = "id, path, size, mtime, hash, duration, status, error, path_bytes, warning"
_FILE_COLUMNS_V6 = _FILE_COLUMNS + ", language"


@dataclass
class Hit:
    passage_id: int
    score: float
    path: str
    start: float
    end: float


def path_pattern(path_glob: str | None) -> str | None:
    """A `--path` value as the GLOB it means: a glob as given, plain text as "contains it"."""
    if path_glob and not any(c in path_glob for c in "*?["):
        return f"*{path_glob}*"
    return path_glob


def disk_full(directory: Path) -> bool:
    """Whether the filesystem holding `directory` has (almost) no space left for SQLite's files."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 256 * 1024


def sql_error(e: sqlite3.Error, directory: Path) -> ClaspError | None:
    """The user-facing error behind an SQLite failure, or None when it is a programming error."""
    db = directory / DB
    msg = " ".join(str(e).replace("*** in database main ***", "").split())  # one line, always
    low = msg.lower()
    if "disk i/o" in low and disk_full(directory):
        # SQLite reports a file it could not create or grow on a full disk as an I/O error: that is
        # no damage, and the advice to rebuild would only need more space.
        return DiskFullError(f"{directory}: the disk is full (the index is not damaged); free some space and rerun")
    if "readonly" in low or "read-only" in low:
        return IndexReadOnlyError(f"{db}: cannot write the index ({msg}); searching it still works, "
                                  "or index into a folder you can write with --index")
    if "full" in low:
        return DiskFullError(f"{db}: disk full while writing the index; free some space and rerun "
                             "(files already finished are kept)")
    if "locked" in low or "busy" in low:
        return IndexLockedError(f"{db}: the database is locked by another process; try again")
    if any(w in low for w in ("malformed", "not a database", "disk i/o", "encrypted", "corrupt", "no such table",
                              "no such column", "unable to open")):
        return IndexDamagedError(f"{db}: the index database is damaged ({msg}); "
                                 f"rebuild it with `clasp index --rebuild --index {directory}`")
    return None


T = TypeVar("T", bound=Callable)


def _translated(fn: T) -> T:
    """SQLite errors the user can cause become one clear IndexError_; others still raise."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.Error as e:
            typed = sql_error(e, self.dir)
            if typed is None:
                raise
            raise typed from None
        except OSError as e:  # the graph files: same causes, same messages
            if e.errno == errno.ENOSPC:
                raise DiskFullError(f"{self.dir}: disk full while writing the index; free some space and rerun "
                                    "(files already finished are kept)") from None
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise IndexReadOnlyError(f"{self.dir}: cannot write the index ({e.strerror}); searching it still works, "
                                         "or index into a folder you can write with --index") from None
            raise

    return wrapper  # type: ignore[return-value]


def connect_reader(db_path: Path) -> sqlite3.Connection:
    """Read-only, never creating files: WAL needs a writable -shm, which a read-only mount lacks."""
    base = f"file:{quote(str(db_path))}"
    db = sqlite3.connect(f"{base}?mode=ro", uri=True, timeout=30, isolation_level=None)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError as e:
        db.close()
        wal = db_path.with_name(db_path.name + "-wal")
        full = "disk i/o" in str(e).lower() and disk_full(db_path.parent) and not (wal.exists() and wal.stat().st_size)
        if os.access(db_path.parent, os.W_OK) and "readonly" not in str(e).lower() and not full:
            raise
    # Nobody can be writing a folder no one may write to, so the file is as good as immutable. On
    # a full disk SQLite cannot create the -shm file a WAL reader wants; with no WAL content
    # pending, the database file alone is the whole index, and no writer can add to it meanwhile.
    db = sqlite3.connect(f"{base}?immutable=1", uri=True, timeout=30, isolation_level=None)
    db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    return db


class Store:
    """Open with Store.open(dir, ...). Use as a context manager; writers pass write=True."""

    def __init__(self, directory: Path, db: sqlite3.Connection, write: bool, lock_fd: int | None):
        self.dir = directory
        self.db = db
        self.write = write
        self._lock_fd = lock_fd
        self._graph = None
        self._graph_dirty = False
        self.graph_notes: list[str] = []  # why the graph was repaired on open, for `clasp index --repair`
        self._live = 0  # passages in the graph not marked deleted; knn_query needs k <= this
        # Per text space (TEXT_SPACES): its transcript graph, loaded on first use; whether it changed
        # since written; and its live labels (knn_query needs k <= their number).
        self._tgraph: dict[str, object] = {}
        self._tgraph_dirty: dict[str, bool] = {}
        self._tlabels: dict[str, set[int]] = {}
        self._cache_db: sqlite3.Connection | None = None  # a reader's own connection for writing transcripts
        self._scoped: OrderedDict[tuple, _Scoped] = OrderedDict()  # SCOPE_MEMO_BYTES
        self._scoped_at: tuple[int, int] | None = None  # (data_version, own changes) the memo was read at
        self.cache_writable: bool | None = None  # None until a reader first tries to store a transcript
        self._dim = 0

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, directory: str | Path, write: bool = False, model_id: str | None = None, dim: int | None = None,
             check: bool = False) -> "Store":
        """Open an index. Writers take the lock and migrate; `check` runs SQLite's integrity check first."""
        directory = Path(directory).expanduser()
        if not write and not (directory / DB).is_file():
            raise IndexError_(f"no index at {directory}: build one with `clasp index PATH --index {directory}`")
        lock_fd = take_lock(directory) if write else None
        db = None
        try:
            if write:
                db = sqlite3.connect(directory / DB, timeout=30, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            else:
                db = connect_reader(directory / DB)
            db.execute("PRAGMA foreign_keys=ON")
            store = cls(directory, db, write, lock_fd)
            if check:
                bad = db.execute("PRAGMA quick_check(1)").fetchone()[0]
                if bad != "ok":
                    raise sqlite3.DatabaseError(f"database disk image is malformed: {' '.join(bad.split())}")
            if write:
                store._migrate()
                store._check_model(model_id, dim)
            elif db.execute("PRAGMA user_version").fetchone()[0] < READABLE_FROM:
                raise IndexError_(f"{directory}: index is from an older clasp; run `clasp index` once to upgrade it")
        except sqlite3.Error as e:
            _release(db, lock_fd)
            typed = sql_error(e, directory) or IndexDamagedError(
                f"{directory / DB}: not a usable index database ({e}); "
                f"rebuild it with `clasp index --rebuild --index {directory}`")
            raise typed from None
        except BaseException:
            _release(db, lock_fd)
            raise
        return store

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for n, step in enumerate(MIGRATIONS[version:], start=version + 1):
            if callable(step):  # a migration that needs Python (re-deriving keys)
                self.db.execute("BEGIN")
                try:
                    step(self.db)
                    self.db.execute(f"PRAGMA user_version={n}")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                self.db.execute("COMMIT")
            else:
                self.db.executescript(f"BEGIN; {step}; PRAGMA user_version={n}; COMMIT;")

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
        if self.meta("index_id") is None:  # indexes made before graph stamps get their id now
            with self.transaction():
                self.set_meta("index_id", uuid.uuid4().hex)

    @_translated
    def close(self) -> None:
        try:
            if self.write and self._graph_dirty:
                self.save_graph()
            if self.write:
                for space, dirty in list(self._tgraph_dirty.items()):
                    if dirty:
                        self.save_transcript_graph(space)
        finally:
            self.db.close()
            if self._cache_db is not None:
                self._cache_db.close()
                self._cache_db = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- metadata -----------------------------------------------------------------------------
    @_translated
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    @_translated
    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    @property
    def dim(self) -> int:
        # Read for every vector blob decoded, and fixed once recorded: asked of SQLite once.
        if not self._dim:
            self._dim = int(self.meta("dim") or 0)
        return self._dim

    def transaction(self) -> "_Transaction":
        return _Transaction(self)

    # -- files and passages ---------------------------------------------------------------------
    @property
    def has_languages(self) -> bool:
        """Whether this index records languages (a reader of an index from an older clasp may not)."""
        return self.db.execute("PRAGMA user_version").fetchone()[0] >= LANGUAGES_FROM

    def _file_columns(self) -> str:
        return _FILE_COLUMNS_V6 if self.has_languages else _FILE_COLUMNS

    @_translated
    def file(self, path: str) -> FileRecord | None:
        row = self.db.execute(f"SELECT {self._file_columns()} FROM files WHERE path=?", (path,)).fetchone()
        return FileRecord(*row) if row else None

    @_translated
    def files(self, path_glob: str | None = None) -> list[FileRecord]:
        """Every file the index records, or those whose path matches a GLOB (as search filters)."""
        cols = self._file_columns()
        if path_glob:
            rows = self.db.execute(f"SELECT {cols} FROM files WHERE path GLOB ? ORDER BY path", (path_glob,)).fetchall()
        else:
            rows = self.db.execute(f"SELECT {cols} FROM files ORDER BY path").fetchall()
        return [FileRecord(*r) for r in rows]

    @_translated
    def languages(self) -> dict[str, int]:
        """Recordings per language they are read in, most first (recordings not read yet are left out)."""
        if not self.has_languages:
            return {}
        rows = self.db.execute("SELECT language, COUNT(*) FROM files WHERE language IS NOT NULL "
                               "GROUP BY language ORDER BY COUNT(*) DESC, language").fetchall()
        return {str(code): int(n) for code, n in rows}

    def prevailing_language(self) -> str | None:
        """The language most of the index's recordings are read in: the prior of a recording too
        short to tell (clasp_cli.reading.language)."""
        return next(iter(self.languages()), None)

    @_translated
    def file_passages(self, file_id: int) -> list[tuple[int, float, float]]:
        """(passage id, start, end) of a recording's windows, in time order."""
        return [(int(i), float(a), float(b)) for i, a, b in self.db.execute(
            "SELECT id, start, end FROM passages WHERE file_id=? ORDER BY start, id", (file_id,))]

    @_translated
    def touch_file(self, file_id: int, mtime: float) -> None:
        self.db.execute("UPDATE files SET mtime=? WHERE id=?", (mtime, file_id))

    @_translated
    def replace_file(
        self, path: str, size: int, mtime: float, hash_: str | None, duration: float | None,
        spans: Sequence[tuple[float, float]] = (), vectors: np.ndarray | None = None, error: str | None = None,
        path_bytes: bytes | None = None, warning: str | None = None, texts: Sequence[str] | None = None,
        text_vectors: np.ndarray | None = None,
    ) -> list[int]:
        """Atomically swap a file's passages (or record its failure). Returns the new passage ids.

        `texts`, one per span, are the passages' transcripts (`clasp index --transcribe`), and
        `text_vectors` their text-encoder vectors (rows for empty texts are not stored)."""
        graph = self.graph()
        with self.transaction():
            old = self.db.execute("SELECT p.id FROM passages p JOIN files f ON p.file_id=f.id WHERE f.path=?", (path,)).fetchall()
            self.db.execute("DELETE FROM files WHERE path=?", (path,))  # cascades to passages
            cur = self.db.execute(
                "INSERT INTO files(path, size, mtime, hash, duration, status, error, indexed_at, path_bytes, warning) "
                "VALUES(?,?,?,?,?,?,?,?,?,?)",
                (path, size, mtime, hash_, duration, "failed" if error else "ok", error, time.time(), path_bytes, warning),
            )
            fid = cur.lastrowid
            ids = []
            if vectors is not None and len(spans):
                v16 = np.asarray(vectors, dtype=np.float16)
                for (s, e), v in zip(spans, v16):
                    ids.append(self.db.execute("INSERT INTO passages(file_id, start, end, vector) VALUES(?,?,?,?)", (fid, s, e, v.tobytes())).lastrowid)
                if texts is not None:
                    self.db.executemany("INSERT INTO transcripts(passage_id, text) VALUES(?, ?)", zip(ids, texts))
                    if text_vectors is not None:
                        self._insert_text_vectors(self.db, dict(zip(ids, texts)), dict(zip(ids, text_vectors)))
            self.set_meta("updated", str(time.time()))
        for (pid,) in old:
            mark_deleted(graph, pid)
            self._forget_transcript_vector(pid)
        if texts is not None and text_vectors is not None:
            self._add_transcript_vectors({i: v for i, t, v in zip(ids, texts, text_vectors) if t.strip()})
        if ids:
            ensure_capacity(graph, len(ids))
            graph.add_items(np.asarray(vectors, dtype=np.float32), np.asarray(ids))
        self._live += len(ids) - len(old)
        self._graph_dirty = bool(old or ids) or self._graph_dirty
        return ids

    @_translated
    def remove_files(self, paths: Iterable[str]) -> int:
        graph = self.graph()
        n = 0
        for path in paths:
            with self.transaction():
                old = self.db.execute("SELECT p.id FROM passages p JOIN files f ON p.file_id=f.id WHERE f.path=?", (path,)).fetchall()
                self.db.execute("DELETE FROM files WHERE path=?", (path,))
                self.set_meta("updated", str(time.time()))
            for (pid,) in old:
                mark_deleted(graph, pid)
                for space in TEXT_SPACES:
                    self._forget_transcript_vector(pid, space)
            self._live -= len(old)
            n += 1
            self._graph_dirty = True
        return n

    # -- the graph ------------------------------------------------------------------------------
    @_translated
    def graph(self):
        """The HNSW graph, loaded, checked and repaired so it holds exactly the database's passages.

        A writer saves a repaired graph at once; a reader (maybe on a read-only mount) keeps the
        repair in memory and leaves the file for the next writer.
        """
        if self._graph is None:
            dim = self.dim
            if dim <= 0:
                raise IndexError_(f"{self.dir}: index has no model recorded yet; index some files first")
            ids = self._db_ids()
            loaded = load_graph(self.dir, dim, self.db_state(), ids, self._vectors, engine=self.ann_engine(len(ids)),
                                view=not self.write)
            self._graph, self._live, self.graph_notes = self._for_reading(loaded.graph, self.passage_vectors), loaded.live, loaded.reasons
            if loaded.changed and self.write:
                self.save_graph()
        return self._graph

    def ann_engine(self, windows: int | None = None) -> str:
        """The ANN engine this index uses: the one recorded (`clasp index --ann`), else chosen by size."""
        chosen = self.meta("ann")
        if chosen in ENGINES:
            return chosen
        if windows is None:
            windows = self.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        return auto_engine(windows, self.dir)

    def set_ann_engine(self, engine: str) -> None:
        """Record `engine` ("auto" forgets the choice); the graphs are rebuilt in it on next load."""
        if engine not in (*ENGINES, "auto"):
            raise ValueError(f"unknown ANN engine {engine!r}")
        if engine == (self.meta("ann") or "auto"):
            return
        with self.transaction():
            if engine == "auto":
                self.db.execute("DELETE FROM meta WHERE key='ann'")
            else:
                self.set_meta("ann", engine)
        self._graph = None  # reloaded (and rebuilt) in the engine now chosen
        self._graph_dirty = False
        self._tgraph, self._tgraph_dirty, self._tlabels = {}, {}, {}

    def db_state(self) -> DbState:
        n, max_id, id_sum = self.db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0) FROM passages").fetchone()
        return DbState(self.meta("index_id") or "", n, max_id, id_sum)

    def _db_ids(self) -> np.ndarray:
        return np.array([r[0] for r in self.db.execute("SELECT id FROM passages ORDER BY id")], dtype=np.int64)

    def _vectors(self, ids: Sequence[int]) -> np.ndarray:
        return self._dense(self.passage_vectors(ids), ids, "passage {} has no vector")

    def _for_reading(self, graph, held: Callable[[Sequence[int]], dict], dim: int | None = None):
        """A loaded graph, made to rescore as a reader must. A writer holds the lock, so an id its
        graph holds and the database lacks is damage. A reader's graph was read before another
        process may have pruned: an id gone from the database since is a removed window (a NaN
        row, which the usearch graph skips), never a reason to call a healthy index damaged."""
        if not self.write and isinstance(graph, ShardedUsearch):
            graph.vectors = lambda ids: self._dense(held(ids), ids, None, dim)
        return graph

    def _dense(self, got: dict[int, np.ndarray], ids: Sequence[int], missing: str | None, dim: int | None = None) -> np.ndarray:
        """[len(ids), dim] of the vectors in `got`, in `ids` order; a missing one is damage (a
        truncated file reads back as holes), or with `missing` None a row of NaN."""
        out = np.zeros((len(ids), dim or self.dim), dtype=np.float32)
        for j, i in enumerate(ids):
            v = got.get(int(i))
            if v is None:
                if missing is None:
                    out[j] = np.nan
                    continue
                raise IndexDamagedError(f"{self.dir / DB}: the index database is damaged ({missing.format(int(i))}); "
                                        f"rebuild it with `clasp index --rebuild --index {self.dir}`")
            out[j] = v
        return out

    def _rows_in(self, sql: str, ids: Sequence[int]) -> Iterable[tuple]:
        """The rows of `sql` + "(?, ?, ...)" for these ids, asked in chunks under SQLite's bound-parameter limit."""
        ids = [int(i) for i in ids]
        for s in range(0, len(ids), 900):
            chunk = ids[s : s + 900]
            yield from self.db.execute(f"{sql}({','.join('?' * len(chunk))})", chunk)

    @_translated
    def save_graph(self) -> None:
        if self._graph is None:
            return
        save_graph(self.dir, self._graph, self.db_state(), self._db_ids())
        self._graph_dirty = False

    @_translated
    def rebuild_graph(self) -> int:
        """Build the graph afresh from the database and write it (`clasp index --repair`). Returns passages."""
        ids = self._db_ids()
        g = new_graph(self.dim, max(1024, len(ids)), self.ann_engine(len(ids)), self._vectors)
        for s in range(0, len(ids), 10000):
            part = ids[s : s + 10000]
            g.add_items(self._vectors(part), part)
        self._graph, self._live = g, len(ids)
        self.save_graph()
        return len(ids)

    @_translated
    def check(self) -> list[str]:
        """Every way this index disagrees with itself; empty when healthy."""
        problems = []
        q = self.db.execute
        bad = q("PRAGMA quick_check").fetchall()
        if bad != [("ok",)]:
            problems.append(f"database: {bad[0][0]}")
        orphans = q("SELECT COUNT(*) FROM passages WHERE file_id NOT IN (SELECT id FROM files)").fetchone()[0]
        if orphans:
            problems.append(f"{orphans} passages belong to no file")
        dups = q("SELECT COUNT(*) FROM (SELECT file_id, start, end FROM passages GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)").fetchone()[0]
        if dups:
            problems.append(f"{dups} passages stored twice")
        failed_with_passages = q("SELECT COUNT(*) FROM passages p JOIN files f ON p.file_id=f.id WHERE f.status='failed'").fetchone()[0]
        if failed_with_passages:
            problems.append(f"{failed_with_passages} passages belong to failed files")
        if self.has_transcript_table and self.write:  # FTS5 runs its check as a write statement
            try:
                q("INSERT INTO transcripts_fts(transcripts_fts, rank) VALUES('integrity-check', 1)")
            except sqlite3.DatabaseError as e:
                problems.append(f"keyword index out of step with the transcripts ({e})")
        if not problems:
            ids = self._db_ids()
            problems += graph_file_problems(self.dir, self.dim, self.db_state(), ids, self._vectors,
                                            engine=self.ann_engine(len(ids)))
        for space in TEXT_SPACES.values():
            if not problems and self.has_transcript_vectors(space=space.name) and has_graph_files(self.dir, space.graph):
                # Behind its rows is normal here (a reranking reader adds transcripts and leaves the file
                # to the next writer); only a file that cannot be trusted is a problem.
                problems += [p for p in graph_file_problems(self.dir, self._space_dim(space.name), self.tdb_state(space.name),
                                                            self._tdb_ids(space.name),
                                                            lambda ids, s=space.name: self._tvectors(ids, s),
                                                            name=space.graph, engine=self.ann_engine())
                             if "missing from" not in p and "stamp does not match" not in p]
        return problems

    @_translated
    def rebuild_keyword_index(self) -> None:
        """Rebuild the full-text index from the transcripts (`clasp index --repair`)."""
        with self.transaction() as db:
            db.execute("INSERT INTO transcripts_fts(transcripts_fts) VALUES('rebuild')")

    @_translated
    def search(self, query: np.ndarray, k: int = 10, path_glob: str | None = None, language: str | None = None,
               speakers: Sequence[int] | None = None) -> list[Hit]:
        """Nearest passages by cosine similarity (score = 1 - cosine distance); path_glob keeps
        recordings whose path matches, language the windows read in it, speakers the windows
        whose voice belongs to one of these speakers."""
        graph = self.graph()
        if self._live <= 0:
            return []
        return self._knn(graph, self._live, query, k, path_glob, language=language, speakers=speakers)

    def _scope(self, path_glob: str | None, language: str | None, speakers: Sequence[int] | None = None) -> tuple[str, str, tuple]:
        """(a join, SQL conditions, their arguments) on passages `p` of files `f` for a path GLOB,
        a language (the one a window was read in, else its recording's) and speakers."""
        conds, args, join = [], [], ""
        if speakers is not None:
            if self.db.execute("PRAGMA user_version").fetchone()[0] < SPEAKERS_FROM or not speakers:
                conds.append("0")
            else:
                # A join, not "p.id IN (...)": SQLite then starts from the speaker's voices (their
                # index) instead of testing every window of the index.
                join += " JOIN passage_voices pv_s ON pv_s.passage_id = p.id JOIN voices v_s ON v_s.id = pv_s.voice_id"
                conds.append(f"v_s.speaker_id IN ({','.join('?' * len(speakers))})")
                args.extend(int(s) for s in speakers)
        if path_glob:
            conds.append("f.path GLOB ?")
            args.append(path_glob)
        if language and not self.has_languages:
            conds.append("0")  # an index from before languages: nothing was read in any
        elif language:
            join += " LEFT JOIN transcripts tl ON tl.passage_id = p.id"
            conds.append("COALESCE(tl.language, f.language) = ?")
            args.append(language)
        return join, " AND ".join(conds), tuple(args)

    def _knn(self, graph, n: int, query: np.ndarray, k: int, path_glob: str | None, labels: set[int] | None = None,
             language: str | None = None, speakers: Sequence[int] | None = None, space: str | None = None) -> list[Hit]:
        """The graph's k nearest within the scope; `space` names a transcript graph's text space
        (None: the CLASP graph), whose vectors a narrow scope is scored with exactly."""
        allowed = None
        join, where, args = self._scope(path_glob, language, speakers)
        if where:
            scoped = self._scoped_entry(join, where, args)
            allowed = scoped.allowed if labels is None else scoped.allowed & labels
            if not allowed:
                return []
            n = min(n, len(allowed))
        k = min(k, n)
        usearch = getattr(graph, "engine", "hnsw") == "usearch"
        if allowed is not None and scoped.vectors is not None:
            # hnswlib's filter slows as it narrows (a speaker's 2% of 100k windows: 33 ms a graph),
            # and usearch cannot filter inside the graph: a narrow --path or --speaker is scored
            # exactly, from the vectors SQLite holds, read once for every list of the search.
            ids, rows = scoped.vectors[space]
            order, dists = exact_nearest(rows, query, k)
            labels, dists = ids[order].reshape(1, -1), dists.reshape(1, -1)
        elif allowed is not None and usearch and len(allowed) <= EXACT_FILTERED:
            q = np.asarray(query, dtype=np.float32).reshape(-1)
            ids = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
            dists = graph.exact_distances(q, ids)
            order = np.argsort(dists, kind="stable")[:k]
            order = order[np.isfinite(dists[order])]  # pruned by another process since `allowed` was read
            labels, dists = ids[order].reshape(1, -1), dists[order].reshape(1, -1)
        else:
            graph.set_ef(max(HNSW_EF_SEARCH, k * 2))
            labels, dists = graph.knn_query(np.asarray(query, dtype=np.float32).reshape(1, -1), k=k,
                                            filter=(lambda i: i in allowed) if allowed is not None else None)
        ids = [int(i) for i in labels[0]]
        rows = {r[0]: r[1:] for r in self.db.execute(
            f"SELECT p.id, f.path, p.start, p.end FROM passages p JOIN files f ON p.file_id=f.id WHERE p.id IN ({','.join('?' * len(ids))})", ids)}
        return [Hit(i, float(1.0 - d), *rows[i]) for i, d in zip(ids, dists[0]) if i in rows]

    @staticmethod
    def _scope_source(join: str, where: str) -> str:
        """The FROM clause of a scope's windows `p`: the files table only where the scope asks
        about a file (each window read costs a lookup in it)."""
        return f"passages p{' JOIN files f ON p.file_id=f.id' if 'f.' in where else ''}{join}"

    def _scoped_entry(self, join: str, where: str, args: tuple) -> _Scoped:
        """The memo of one scope, read now unless this connection saw no write since. A narrow
        scope (at most EXACT_FILTERED_HNSW windows) is read with every space's vectors in one
        query: the search scores it exactly, and reading its ids alone first would cost a
        second pass over the same rows."""
        at = (self.db.execute("PRAGMA data_version").fetchone()[0], self.db.total_changes)
        if at != self._scoped_at:
            self._scoped.clear()
            self._scoped_at = at
        key = (join, where, args)
        entry = self._scoped.get(key)
        if entry is None:
            source = self._scope_source(join, where)
            spaces = [s for s in TEXT_SPACES if self.has_transcript_vectors(space=s)]
            dims = [(None, self.dim)] + [(s, self._space_dim(s)) for s in spaces]
            cols = "".join(f", t{i}.vector AS v{i + 1}" for i in range(len(spaces)))
            joins = "".join(f" LEFT JOIN {TEXT_SPACES[s].table} t{i} ON t{i}.passage_id = p.id" for i, s in enumerate(spaces))
            scope = f"SELECT p.id AS id, p.vector AS v0{cols} FROM {source}{joins} WHERE {where} LIMIT ?"
            # SQLite joins each space's blobs into one (group_concat keeps a blob's bytes; every
            # aggregate of the query sees the rows in the same order): building a tuple per
            # window and joining them here took most of a new speaker's read.
            packed = "".join(f", CAST(group_concat(v{c}, '') AS BLOB)" for c in range(len(dims)))
            n, id_text, *raws = self.db.execute(f"SELECT COUNT(*), group_concat(id){packed} FROM ({scope})",
                                                (*args, EXACT_FILTERED_HNSW + 1)).fetchone()
            if n > EXACT_FILTERED_HNSW:
                # A wide scope (a --path over most of the archive) wasted that read, once per
                # reader: the memo keeps its ids for the next query.
                entry = _Scoped(frozenset(r[0] for r in self.db.execute(f"SELECT p.id FROM {source} WHERE {where}", args)))
            else:
                all_ids = np.array(id_text.split(",") if n else [], dtype=np.int64)
                entry = _Scoped(frozenset(all_ids.tolist()), {})
                rows = None
                for col, ((space, dim), raw) in enumerate(zip(dims, raws)):
                    raw, ids = raw or b"", all_ids
                    if len(raw) != 2 * dim * n:
                        # Some window lacks this vector (transcribed only in part): read it row by row.
                        if rows is None:
                            rows = self.db.execute(scope, (*args, EXACT_FILTERED_HNSW + 1)).fetchall()
                        good = [(r[0], r[col + 1]) for r in rows if isinstance(r[col + 1], bytes) and len(r[col + 1]) == 2 * dim]
                        raw, ids = b"".join(b for _, b in good), np.array([i for i, _ in good], dtype=np.int64)
                    # Kept as stored: float16, scored as such (ann_usearch.exact_nearest).
                    v = np.frombuffer(raw, dtype=np.float16).reshape(len(ids), dim)
                    entry.vectors[space] = (ids, v)
                    entry.nbytes += v.nbytes
            entry.nbytes += len(entry.allowed) * SCOPE_ID_BYTES
            self._scoped[key] = entry
            total = sum(e.nbytes for e in self._scoped.values())
            while len(self._scoped) > 1 and (total > SCOPE_MEMO_BYTES or len(self._scoped) > SCOPE_MEMO_ENTRIES):
                total -= self._scoped.popitem(last=False)[1].nbytes  # the newest stays, whatever its size
        self._scoped.move_to_end(key)
        return entry

    @_translated
    def passage(self, passage_id: int) -> Hit | None:
        """One passage's file and span (score 0), or None when no passage has that id."""
        row = self.db.execute("SELECT f.path, p.start, p.end FROM passages p JOIN files f ON p.file_id=f.id WHERE p.id=?",
                              (passage_id,)).fetchone()
        return Hit(passage_id, 0.0, *row) if row else None

    @_translated
    def passage_spans(self, ids: Sequence[int]) -> dict[int, tuple[str, float, float]]:
        """passage id -> (path, start, end) for the ids that exist."""
        return {int(i): (p, float(a), float(b)) for i, p, a, b in self._rows_in(
            "SELECT p.id, f.path, p.start, p.end FROM passages p JOIN files f ON p.file_id=f.id WHERE p.id IN ", ids)}

    @_translated
    def passages_in_scope(self, path_glob: str | None = None, language: str | None = None,
                          speakers: Sequence[int] | None = None) -> set[int] | None:
        """The passage ids a --path, --language and --speaker filter keeps (None: no filter)."""
        join, where, args = self._scope(path_glob, language, speakers)
        if not where:
            return None
        # Ids alone (query by voice): the memo would read every text space's vectors with them.
        return {r[0] for r in self.db.execute(f"SELECT p.id FROM {self._scope_source(join, where)} WHERE {where}", args)}

    def recording_path(self, passage_id: int) -> str | None:
        """The name to open for a passage's recording: its real bytes where the shown path is an escape."""
        row = self.db.execute("SELECT f.path, f.path_bytes FROM passages p JOIN files f ON p.file_id=f.id WHERE p.id=?",
                              (passage_id,)).fetchone()
        return None if row is None else (os.fsdecode(row[1]) if row[1] else row[0])

    # -- transcripts ------------------------------------------------------------------------------
    @property
    def has_transcript_table(self) -> bool:
        return self.db.execute("PRAGMA user_version").fetchone()[0] >= TRANSCRIPTS_FROM

    @_translated
    def passage_languages(self, ids: Sequence[int]) -> dict[int, str]:
        """The language each passage was read in (its recording's where the window has none)."""
        if not self.has_languages:
            return {}
        return {int(i): str(code) for i, code in self._rows_in(
            "SELECT p.id, COALESCE(t.language, f.language) FROM passages p JOIN files f ON p.file_id=f.id "
            "LEFT JOIN transcripts t ON t.passage_id=p.id WHERE COALESCE(t.language, f.language) IS NOT NULL AND p.id IN ", ids)}

    @_translated
    def recording_languages(self, ids: Sequence[int]) -> dict[int, str]:
        """The language each passage's recording was read in (decided from all its chunks, so
        steadier than one window's switch); passages of recordings not read yet are left out."""
        if not self.has_languages:
            return {}
        return {int(i): str(code) for i, code in self._rows_in(
            "SELECT p.id, f.language FROM passages p JOIN files f ON p.file_id=f.id "
            "WHERE f.language IS NOT NULL AND p.id IN ", ids)}

    @_translated
    def transcripts(self, ids: Sequence[int]) -> dict[int, str]:
        """The cached transcript of each passage in `ids` that has one."""
        if not self.has_transcript_table:
            return {}
        return dict(self._rows_in("SELECT passage_id, text FROM transcripts WHERE passage_id IN ", ids))

    @_translated
    def spoken(self, file_id: int) -> list[tuple[float, float, str]]:
        """What was said in one recording: (start, end, transcript) of each transcribed window, in
        time order. Windows not transcribed yet are left out."""
        if not self.has_transcript_table:
            return []
        rows = self.db.execute("SELECT p.start, p.end, t.text FROM passages p JOIN transcripts t ON t.passage_id=p.id "
                               "WHERE p.file_id=? ORDER BY p.start, p.id", (file_id,)).fetchall()
        return [(float(a), float(b), str(t)) for a, b, t in rows]

    def put_transcripts(self, items: dict[int, str], vectors: dict[int, np.ndarray] | None = None,
                        langs: dict[int, str | None] | None = None, file_language: tuple[int, str] | None = None,
                        e5_vectors: dict[int, np.ndarray] | None = None) -> bool:
        """Store transcripts (and, when given, their USE and e5 text vectors), committed at once in
        their own transaction. Returns whether they were stored.

        A reader (`clasp search`) writes through a connection of its own, without the writer lock:
        a transcript is a row beside its passage that no graph or indexing run depends on, and
        SQLite's own locking orders it with a concurrent `clasp index`. An index that cannot be
        written (read-only mount or file, a full disk, or from an older clasp) stores nothing and returns
        False; search then uses the transcripts it just made for this query only.
        A passage deleted meanwhile by a concurrent `clasp index` simply gets no row.
        Every write is an upsert (delete and insert of the full-text row through the update
        trigger), so two processes caching the same window cannot leave the keyword index out of step.
        """
        if not items:
            return True
        db = self.db if self.write else self._cache_connection()
        if db is None:
            return False
        rows = [(int(k), v, int(k)) for k, v in items.items()]
        given = {USE: vectors, E5: e5_vectors}
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO transcripts(passage_id, text) SELECT ?, ?2 WHERE EXISTS "
                               "(SELECT 1 FROM passages WHERE id=?3) "
                               "ON CONFLICT(passage_id) DO UPDATE SET text=excluded.text WHERE text IS NOT excluded.text", rows)
                for space, vecs in given.items():
                    if vecs is not None and self.has_transcript_vectors(db, space):
                        self._insert_text_vectors(db, items, vecs, space)
                if (langs or file_language) and db.execute("PRAGMA user_version").fetchone()[0] >= LANGUAGES_FROM:
                    if langs:
                        db.executemany("UPDATE transcripts SET language=? WHERE passage_id=?",
                                       [(code, int(k)) for k, code in langs.items()])
                    if file_language:
                        db.execute("UPDATE files SET language=? WHERE id=?", (file_language[1], int(file_language[0])))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as e:
            typed = sql_error(e, self.dir)
            if isinstance(typed, IndexReadOnlyError) and not self.write:
                self.cache_writable = False
                return False
            if isinstance(typed, DiskFullError) and not self.write:
                return False  # a reader needs no space: this query uses its transcripts without keeping them
            raise (typed or e) from None
        for space, vecs in given.items():
            if vecs is not None:
                self._add_transcript_vectors({int(k): vecs[k] for k, t in items.items() if t.strip() and k in vecs}, space)
        return True

    @staticmethod
    def _insert_text_vectors(db: sqlite3.Connection, texts: dict[int, str], vectors: dict[int, np.ndarray],
                             space: str = USE) -> None:
        rows = [(int(k), np.asarray(vectors[k], dtype=np.float16).tobytes(), int(k))
                for k, t in texts.items() if t.strip() and k in vectors]
        db.executemany(f"INSERT OR REPLACE INTO {TEXT_SPACES[space].table}(passage_id, vector) SELECT ?, ? "
                       "WHERE EXISTS (SELECT 1 FROM transcripts WHERE passage_id=?)", rows)

    def has_transcript_vectors(self, db: sqlite3.Connection | None = None, space: str = USE) -> bool:
        """Whether this index's schema holds `space`'s transcript vectors (rows may still be missing)."""
        return (db or self.db).execute("PRAGMA user_version").fetchone()[0] >= TEXT_SPACES[space].since

    def _space_dim(self, space: str) -> int:
        return TEXT_SPACES[space].dim or self.dim

    @_translated
    def text_spaces(self) -> dict[str, int]:
        """Transcript vectors this index holds, per text space (only spaces its schema has)."""
        return {name: self.text_space_count(name) for name in TEXT_SPACES if self.has_transcript_vectors(space=name)}

    @_translated
    def text_space_count(self, space: str) -> int:
        """How many transcript vectors of `space` this index holds (0 where its schema has none)."""
        if not self.has_transcript_vectors(space=space):
            return 0
        return self.db.execute(f"SELECT COUNT(*) FROM {TEXT_SPACES[space].table}").fetchone()[0]

    @_translated
    def transcripts_without_vectors(self, limit: int | None = None, space: str = USE) -> list[tuple[int, str]]:
        """(passage id, text) of non-empty transcripts that have no `space` vector yet."""
        if not self.has_transcript_vectors(space=space):
            return []
        sql = (f"SELECT t.passage_id, t.text FROM transcripts t WHERE trim(t.text) != '' AND NOT EXISTS "
               f"(SELECT 1 FROM {TEXT_SPACES[space].table} v WHERE v.passage_id=t.passage_id) ORDER BY t.passage_id")
        return self.db.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()

    @_translated
    def count_transcripts_without_vectors(self, space: str = USE) -> int:
        """How many rows transcripts_without_vectors would return, without reading their texts."""
        if not self.has_transcript_vectors(space=space):
            return 0
        return self.db.execute(f"SELECT COUNT(*) FROM transcripts t WHERE trim(t.text) != '' AND NOT EXISTS "
                               f"(SELECT 1 FROM {TEXT_SPACES[space].table} v WHERE v.passage_id=t.passage_id)").fetchone()[0]

    @_translated
    def put_transcript_vectors(self, vectors: dict[int, np.ndarray], space: str = USE) -> None:
        """A writer's fill-in of text vectors for transcripts stored without them (older indexes)."""
        if not vectors:
            return
        with self.transaction() as db:
            texts = dict(db.execute(f"SELECT passage_id, text FROM transcripts WHERE passage_id IN "
                                    f"({','.join('?' * len(vectors))})", [int(k) for k in vectors]).fetchall())
            self._insert_text_vectors(db, texts, vectors, space)
        self._add_transcript_vectors({k: v for k, v in vectors.items() if texts.get(k, "").strip()}, space)

    # -- the transcript graphs (one per text space) --------------------------------------------------
    def _forget_transcript_vector(self, pid: int, space: str = USE) -> None:
        labels = self._tlabels.get(space)
        if self._tgraph.get(space) is not None and labels is not None and int(pid) in labels:
            mark_deleted(self._tgraph[space], pid)
            labels.discard(int(pid))
            self._tgraph_dirty[space] = True

    def _add_transcript_vectors(self, vectors: dict[int, np.ndarray], space: str = USE) -> None:
        graph = self._tgraph.get(space)
        if graph is None or not vectors:
            return  # not loaded: the next load brings it up to date from the rows
        ids = np.asarray(list(vectors), dtype=np.int64)
        ensure_capacity(graph, len(ids))
        graph.add_items(np.stack([np.asarray(vectors[int(i)], dtype=np.float32) for i in ids]), ids)
        self._tlabels[space].update(int(i) for i in ids)
        self._tgraph_dirty[space] = True

    def tdb_state(self, space: str = USE) -> DbState:
        n, max_id, id_sum = self.db.execute(
            f"SELECT COUNT(*), COALESCE(MAX(passage_id), 0), COALESCE(SUM(passage_id), 0) FROM {TEXT_SPACES[space].table}").fetchone()
        return DbState(self.meta("index_id") or "", n, max_id, id_sum)

    def _tdb_ids(self, space: str = USE) -> np.ndarray:
        return np.array([r[0] for r in self.db.execute(f"SELECT passage_id FROM {TEXT_SPACES[space].table} ORDER BY passage_id")],
                        dtype=np.int64)

    def _tvectors(self, ids: Sequence[int], space: str = USE) -> np.ndarray:
        return self._dense(self.transcript_vectors(ids, space), ids, "the transcript of passage {} has no vector",
                           self._space_dim(space))

    @_translated
    def transcript_graph(self, space: str = USE):
        """The graph of `space`'s transcript vectors, loaded and checked like the passage graph (None
        before this index's schema holds them)."""
        if not self.has_transcript_vectors(space=space):
            return None
        if self._tgraph.get(space) is None:
            sp = TEXT_SPACES[space]
            ids = self._tdb_ids(space)
            vectors = lambda ids, s=space: self._tvectors(ids, s)  # noqa: E731
            loaded = load_graph(self.dir, self._space_dim(space), self.tdb_state(space), ids, vectors, name=sp.graph,
                                engine=self.ann_engine(), view=not self.write)
            self._tgraph[space] = self._for_reading(loaded.graph, lambda ids, s=space: self.transcript_vectors(ids, s),
                                                    self._space_dim(space))
            self._tlabels[space] = {int(i) for i in ids}
            self.graph_notes += loaded.reasons
            if loaded.changed and self.write and (len(ids) or has_graph_files(self.dir, sp.graph)):
                self.save_transcript_graph(space)
        return self._tgraph[space]

    def save_graphs(self) -> None:
        """Write every graph that changed since it was last written."""
        if self._graph_dirty:
            self.save_graph()
        for space, dirty in list(self._tgraph_dirty.items()):
            if dirty:
                self.save_transcript_graph(space)

    @_translated
    def save_transcript_graph(self, space: str = USE) -> None:
        if self._tgraph.get(space) is None:
            return
        save_graph(self.dir, self._tgraph[space], self.tdb_state(space), self._tdb_ids(space), name=TEXT_SPACES[space].graph)
        self._tgraph_dirty[space] = False

    @_translated
    def rebuild_transcript_graph(self, space: str = USE) -> int:
        ids = self._tdb_ids(space)
        vectors = lambda ids, s=space: self._tvectors(ids, s)  # noqa: E731
        g = new_graph(self._space_dim(space), max(1024, len(ids)), self.ann_engine(), vectors)
        for s in range(0, len(ids), 10000):
            part = ids[s : s + 10000]
            g.add_items(vectors(part), part)
        self._tgraph[space], self._tlabels[space] = g, {int(i) for i in ids}
        self.save_transcript_graph(space)
        return len(ids)

    @_translated
    def transcript_search(self, query: np.ndarray, k: int = 10, path_glob: str | None = None,
                          language: str | None = None, space: str = USE, speakers: Sequence[int] | None = None) -> list[Hit]:
        """Passages whose transcripts' `space` vectors are nearest the query (score = cosine)."""
        graph = self.transcript_graph(space)
        labels = self._tlabels.get(space)
        if graph is None or not labels:
            return []
        return self._knn(graph, len(labels), query, k, path_glob, labels, language, speakers, space)

    @_translated
    def transcript_vectors(self, ids: Sequence[int], space: str = USE) -> dict[int, np.ndarray]:
        """The `space` text vector of each passage in `ids` whose transcript has one."""
        if not self.has_transcript_vectors(space=space):
            return {}
        return self._blobs(f"SELECT passage_id, vector FROM {TEXT_SPACES[space].table} WHERE passage_id IN ", ids,
                           self._space_dim(space))

    @_translated
    def passage_vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The CLASP vector of each passage in `ids` that still exists."""
        return self._blobs("SELECT id, vector FROM passages WHERE id IN ", ids)

    def _blobs(self, sql: str, ids: Sequence[int], dim: int | None = None) -> dict[int, np.ndarray]:
        size = 2 * (dim or self.dim)
        rows = [(int(i), blob) for i, blob in self._rows_in(sql, ids) if isinstance(blob, bytes) and len(blob) == size]
        if not rows:
            return {}
        # One decode for all the rows: a query reads a few hundred vectors, and a conversion each costs more than SQLite.
        table = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float16).astype(np.float32).reshape(len(rows), -1)
        return {i: table[j] for j, (i, _) in enumerate(rows)}

    def _cache_connection(self) -> sqlite3.Connection | None:
        if self.cache_writable is False:
            return None
        if self._cache_db is None:
            if not self.has_transcript_table or not os.access(self.dir / DB, os.W_OK):
                self.cache_writable = False
                return None
            try:
                db = sqlite3.connect(f"file:{quote(str(self.dir / DB))}?mode=rw", uri=True, timeout=30, isolation_level=None)
                db.execute("PRAGMA foreign_keys=ON")
                db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            except sqlite3.Error:
                self.cache_writable = False
                return None
            self._cache_db = db
            self.cache_writable = True
        return self._cache_db

    @_translated
    def transcribed(self) -> bool:
        """Whether every passage gets a transcript at index time (`clasp index --transcribe`, sticky per index)."""
        return self.has_transcript_table and self.meta("transcribe") == "1"

    @_translated
    def keyword_search(self, fts_query: str, k: int = 10, path_glob: str | None = None,
                       language: str | None = None, speakers: Sequence[int] | None = None) -> list[Hit]:
        """Passages whose transcripts match an FTS5 query (see search.fts_query), best BM25 first;
        score is the BM25 relevance (higher is better)."""
        if not self.has_transcript_table or not fts_query:
            return []
        join, where, wargs = self._scope(path_glob, language, speakers)
        if where:
            sql = ("SELECT p.id, -bm25(transcripts_fts), f.path, p.start, p.end FROM transcripts_fts "
                   f"JOIN passages p ON p.id = transcripts_fts.rowid JOIN files f ON p.file_id = f.id{join} "
                   f"WHERE transcripts_fts MATCH ? AND {where} ORDER BY bm25(transcripts_fts) LIMIT ?")
            args: tuple = (fts_query, *wargs, k)
        else:
            # The best k from the full-text index alone, then their passages: joining first reads a
            # passage and file row for every match, which costs more than the ranking itself.
            sql = ("SELECT p.id, t.score, f.path, p.start, p.end FROM (SELECT rowid AS id, -bm25(transcripts_fts) AS score "
                   "FROM transcripts_fts WHERE transcripts_fts MATCH ? ORDER BY bm25(transcripts_fts) LIMIT ?) t "
                   "JOIN passages p ON p.id = t.id JOIN files f ON p.file_id = f.id ORDER BY t.score DESC")
            args = (fts_query, k)
        return [Hit(int(i), float(sc), path, start, end) for i, sc, path, start, end in self.db.execute(sql, args)]

    @_translated
    def selective_terms(self, terms: Sequence[str], budget: int) -> list[str]:
        """The FTS5 terms (quoted words or phrases) worth an OR query, rarest first.

        BM25 scores every transcript a term matches, so an OR query costs what its most common
        word costs. A term in more than half the transcripts has no weight in BM25 (FTS5 clamps
        its IDF to ~0), so it goes; beyond that, terms are taken rarest first while the windows
        they match together stay within `budget`. Each count stops at the budget, so asking is
        cheap however common a word is.
        """
        if not self.has_transcript_table or not terms:
            return []
        probe = "SELECT COUNT(*) FROM (SELECT 1 FROM transcripts_fts WHERE transcripts_fts MATCH ? LIMIT ?)"
        total = self.db.execute("SELECT COUNT(*) FROM (SELECT 1 FROM transcripts LIMIT ?)", (2 * budget + 1,)).fetchone()[0]
        cap = min(budget, total // 2)
        counted = []
        for term in dict.fromkeys(terms):
            try:
                n = self.db.execute(probe, (term, cap + 1)).fetchone()[0]
            except sqlite3.OperationalError:  # a term FTS5 cannot parse matches nothing
                continue
            if 0 < n <= cap:
                counted.append((n, term))
        kept, used = [], 0
        for n, term in sorted(counted):
            if used + n > budget:
                break
            kept.append(term)
            used += n
        return kept

    # -- summary --------------------------------------------------------------------------------
    @_translated
    def stats(self) -> dict:
        q = self.db.execute
        files_ok = q("SELECT COUNT(*), COALESCE(SUM(duration), 0) FROM files WHERE status='ok'").fetchone()
        failed = q("SELECT path, error FROM files WHERE status='failed' ORDER BY path").fetchall()
        warned = q("SELECT path, warning FROM files WHERE warning IS NOT NULL ORDER BY path").fetchall()
        size = sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())
        updated = self.meta("updated")
        return {
            "index": str(self.dir),
            "model": self.meta("model_id"),
            "dim": self.dim,
            "files": files_ok[0],
            "failed_files": [{"path": p, "error": e} for p, e in failed],
            "warnings": [{"path": p, "warning": w} for p, w in warned],
            "passages": q("SELECT COUNT(*) FROM passages").fetchone()[0],
            # Windows with a transcript: all of them once `clasp index` (or a fill-in) has finished.
            "transcribed": q("SELECT COUNT(*) FROM transcripts").fetchone()[0] if self.has_transcript_table else 0,
            # The text encoders whose transcript vectors this index holds, with the languages each
            # covers and how many vectors it has: search weighs what is there.
            "text_encoders": [{"id": SPACE_ENCODERS[name], "languages": list(covered(SPACE_ENCODERS[name])), "vectors": n}
                              for name, n in self.text_spaces().items()],
            "hours": files_ok[1] / 3600.0,
            # Recordings per language they were read in ({} before any was read).
            "languages": self.languages(),
            "reader": self.meta("reader"),
            # Speakers with speech here, and the recordings whose speakers were looked for (`clasp speakers`).
            **({"speakers": q("SELECT COUNT(DISTINCT speaker_id) FROM voices").fetchone()[0],
                "diarized_files": q("SELECT COUNT(*) FROM diarized").fetchone()[0]}
               if q("PRAGMA user_version").fetchone()[0] >= SPEAKERS_FROM else {"speakers": 0, "diarized_files": 0}),
            "size_bytes": size,
            "updated": float(updated) if updated else None,
        }


def _release(db: sqlite3.Connection | None, lock_fd: int | None) -> None:
    if db is not None:
        db.close()
    if lock_fd is not None:
        os.close(lock_fd)


def take_lock(directory: Path) -> int:
    """The writer lock on `directory` (created if missing): an open fd holding an flock, with our pid in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IndexError_(f"{directory}: cannot create the index folder ({e.strerror or e}); "
                          "choose another --index") from None
    try:
        lock_fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise IndexReadOnlyError(
            f"{directory}: cannot write the index folder ({e.strerror or e}); searching it still works, "
            "or index into a folder you can write with --index") from None
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(lock_fd, 64, 0).decode(errors="replace").strip() or "?"
        os.close(lock_fd)
        raise IndexLockedError(
            f"{directory} is being written by another clasp process (pid {holder}); "
            "wait for it to finish (searching still works meanwhile)"
        ) from None
    try:
        os.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, str(os.getpid()).encode(), 0)
    except OSError as e:
        os.close(lock_fd)
        if e.errno == errno.ENOSPC:
            raise DiskFullError(f"{directory}: the disk is full (the index is not damaged); free some space and rerun") from None
        raise
    return lock_fd


class _Transaction:
    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.store.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise (sql_error(e, self.store.dir) or e) from None
        return self.store.db

    def __exit__(self, exc_type, *_) -> None:
        try:
            self.store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        except sqlite3.Error as e:
            if exc_type is None:
                raise (sql_error(e, self.store.dir) or e) from None
