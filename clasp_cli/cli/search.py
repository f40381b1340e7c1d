"""`clasp search`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from .common import DEVICE_HELP, err, friendly_errors, out
from .common_options import IndexOption, index_dir


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
        from ..devices import check_device

        check_device(device)
        with Searcher(index_dir(index), device=device) as searcher:
            resp = search_json(searcher, query, audio=audio, top_k=top_k, min_score=min_score, path_glob=path)
        if as_json:
            out.print(json.dumps(resp, ensure_ascii=False), soft_wrap=True)
        elif resp["results"]:
            out.print(results_table(resp, out.width))
        if not resp["results"]:
            # Like grep: exit 1 when nothing matched, in table and JSON mode alike (README, "Exit codes").
            if not as_json:
                err.print("no results")
            raise typer.Exit(NO_RESULTS)


NO_RESULTS = 1


def clock(seconds: float) -> str:
    """m:ss.s, or h:mm:ss.s from an hour on: a tenth of a second is what a listener can seek to."""
    tenths = int(round(seconds * 10))
    s, t = divmod(tenths, 10)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}.{t}" if h else f"{m}:{sec:02d}.{t}"


def shorten_left(path: str, width: int) -> str:
    """Keep the end of a path (the file name matters most), cutting whole folders from the left."""
    if len(path) <= width:
        return path
    parts = path.split("/")
    for i in range(1, len(parts)):
        tail = "…/" + "/".join(parts[i:])
        if len(tail) <= width:
            return tail
    return "…" + path[-(width - 1):] if width > 1 else path[-width:]


def results_table(resp: dict, width: int) -> Table:
    """The --json response as a table no wider than `width` (at most 80), paths shortened from the left."""
    width = min(width, 80)
    rows = [(str(r["rank"]), f"{r['score']:.3f}", r["path"], f"{clock(r['start'])}-{clock(r['end'])}") for r in resp["results"]]
    fixed = [max(len(h), *(len(row[i]) for row in rows)) for i, h in ((0, "#"), (1, "score"), (3, "time"))]
    # Rich's default box: a border and one space of padding either side of every column.
    file_width = max(12, width - sum(fixed) - 4 * 3 - 1)
    t = Table(title=Text(f"“{resp['query']}”", overflow="ellipsis", no_wrap=True), width=None)
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("score", justify="right", no_wrap=True)
    t.add_column("file", no_wrap=True, max_width=file_width)
    t.add_column("time", no_wrap=True)
    for rank, score, path, span in rows:
        t.add_row(rank, score, Text(shorten_left(path, file_width)), span)
    return t
