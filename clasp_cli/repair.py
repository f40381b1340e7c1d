"""`clasp index --repair` (rebuild the derived graph) and `--rebuild` (re-embed from the recorded files).

Repair trusts the database and rewrites what is derived from it. Rebuild trusts nothing but
the list of files the database still yields: it moves the damaged index aside and indexes
those files (and any paths given) into a fresh one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .errors import UsageError
from .graph import PASSAGE_GRAPH, TRANSCRIPT_GRAPH, graph_files
from .store import DB, Store


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
        remaining = store.check()
    return RepairReport(problems, passages, remaining)


def recorded_files(index_dir: str | Path) -> tuple[list[str], str | None]:
    """The file paths (as the filesystem spells them) and model a possibly damaged index still yields."""
    db_path = Path(index_dir) / DB
    if not db_path.is_file():
        return [], None
    paths: dict[str, None] = {}
    try:
        db = sqlite3.connect(f"file:{quote(str(db_path))}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
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
    db_path = Path(index_dir) / DB
    if not db_path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{quote(str(db_path))}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        return _meta(db, "segmentation")
    finally:
        db.close()


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def set_aside(index_dir: str | Path) -> Path | None:
    """Move the database and graph into index_dir/damaged-<time>/ (kept for inspection, not deleted)."""
    index_dir = Path(index_dir)
    derived = [*graph_files(PASSAGE_GRAPH), *graph_files(TRANSCRIPT_GRAPH)]
    names = [n for n in (DB, f"{DB}-wal", f"{DB}-shm", *derived) if (index_dir / n).exists()]
    if not names:
        return None
    dest = index_dir / time.strftime("damaged-%Y%m%d-%H%M%S")
    dest.mkdir()
    for n in names:
        os.replace(index_dir / n, dest / n)
    return dest


def rebuild_index(index_dir: str | Path, paths: list[str | Path], **index_args) -> tuple[object, Path | None]:
    """Re-embed every recorded file (plus `paths`) into a fresh index. Returns (IndexSummary, aside folder)."""
    from .indexer import index_paths
    from .store import take_lock

    index_dir = Path(index_dir).expanduser()
    lock = take_lock(index_dir)  # nobody may write while the old files move
    try:
        recorded, _ = recorded_files(index_dir)
        if index_args.get("passages") is None:  # re-cut the way the old index was cut
            from .passages import PassageConfig, segmentation_from_json

            cut = recorded_segmentation(index_dir)
            try:
                index_args["passages"] = segmentation_from_json(cut) if cut else (PassageConfig() if recorded else None)
            except ValueError:  # the damage reached the setting itself: the old default
                index_args["passages"] = PassageConfig()
        targets = list(dict.fromkeys([*recorded, *map(str, paths)]))
        if not targets:
            raise UsageError(f"{index_dir}: the index records no files and no PATHS were given; nothing to rebuild from")
        aside = set_aside(index_dir)
    finally:
        os.close(lock)
    return index_paths(targets, index_dir, **index_args), aside
