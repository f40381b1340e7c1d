"""`clasp dataset synth` and `clasp dataset import`."""

from __future__ import annotations

import typer

from .common import not_yet

app = typer.Typer(help="Build synthetic corpora and import real ones into manifests.", no_args_is_help=True)


@app.command("synth")
def synth() -> None:
    """Not built yet (issue #3)."""
    not_yet("dataset synth", 3)


@app.command("import")
def import_() -> None:
    """Not built yet (issue #3)."""
    not_yet("dataset import", 3)
