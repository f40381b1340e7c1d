"""`clasp search`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from ..display import printable
from .common import DEVICE_HELP, err, friendly_errors, out
from .common_options import IndexOption, index_dir


# What a bare `--rerank` becomes on the way in (clasp_cli.cli.main): the model's own N.
RERANK_DEFAULT = "default"


def register(app: typer.Typer) -> None:
    @app.command("search")
    @friendly_errors
    def search(
        query: Optional[str] = typer.Argument(None, help="What was said, in any language the model knows."),
        audio: Optional[Path] = typer.Option(None, "--audio", "-a", help="Search with an example recording instead of text."),
        index: Optional[Path] = IndexOption,
        top_k: int = typer.Option(10, "--top-k", "-k", min=1, help="How many passages to show."),
        min_score: Optional[str] = typer.Option(None, "--min-score", metavar="SCORE|auto", help="Hide results below this "
                                                "score (a text query's score is the probability that the passage says it, 0-1); "
                                                "auto: the calibrated threshold of the mode in use, which keeps nonsense queries "
                                                "out but can also hide paraphrased matches."),
        path: Optional[str] = typer.Option(None, "--path", help="Only files whose path matches this glob (or contains this text)."),
        language: Optional[str] = typer.Option(None, "--language", help="Only what was read in this language (a Whisper "
                                               "code such as en, de, cs; `clasp info` lists the index's)."),
        speaker: Optional[str] = typer.Option(None, "--speaker", metavar="NAME|ID", help="Only what this speaker said "
                                              "(`clasp speakers` lists them)."),
        voice: Optional[Path] = typer.Option(None, "--voice", help="A recording of one voice: where it speaks, best first; "
                                             "with a text query, what it said about that."),
        mode: Optional[str] = typer.Option(None, "--mode", help="vector: the CLASP speech vector alone; keyword: only "
                                           'passages whose transcripts hold the words, "quoted phrases" exactly; hybrid: the '
                                           "CLASP vector, the transcript's meaning and its words in one fused score. "
                                           "Default: hybrid on an index with transcripts, else vector."),
        rerank: Optional[str] = typer.Option(None, "--rerank", metavar="[N]",
                                             help="First transcribe the best N windows that have no transcript yet, so what was "
                                             "said counts in their score; each window is transcribed once and kept in the index. "
                                             "Default N: the model's (clasp-base 10)."),
        device: str = typer.Option("auto", help=DEVICE_HELP),
        as_json: bool = typer.Option(False, "--json", help='Print {"query", "results": [{"rank","score","path","start","end",'
                                     '"passage_start","passage_end"}]}, plus "text" and "language" where a window was '
                                     'transcribed, and "speaker": {"id","name"} where its speaker is known.'),
        fmt: Optional[str] = typer.Option(None, "--format", "-f", metavar="FORMAT",
                                          help="table (default), json (as --json), jsonl (one result per line, with "
                                          '"query"), or tsv: path, start, end, score, text, speaker, tab-separated, no header.'),
    ) -> None:
        """Find the passages where something was said.

        Examples:

          clasp search "the budget for next year"

          clasp search "das Budget für nächstes Jahr" --top-k 5

          clasp search "rain tomorrow" --path "*/radio/*" --json

          clasp search "hur föds stjärnor"                      # Swedish: about 100 languages (e5)

          clasp search "rozpočet na příští rok" --language cs   # only what was read as Czech

          clasp search --audio question.wav

          clasp search "the budget" --speaker "Anna Novak"          # only what Anna said

          clasp search --voice anna.wav                             # where this voice speaks

          clasp search "when does the train leave" --rerank      # read the best windows (the model's N)

          clasp search '"Berlin Hauptbahnhof"' --mode keyword    # words in the transcripts

          clasp search "rain at the weekend" --mode vector --min-score auto

          clasp search "the budget" -k1 -f tsv | { IFS=$'\\t' read -r f s e _; mpv --start="$s" --end="$e" "$f"; }
        """
        from ..api import Searcher, search_json
        from ..devices import check_device
        from ..errors import UsageError

        fmt = output_format(fmt, as_json)
        if query is None and audio is None and voice is None:  # before the index is opened: the missing query is the mistake
            raise UsageError("give a text query, or a recording with --audio FILE")
        check_device(device)
        with Searcher(index_dir(index), device=device) as searcher:
            if searcher.e5_notice:
                err.print(Text(f"note: {searcher.e5_notice}", style="yellow"), soft_wrap=True)
            resp = search_json(searcher, query, audio=audio, top_k=top_k, min_score=_min_score(min_score), path_glob=path,
                               mode=mode, rerank=_rerank(rerank), language=language, speaker=speaker, voice=voice)
        if fmt == "json":
            out.print(json.dumps(resp, ensure_ascii=False), soft_wrap=True, markup=False)
        elif fmt == "table" and resp["results"]:
            out.print(results_table(resp, out.width))
        elif fmt != "table":
            for line in pipeline_lines(resp, fmt):
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
        if not resp["results"]:
            # Like grep: exit 1 when nothing matched, in every format (README, "Exit codes").
            if fmt == "table":
                err.print("no results")
            raise typer.Exit(NO_RESULTS)


NO_RESULTS = 1


FORMATS = ("table", "json", "jsonl", "tsv")


def output_format(fmt: str | None, as_json: bool) -> str:
    """--format's value, with --json as its old spelling of json."""
    from ..errors import UsageError

    if fmt is None:
        return "json" if as_json else "table"
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if as_json and fmt != "json":
        raise UsageError(f"--json and --format {fmt} ask for two outputs; give one")
    return fmt


def pipeline_lines(resp: dict, fmt: str) -> list[str]:
    """jsonl: each result as one JSON object with the query. tsv: path, start, end, score, text,
    speaker (its name, else its id; empty where unknown), one line a result, so `cut`, `fzf` and
    a player can take it; a tab or newline inside a path or transcript is written as an escape,
    never as a field or line break."""
    if fmt == "jsonl":
        return [json.dumps({"query": resp["query"], **r}, ensure_ascii=False) for r in resp["results"]]
    return ["\t".join((printable(r["path"]), f"{r['start']:.2f}", f"{r['end']:.2f}", f"{r['score']:.4f}",
                       printable(" ".join(r.get("text", "").split())), printable(speaker_label(r.get("speaker")))))
            for r in resp["results"]]


def speaker_label(speaker: dict | None) -> str:
    """A result's speaker as people read it (speakers.index.speaker_label); "" where unknown."""
    from ..speakers.index import speaker_label as label

    return label(speaker["id"], speaker["name"]) if speaker else ""


def _rerank(value: str | None) -> int | bool:
    """--rerank's value: absent 0, bare (written in as "default" by the CLI's argv fix-up) True."""
    from ..errors import UsageError

    if value is None:
        return 0
    if value == RERANK_DEFAULT:
        return True
    if not value.isdigit():
        raise UsageError(f"--rerank takes a whole number of windows (got {value!r})")
    return int(value)


def _min_score(value: str | None) -> float | str | None:
    from ..errors import UsageError
    from ..search import AUTO_MIN_SCORE, score

    if value is None:
        return None
    try:
        return score(value)
    except ValueError:
        raise UsageError(f"--min-score must be a number or {AUTO_MIN_SCORE!r} (got {value!r})") from None


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
    t.add_column("file", max_width=file_width)  # paths fit it; a snippet wraps onto a second line
    t.add_column("time", no_wrap=True)
    words = query_words(resp["query"])
    for (rank, score, path, span), r in zip(rows, resp["results"]):
        t.add_row(rank, score, Text(shorten_left(printable(path), file_width)), span)
        who = printable(speaker_label(r.get("speaker")))
        if r.get("text"):
            said = snippet(printable(r["text"]), words, file_width * 2 - (len(who) + 2 if who else 0))
            t.add_row("", "", Text.assemble((who + ": ", "cyan"), said) if who else said, "")
        elif who:
            t.add_row("", "", Text(who, style="cyan"), "")
    return t


def query_words(query: str) -> list[str]:
    """The words of a query worth highlighting (not "a", "of", ...: a word needs 3 letters)."""
    return sorted({w.lower() for w in re.findall(r"\w+", query) if len(w) >= 3}, key=len, reverse=True)


def snippet(text: str, words: list[str], width: int) -> Text:
    """What was said, cut to `width` around the first query word, query words in bold yellow."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE) if words else None
    first = pattern.search(text) if pattern else None
    if len(text) > width:
        start = max(0, min((first.start() if first else 0) - width // 3, len(text) - width))
        text = ("…" if start else "") + text[start : start + width - 1] + ("…" if start + width - 1 < len(text) else "")
    t = Text(text, style="italic")
    if pattern:
        for m in pattern.finditer(text):
            t.stylize("bold yellow", m.start(), m.end())
    return t
