"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

IndexOption = typer.Option(
    None, "--index", "-i", help="Index folder (default: $CLASP_INDEX, else ~/.local/share/clasp/index).",
    file_okay=False,
)


def index_dir(value: Optional[Path]) -> Path:
    from ..paths import default_index

    return value if value is not None else default_index()


def hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
