"""`clasp train`."""

from __future__ import annotations

import typer

from .common import not_yet


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train() -> None:
        """Not built yet (issue #4)."""
        not_yet("train", 4)
