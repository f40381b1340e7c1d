"""`clasp models`."""

from __future__ import annotations

import typer

from .common import not_yet


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models() -> None:
        """List models."""
        not_yet("models", 2)
