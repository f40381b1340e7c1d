"""`clasp speakers`: who speaks in the index; name, merge and re-cluster them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ..display import shown
from .common import friendly_errors, out
from .common_options import IndexOption, hms, index_dir

app = typer.Typer(
    help="Who speaks in the index: list speakers, name them, merge them.\n\n"
    "Examples:\n\n"
    "  clasp speakers\n\n"
    "  clasp speakers name 3 \"Anna Novak\"\n\n"
    "  clasp speakers merge 3 7\n\n"
    "  clasp search \"the budget\" --speaker \"Anna Novak\"",
    no_args_is_help=False,
    invoke_without_command=True,
    rich_markup_mode="rich",
)


@app.callback()
@friendly_errors
def listing(
    ctx: typer.Context,
    index: Optional[Path] = IndexOption,
    as_json: bool = typer.Option(False, "--json", help='Print [{"id", "name", "seconds", "files", "sample"}].'),
) -> None:
    """List each speaker: id, name, seconds of speech, recordings, and a passage to listen to.

    Examples:

      clasp speakers

      clasp speakers --json | jq '.[] | select(.name == null)'
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = index
        return
    from ..speakers.index import has_speakers, list_speakers
    from ..store import Store

    with Store.open(index_dir(index)) as store:
        found = list_speakers(store)
        empty_reason = None if has_speakers(store) else "this index predates speakers: run `clasp index` on it once"
    if as_json:
        out.print_json(json.dumps([s.to_json() for s in found]))
        return
    if not found:
        out.print(empty_reason or "no speakers found yet (an index made with --no-speakers finds none; "
                  "`clasp index PATH` without it finds them)")
        return
    t = Table(title="speakers")
    t.add_column("id", justify="right", no_wrap=True)
    t.add_column("name", no_wrap=True)
    t.add_column("speech", justify="right", no_wrap=True)
    t.add_column("files", justify="right")
    t.add_column("sample")
    for s in found:
        sample = ""
        if s.sample:
            path, start, end, text = s.sample
            sample = f"{shown(Path(path).name)} {hms(start)}-{hms(end)}" + (f"  {shown(text)}" if text else "")
        t.add_row(str(s.id), shown(s.name) if s.name else "[dim]-[/]", hms(s.seconds), str(s.files), sample)
    out.print(t)


def _writer(ctx: typer.Context, index: Optional[Path]):
    from ..store import Store

    return Store.open(index_dir(index if index is not None else ctx.obj), write=True)


@app.command("name")
@friendly_errors
def name(
    ctx: typer.Context,
    speaker: str = typer.Argument(..., help="The speaker's id (from `clasp speakers`) or its current name."),
    new_name: str = typer.Argument(..., metavar="NAME", help="The name to give it."),
    index: Optional[Path] = IndexOption,
) -> None:
    """Name a speaker. Its recordings stay with it when speakers are re-clustered, and
    recordings indexed later join it when the voice matches.

    Examples:

      clasp speakers name 3 "Anna Novak"

      clasp speakers name "Anna Novak" "Anna Nováková"
    """
    from ..speakers.index import name_speaker

    with _writer(ctx, index) as store:
        sid = name_speaker(store, speaker, new_name)
    out.print(f"speaker {sid} is now {shown(new_name.strip())}")


@app.command("merge")
@friendly_errors
def merge(
    ctx: typer.Context,
    speakers: List[str] = typer.Argument(..., help="Two or more speakers (ids or names); the first keeps its id."),
    index: Optional[Path] = IndexOption,
) -> None:
    """Make several speakers one (the same person found twice).

    Examples:

      clasp speakers merge 3 7

      clasp speakers merge "Anna Novak" 7 12
    """
    from ..errors import UsageError
    from ..speakers.index import merge_speakers

    if len(speakers) < 2:
        raise UsageError("give at least two speakers to merge")
    with _writer(ctx, index) as store:
        sid = merge_speakers(store, speakers[0], speakers[1:])
    out.print(f"merged into speaker {sid}")


@app.command("recluster")
@friendly_errors
def recluster(
    ctx: typer.Context,
    index: Optional[Path] = IndexOption,
    as_json: bool = typer.Option(False, "--json", help='Print {"before", "after"}.'),
) -> None:
    """Group every voice of the index into speakers again. Named and merged speakers keep
    their recordings; the others keep their ids where most of their speech stays together.

    Examples:

      clasp speakers recluster
    """
    from ..speakers.index import recluster as run

    with _writer(ctx, index) as store:
        got = run(store)
    if as_json:
        out.print_json(json.dumps(got))
    else:
        out.print(f"{got['before']} speakers before, {got['after']} now")
