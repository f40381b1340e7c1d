"""A recording's name in the index: one string per distinct file name, and the bytes to open it by.

File names are bytes; SQLite and JSON want text. Bytes that are not UTF-8 are written as \\xNN
escapes, and a literal backslash is written twice, so the mapping is one to one: the file
literally named `caf\\xe9.wav` and the file whose name holds the byte E9 get different keys
(`caf\\\\xe9.wav` and `caf\\xe9.wav`). Where the key is not the name itself, the index keeps the
real bytes beside it (files.path_bytes) and opens the file by those.
"""

from __future__ import annotations

import os
from pathlib import Path


def display_path(path: str | Path | bytes) -> str:
    """The key a path is stored and shown under (see the module docstring)."""
    raw = path if isinstance(path, bytes) else os.fsencode(str(path))
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def raw_name(path: str | Path) -> bytes | None:
    """The filesystem's bytes for a path whose key is not the name itself, else None."""
    raw = os.fsencode(str(path))
    if b"\\" in raw:
        return raw
    try:
        raw.decode("utf-8")
        return None
    except UnicodeDecodeError:
        return raw


def rekey(db) -> None:
    """Migration 5: keys written before backslashes were doubled (names holding a backslash)."""
    rows = db.execute("SELECT id, path, path_bytes FROM files WHERE instr(path, char(92)) > 0").fetchall()
    # Two steps, so no row's new key meets another row's old one under the UNIQUE constraint.
    for file_id, _, _ in rows:
        db.execute("UPDATE files SET path = ? WHERE id = ?", (f"\0rekey-{file_id}", file_id))
    for file_id, path, raw in rows:
        name = bytes(raw) if raw else path.encode("utf-8")
        db.execute("UPDATE files SET path = ?, path_bytes = ? WHERE id = ?", (display_path(name), name, file_id))
