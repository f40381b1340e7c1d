"""`clasp search`."""

from __future__ import annotations

import typer

from .common import not_yet


def register(app: typer.Typer) -> None:
    @app.command("search")
    def search() -> None:
        """Not built yet (issue #5)."""
        not_yet("search", 5)
