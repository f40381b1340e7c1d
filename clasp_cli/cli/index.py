"""`clasp index`."""

from __future__ import annotations

import typer

from .common import not_yet


def register(app: typer.Typer) -> None:
    @app.command("index")
    def index() -> None:
        """Not built yet (issue #5)."""
        not_yet("index", 5)
