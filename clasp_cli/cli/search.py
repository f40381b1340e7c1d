"""`clasp search`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import DEVICE_HELP, err, friendly_errors, out
from .common_options import IndexOption, hms, index_dir


def register(app: typer.Typer) -> None:
    @app.command("search")
    @friendly_errors
    def search(
        query: Optional[str] = typer.Argument(None, help="What was said, in any language the model knows."),
        audio: Optional[Path] = typer.Option(None, "--audio", "-a", help="Search with an example recording instead of text."),
        index: Optional[Path] = IndexOption,
        top_k: int = typer.Option(10, "--top-k", "-k", min=1, help="How many passages to show."),
        min_score: Optional[float] = typer.Option(None, help="Hide results below this cosine similarity."),
        path: Optional[str] = typer.Option(None, "--path", help="Only files whose path matches this glob (or contains this text)."),
        device: str = typer.Option("auto", help=DEVICE_HELP),
        as_json: bool = typer.Option(False, "--json", help='Print {"query", "results": [{"rank","score","path","start","end"}]}.'),
    ) -> None:
        """Find the passages where something was said.

        Examples:

          clasp search "the budget for next year"

          clasp search "das Budget für nächstes Jahr" --top-k 5

          clasp search "rain tomorrow" --path "*/radio/*" --json

          clasp search --audio question.wav
        """
        from ..api import Searcher, search_json

        with Searcher(index_dir(index), device=device) as searcher:
            resp = search_json(searcher, query, audio=audio, top_k=top_k, min_score=min_score, path_glob=path)
        if as_json:
            out.print(json.dumps(resp, ensure_ascii=False), soft_wrap=True)
            return
        if not resp["results"]:
            err.print("no results")
            raise typer.Exit(1)
        t = Table(title=f"“{resp['query']}”")
        t.add_column("#", justify="right")
        t.add_column("score", justify="right")
        t.add_column("file", overflow="fold")
        t.add_column("time", no_wrap=True)
        for r in resp["results"]:
            t.add_row(str(r["rank"]), f"{r['score']:.3f}", r["path"], f"{hms(r['start'])}-{hms(r['end'])}")
        out.print(t)
