"""Subtitles from an index: what was said in each recording, as SRT or WebVTT, for a player or an editor.

Only windows with a transcript become cues, so an index built with `--no-transcribe` has nothing
to export until `clasp index --transcribe` fills the transcripts in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .fsutil import atomic_write_text
from .store import Store, path_pattern

FORMATS = ("srt", "vtt")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    speaker: str | None = None  # who says it (a name, else "Speaker N"), where known


@dataclass(frozen=True)
class Exported:
    recording: str  # the path as the index shows it
    written: Path | None  # None when written to a stream, or when skipped
    cues: int
    skipped: str | None = None  # why its file could not be written (the others still were)


def cues(spoken: list[tuple[float, float, str]], speakers: dict[tuple[float, float], str] | None = None) -> list[Cue]:
    """One cue per transcribed window. Windows cut from unbroken speech overlap by a second or
    so; a cue ends where the next begins, so a player shows one line at a time. speakers: the
    label of each window's speaker, by its (start, end)."""
    rows = [(s, e, " ".join(t.split())) for s, e, t in spoken if t.strip()]
    out = []
    for i, (s, e, t) in enumerate(rows):
        who = (speakers or {}).get((s, e))
        if i + 1 < len(rows):
            e = max(s + 0.001, min(e, rows[i + 1][0]))
        out.append(Cue(s, e, t, who))
    return out


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")


def timestamp(seconds: float, fmt: str) -> str:
    """00:01:02,345 (SRT) or 00:01:02.345 (WebVTT)."""
    ms = int(round(max(seconds, 0.0) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    sep = "," if fmt == "srt" else "."
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def subtitles(items: list[Cue], fmt: str) -> str:
    """The text of one subtitle file."""
    check_format(fmt)
    blocks = []
    for i, c in enumerate(items, 1):
        # A blank line ends a cue in both formats, and "-->" starts a timing line in WebVTT.
        text = c.text.replace("-->", "->")
        if c.speaker:  # WebVTT's voice span; SRT has none, so the name leads the line
            who = " ".join(c.speaker.replace("-->", "->").split())
            text = f"<v {who.replace('>', '')}>{text}" if fmt == "vtt" else f"[{who}] {text}"
        timing = f"{timestamp(c.start, fmt)} --> {timestamp(c.end, fmt)}"
        blocks.append(f"{i}\n{timing}\n{text}\n" if fmt == "srt" else f"{timing}\n{text}\n")
    head = "WEBVTT\n\n" if fmt == "vtt" else ""
    return head + "\n".join(blocks)


def target_name(recording: str, root: str, out_dir: Path, fmt: str) -> Path:
    """Where a recording's subtitles go: its path below the recordings' common folder, under
    out_dir, with the subtitle extension added (talk.mp3 -> talk.mp3.srt, so talk.wav and
    talk.mp3 never share a file)."""
    rel = os.path.relpath(recording, root) if root else os.path.basename(recording)
    parts = [p for p in Path(rel).parts if p not in ("..", "/", "")]
    return out_dir.joinpath(*parts).with_name(parts[-1] + "." + fmt)


def export(index_dir: str | Path, fmt: str, out_dir: Path | None = None, path_glob: str | None = None,
           stream=None) -> list[Exported]:
    """Write one subtitle file per transcribed recording under out_dir, or, with `stream`, the one
    recording `path_glob` selects to it. Returns what was exported."""
    check_format(fmt)  # before the index is opened
    path_glob = path_pattern(path_glob)
    with Store.open(index_dir) as store:
        transcribed = store.transcribed()
        files = [f for f in store.files(path_glob) if f.status == "ok"]
        from .speakers.index import window_speakers

        said = {f.path: cues(store.spoken(f.id), window_speakers(store, f.id)) for f in files}
    said = {p: c for p, c in said.items() if c}
    if not said:
        if not transcribed and not path_glob:
            raise UsageError(f"{index_dir} has no transcripts to export: fill them in with `clasp index --transcribe` first")
        raise UsageError("no transcribed recording matches" + (f" --path {path_glob!r}" if path_glob else ""))
    if stream is not None:
        if len(said) > 1:
            raise UsageError(f"{len(said)} recordings match; writing to stdout takes one (narrow it with --path)")
        (path, items), = said.items()
        stream.write(subtitles(items, fmt))
        return [Exported(path, None, len(items))]
    _check_out_dir(out_dir)
    root = os.path.commonpath([os.path.dirname(p) for p in said]) if len(said) > 1 else os.path.dirname(next(iter(said)))
    done = []
    for path, items in sorted(said.items()):
        target = target_name(path, root, out_dir, fmt)
        try:
            atomic_write_text(target, subtitles(items, fmt))  # a reader never sees half a file
        except OSError as e:
            # Say why, go on: one name that clashes with a folder must not cost every file after it.
            why = _in_the_way(target, out_dir) or e.strerror or str(e)
            done.append(Exported(path, None, len(items), f"{target}: cannot write the subtitles ({why})"))
            continue
        done.append(Exported(path, target, len(items)))
    return done


def _in_the_way(target: Path, out_dir: Path) -> str | None:
    """What blocks writing `target`: a folder where the file goes, or a file where a folder must be."""
    if target.is_dir():
        return "a folder of that name is in the way"
    for parent in target.parents:
        if parent == out_dir:
            break
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, where its folder would go"
    return None


def _check_out_dir(out_dir: Path) -> None:
    """`--out` must be a folder this process can create or write into: anything else is a usage error."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out must be a folder: {out_dir} is a file")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{out_dir}: cannot write the subtitles there ({e.strerror or e})") from None
