"""The `clasp` command line: a thin Typer layer over clasp_cli.api.

Each command lives in its own module. Heavy libraries are imported inside the commands so
`clasp --help` stays fast.
"""

from __future__ import annotations

import typer

from . import benchmark, dataset, index, models, search, serve, train

app = typer.Typer(
    name="clasp",
    help="Search audio archives by what was said, in any supported language.\n\n"
    "Examples:\n\n"
    "  clasp index ~/recordings\n\n"
    "  clasp search \"the budget for next year\"\n\n"
    "  clasp search \"das Budget für nächstes Jahr\" --json\n\n"
    "  clasp serve          # a search page at http://127.0.0.1:8765/",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

for module in (index, search, serve, benchmark, train, models):  # index also registers `info`
    module.register(app)
app.add_typer(dataset.app, name="dataset")


def main() -> None:
    app()
