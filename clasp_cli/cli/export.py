"""`clasp export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from rich.text import Text

from ..display import printable
from .common import err, friendly_errors, out
from .common_options import IndexOption, index_dir


# Some recordings' subtitle files could not be written (each named on stderr); the others were.
SOME_SKIPPED = 9


def register(app: typer.Typer) -> None:
    @app.command("export")
    @friendly_errors
    def export(
        out_dir: Path = typer.Option(Path("subtitles"), "--out", "-o", help="Folder for the subtitle files, or - for "
                                     "stdout (one recording: narrow it with --path)."),
        fmt: str = typer.Option("srt", "--format", "-f", help="srt or vtt."),
        path: Optional[str] = typer.Option(None, "--path", help="Only recordings whose path matches this glob (or contains this text)."),
        index: Optional[Path] = IndexOption,
        as_json: bool = typer.Option(False, "--json", help='Print [{"recording", "written", "cues"}] instead of a summary.'),
    ) -> None:
        """Write what was said in each transcribed recording as subtitles (SRT or WebVTT).

        One file per recording, its path below the recordings' common folder kept, the
        extension added: talks/monday.mp3 becomes subtitles/talks/monday.mp3.srt.

        Examples:

          clasp export --out subtitles

          clasp export --format vtt --path "*/meetings/*" --out vtt

          clasp export --path monday.mp3 --out - | less

        Exit code 9: some recordings could not be written (each named on stderr); the rest were.
        """
        from ..export import export as run

        to_stdout = str(out_dir) == "-"
        done = run(index_dir(index), fmt.lower(), out_dir=None if to_stdout else out_dir, path_glob=path,
                   stream=sys.stdout if to_stdout else None)
        if to_stdout:
            return
        written = [d for d in done if d.skipped is None]
        skipped = [d for d in done if d.skipped is not None]
        for d in skipped:
            err.print(Text.assemble(("skipped ", "yellow"), printable(d.skipped)), soft_wrap=True)
        if as_json:
            out.print(json.dumps([{"recording": d.recording, "written": str(d.written) if d.written else None, "cues": d.cues,
                                   **({"skipped": d.skipped} if d.skipped else {})} for d in done],
                                 ensure_ascii=False), soft_wrap=True, markup=False)
        else:
            err.print(f"wrote {len(written)} subtitle file{'s' * (len(written) != 1)} "
                      f"({sum(d.cues for d in written)} cues) under {out_dir}"
                      + (f"; skipped {len(skipped)} (named above)" if skipped else ""), markup=False, highlight=False)
        if skipped:
            raise typer.Exit(SOME_SKIPPED)
