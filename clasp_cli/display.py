"""Text from outside (file names, transcripts, error reasons) made safe to show on a terminal.

A file name is data: one named `evil\\e[2Jred.wav` must not clear the screen, and one holding
`[red]` must not restyle rich's output. And a terminal whose encoding cannot hold a curly quote
or a box-drawing line gets the nearest ASCII instead of a UnicodeEncodeError.
"""

from __future__ import annotations

import codecs
import re
import sys
import unicodedata

from rich.markup import escape as _escape_markup

# C0 and C1 controls (ESC among them), DEL, and the bidirectional overrides that can make a
# name read backwards.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    o = ord(match.group(0))
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def printable(text: object, keep_newlines: bool = False) -> str:
    """`text` with every control character written as an escape (\\x1b), the way names that are
    not UTF-8 are shown; newlines are kept only when asked (multi-line messages)."""
    s = str(text)
    if keep_newlines:
        return "\n".join(_CONTROL.sub(_escape, line) for line in s.split("\n"))
    return _CONTROL.sub(_escape, s)


def shown(text: object, keep_newlines: bool = False) -> str:
    """`printable`, and escaped for rich markup too: for outside text inside a markup string."""
    return _escape_markup(printable(text, keep_newlines))


# Characters clasp prints whose nearest ASCII is not their decomposition.
_ASCII = {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2026": "...", "\u2014": "-", "\u2013": "-",
          "\u2502": "|", "\u2501": "-", "\u2500": "-", "\u2022": "*", "\u2192": "->", "\u00d7": "x", "\u2265": ">=",
          "\u2264": "<="}


def _degrade(e: UnicodeEncodeError) -> tuple[str, int]:
    out = []
    for c in e.object[e.start : e.end]:
        ascii_ = _ASCII.get(c) or unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
        out.append(ascii_ or "?")
    return "".join(out), e.end


codecs.register_error("clasp-degrade", _degrade)


def fit_streams_to_terminal() -> None:
    """Make stdout and stderr degrade to ASCII where their encoding (a Latin-1 locale, say)
    cannot hold a character, instead of raising. Streams that can hold them are left alone."""
    for stream in (sys.stdout, sys.stderr):
        enc = getattr(stream, "encoding", None)
        if not enc or not hasattr(stream, "reconfigure"):
            continue
        try:
            "\u201c\u201d\u2026\u2502\u2501".encode(enc)
        except UnicodeEncodeError:
            stream.reconfigure(errors="clasp-degrade")
        except LookupError:
            pass
