"""`clasp benchmark`."""

from __future__ import annotations

import typer

from .common import not_yet


def register(app: typer.Typer) -> None:
    @app.command("benchmark")
    def benchmark() -> None:
        """Not built yet (issue #6)."""
        not_yet("benchmark", 6)
