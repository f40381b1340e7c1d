"""The `clasp` command line: a thin Typer layer over clasp_cli.api.

Each command lives in its own module. Heavy libraries are imported inside the commands so
`clasp --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer
from typer.core import TyperGroup, TyperOption

# typer >= 0.26 carries its own copy of click; BadParameter's bases name the right classes either way.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
ClickAbort = typer.Abort

# typer >= 0.29 writes the type of every option into --help, "<bool>" beside each flag too;
# a flag takes no value, so it shows none (older typer showed nothing for flags).
if hasattr(TyperOption, "display_type_rich"):
    _option_type = TyperOption.display_type_rich
    TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else _option_type(self, ctx)

from . import benchmark, dataset, export, index, models, search, serve, speakers, train
from ..display import shown
from .common import err


class OneLineErrors(TyperGroup):
    """Usage mistakes (bad flag, missing argument, bad value) as one red line on stderr, exit 2.

    Typer draws such errors as multi-line boxes; the README promises one line, like every other error.
    """

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if args:
            args = (optional_values(list(args[0]) if args[0] is not None else sys.argv[1:]), *args[1:])
        else:
            kwargs["args"] = optional_values(list(kwargs["args"]) if kwargs.get("args") is not None else sys.argv[1:])
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as e:
            if not standalone_mode:
                raise
            if not e.format_message():  # a group run bare: its help was printed, that is the message
                sys.exit(e.exit_code)
            hint = f" (see `{e.ctx.command_path} --help`)" if getattr(e, "ctx", None) is not None else ""
            err.print(f"[bold red]error:[/] {shown(e.format_message(), keep_newlines=True)}{shown(hint)}", markup=True,
                      highlight=False, soft_wrap=True)
            sys.exit(e.exit_code)
        except ClickAbort:
            if not standalone_mode:
                raise
            err.print("[yellow]interrupted[/]")
            sys.exit(130)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


def optional_values(argv: list[str]) -> list[str]:
    """`clasp search --rerank` with no number means the model's default N.

    Click has no option whose value may be left out, so a bare `--rerank` (last, or followed by
    anything but a whole number, such as the query) gets the default written in after it.
    """
    if "search" not in argv[:1] or "--rerank" not in argv:
        return argv
    from .search import RERANK_DEFAULT

    out = []
    for i, a in enumerate(argv):
        out.append(a)
        if a == "--rerank" and "--" not in argv[:i] and not (i + 1 < len(argv) and argv[i + 1].isdigit()):
            out.append(RERANK_DEFAULT)
    return out


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"clasp {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="clasp",
    cls=OneLineErrors,
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


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    pass


for module in (index, search, export, serve, benchmark, train, models):  # index also registers `info`
    module.register(app)
app.add_typer(dataset.app, name="dataset")
app.add_typer(speakers.app, name="speakers")


def main() -> None:
    from ..display import fit_streams_to_terminal

    fit_streams_to_terminal()
    app()
