"""One recording, one name: which paths are only other ways to reach a file indexed under its own.

`indexer.scan` walks the roots and lists a file reached by several paths (a link beside its
target, a linked folder) once, under its own name. The watcher and pruning see single paths
instead of a whole walk; they ask here whether a path is such an alias.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


def own_name(path: str | Path, roots: Sequence[str | Path]) -> str | None:
    """The path a walk of `roots` indexes `path`'s recording under, when that is another path:
    its real file, named below the root that holds it. None when `path` is that name itself, its
    target lies outside every root (the link is then the only way in), is hidden from the walk
    (under a dot-folder) or cannot be resolved (a broken link is indexed, and fails, as itself)."""
    here = os.path.abspath(path)
    try:
        real = os.path.realpath(here, strict=True)
    except OSError:
        return None
    for root in roots:
        root = os.path.abspath(root)
        try:
            real_root = os.path.realpath(root, strict=True)
        except OSError:
            continue
        if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
            continue
        rel = os.path.relpath(real, real_root)
        if rel != "." and any(part.startswith(".") for part in Path(rel).parts):
            continue  # a walk never enters dot-folders: there the link is the way in
        name = root if rel == "." else os.path.join(root, rel)
        return None if name == here else name
    return None


def distinct(paths: Sequence[Path], roots: Sequence[str | Path]) -> list[Path]:
    """`paths` less the aliases of recordings indexed under their own names, and each recording
    reached twice among them (two links to one file outside the roots) kept once."""
    kept: dict[str, Path] = {}
    for p in paths:
        if own_name(p, roots) is not None:
            continue
        try:
            key = os.path.realpath(p, strict=True)
        except OSError:
            key = os.path.abspath(p)
        kept.setdefault(key, p)
    return list(kept.values())
