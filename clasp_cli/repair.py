"""`clasp index --repair` (rebuild the derived graph) and `--rebuild` (re-embed from the recorded files).

Repair trusts the database and rewrites what is derived from it. Rebuild trusts nothing but
the list of files the database still yields: it indexes those files (and any paths given) into
a fresh index beside the old one, then swaps them, keeping the old files.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .errors import UsageError
from .store import DB, E5, Store, connect_reader, index_file_names


@dataclass
class RepairReport:
    problems: list[str]  # what was wrong before the repair
    passages: int  # passages in the rebuilt graph
    remaining: list[str]  # what is still wrong after it (empty when healthy)


def repair_index(index_dir: str | Path, model=None) -> RepairReport:
    """Check an index and rebuild what is derived from its database: the passage graph, the
    keyword index, the transcripts' text vectors (embedded from the stored transcripts, with the
    index's own text encoder; `model`, else the one the index records) and their graph.
    A damaged database raises IndexDamagedError."""
    with Store.open(index_dir, write=True, check=True) as store:
        problems = store.check()
        passages = store.rebuild_graph()
        if store.has_transcript_table:
            store.rebuild_keyword_index()
        if store.has_transcript_vectors():
            if store.transcripts_without_vectors(limit=1):
                from .indexer import fill_transcript_vectors
                from .search import open_model_for

                missing = len(store.transcripts_without_vectors())
                problems.append(f"{missing} transcripts without a text vector")
                fill_transcript_vectors(store, open_model_for(store, model, "cpu"))
            store.rebuild_transcript_graph()
        if store.has_transcript_vectors(space=E5):
            from .indexer import fill_e5_vectors

            missing = len(store.transcripts_without_vectors(space=E5))
            if missing and fill_e5_vectors(store):  # only where e5 loads here; otherwise left for a run that can
                problems.append(f"{missing} transcripts without an e5 vector")
            store.rebuild_transcript_graph(E5)
        remaining = store.check()
    return RepairReport(problems, passages, remaining)


def recorded_files(index_dir: str | Path) -> tuple[list[str], str | None]:
    """The file paths (as the filesystem spells them) and model a possibly damaged index still yields."""
    db_path = Path(index_dir) / DB
    if not db_path.is_file():
        return [], None
    paths: dict[str, None] = {}
    db = _salvage_connection(db_path)
    if db is None:
        return [], None
    with db:
        # The table and its path index are separate b-trees: a damaged page often spares one of them.
        for sql in ("SELECT path, path_bytes FROM files", "SELECT path, NULL FROM files", "SELECT path, NULL FROM files ORDER BY path",
                    "SELECT path, NULL FROM files ORDER BY path DESC", "SELECT path, NULL FROM files ORDER BY id DESC"):
            try:
                for path, raw in db.execute(sql):
                    paths.setdefault(os.fsdecode(raw) if raw else path)
            except sqlite3.Error:
                continue
        model_ref = _meta(db, "model_ref")
    db.close()
    return list(paths), model_ref


def recorded_segmentation(index_dir: str | Path) -> str | None:
    """How a possibly damaged index cut its recordings (the JSON it recorded), if it says."""
    return recorded_meta(index_dir, "segmentation")


def recorded_meta(index_dir: str | Path, key: str) -> str | None:
    """A setting a possibly damaged index recorded, if it still says."""
    db_path = Path(index_dir) / DB
    if not db_path.is_file():
        return None
    db = _salvage_connection(db_path)
    if db is None:
        return None
    try:
        return _meta(db, key)
    finally:
        db.close()


def _salvage_connection(db_path: Path) -> sqlite3.Connection | None:
    """A read-only connection to a possibly damaged database (also on a full disk), or None."""
    try:
        return connect_reader(db_path)
    except sqlite3.Error:
        pass
    try:  # damaged beyond the reader's first query: read what SQLite still yields
        return sqlite3.connect(f"file:{quote(str(db_path))}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return None


def healthy(db_path: Path) -> bool:
    """SQLite's quick_check passes on the database (read-only): the proof --rebuild asks for
    before it calls an index damaged."""
    db = _salvage_connection(db_path)
    if db is None:
        return False
    try:
        return db.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok"
    except sqlite3.Error:
        return False
    finally:
        db.close()


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


# Where --rebuild builds the new index, inside the old one's folder (the same filesystem, so the
# swap is renames); a rebuild that was stopped resumes in it.
STAGING = ".rebuild"


def set_aside(index_dir: str | Path, kind: str = "damaged") -> Path | None:
    """Move the database and graphs into index_dir/<kind>-<time>/ (kept, never deleted)."""
    index_dir = Path(index_dir)
    names = index_file_names(index_dir)
    if not names:
        return None
    base = index_dir / time.strftime(f"{kind}-%Y%m%d-%H%M%S")
    dest, n = base, 1
    while dest.exists():
        dest, n = base.with_name(f"{base.name}-{n}"), n + 1
    dest.mkdir()
    for name in names:
        os.replace(index_dir / name, dest / name)
    return dest


def rebuild_index(index_dir: str | Path, paths: list[str | Path], **index_args) -> tuple[object, Path | None]:
    """Re-embed every recorded file (plus `paths`) into a fresh index, then put it in place.
    Returns (IndexSummary, the folder the old files were moved to).

    The new index is built beside the old one (index_dir/.rebuild/), so searches keep answering
    from the old index until the new one is complete; then the old files move to previous-<time>/
    (damaged-<time>/ when SQLite's quick_check fails on them) and the new ones take their place.
    Nothing is deleted: a rebuild stopped or failed (a full disk) leaves the old index as it was,
    and the next --rebuild resumes the new one."""
    from .indexer import index_paths
    from .store import take_lock

    index_dir = Path(index_dir).expanduser()
    lock = take_lock(index_dir)  # no other writer while the rebuild runs and the files move
    try:
        db = index_dir / DB
        recorded, _ = recorded_files(index_dir)
        if index_args.get("passages") is None:  # re-cut the way the old index was cut
            from .passages import PassageConfig, segmentation_from_json

            cut = recorded_segmentation(index_dir)
            try:
                index_args["passages"] = segmentation_from_json(cut) if cut else (PassageConfig() if recorded else None)
            except ValueError:  # the damage reached the setting itself: the old default
                index_args["passages"] = PassageConfig()
        if index_args.get("ann") is None and recorded_meta(index_dir, "ann"):
            index_args["ann"] = recorded_meta(index_dir, "ann")  # a chosen ANN engine survives the rebuild
        if index_args.get("reader") is None and recorded_meta(index_dir, "reader"):
            index_args["reader"] = recorded_meta(index_dir, "reader")  # and so does the reader
        if index_args.get("transcribe") is None and recorded_meta(index_dir, "transcribe") == "0":
            index_args["transcribe"] = False  # an index built without transcripts is rebuilt without them
        targets = list(dict.fromkeys([*recorded, *map(str, paths)]))
        if not targets:
            if db.is_file() and db.stat().st_size:
                raise UsageError(f"{db}: no file list could be read from it, and no PATHS were given; nothing was changed. "
                                 f"Give the folders to index: `clasp index --rebuild PATH... --index {index_dir}`")
            raise UsageError(f"{index_dir}: the index records no files and no PATHS were given; nothing to rebuild from")
        summary = index_paths(targets, index_dir / STAGING, **index_args)
        if summary.interrupted:
            return summary, None
        aside = set_aside(index_dir, "previous" if healthy(db) else "damaged")
        staging = index_dir / STAGING
        for name in index_file_names(staging):
            os.replace(staging / name, index_dir / name)
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        os.close(lock)
    return summary, aside
