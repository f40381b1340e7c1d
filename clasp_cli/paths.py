"""Where clasp keeps its files. Environment variables move each place (tests point them at temp dirs)."""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """Per-user data (the default index lives here). CLASP_HOME overrides."""
    env = os.environ.get("CLASP_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "clasp"


def cache_dir() -> Path:
    """Recomputable data: encoder feature caches. CLASP_CACHE overrides."""
    env = os.environ.get("CLASP_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "clasp"


def default_index() -> Path:
    """The index used when --index is not given: CLASP_INDEX, else <home>/index."""
    env = os.environ.get("CLASP_INDEX")
    return Path(env).expanduser() if env else home_dir() / "index"
