"""Shared CLI plumbing: the stderr console and turning ClaspError into one line + exit code."""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import typer
from rich.console import Console

from ..display import shown
from ..errors import ClaspError

F = TypeVar("F", bound=Callable)

# Results go to stdout; progress, warnings and errors to stderr, so `--json | jq` stays clean.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DEVICE_HELP = "Where models run: auto (CUDA when present), cpu or cuda."


def fail(message: str, code: int = 1) -> None:
    # The message may quote a file name or a decoder's words: never markup, never terminal control.
    err.print(f"[bold red]error:[/] {shown(message, keep_newlines=True)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def friendly_errors(fn: F) -> F:
    """Render user-caused errors as one red line with the error's exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ClaspError as e:
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130)

    return wrapper  # type: ignore[return-value]


def not_yet(command: str, issue: int) -> None:
    fail(f"`clasp {command}` is not built yet (tracked in issue #{issue}).", code=2)
