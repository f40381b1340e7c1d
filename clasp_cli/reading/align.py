"""Timed segments back onto windows: each window gets the words said inside it.

Whisper times segments (a phrase or a sentence), not words. A word's time is placed within its
segment in proportion to the characters before it, and a window takes every word whose time
falls inside it (a word in a pause, the nearest window). Windows cut from unbroken speech overlap by a second or so, and a word in the
overlap belongs to both, as it does to both stretches of audio. Each window reads from its own
chunk only, so no word comes to it twice.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

from .chunks import Chunk
from .reader import Segment

# Written without spaces between words: each character counts as a word.
UNSPACED = frozenset({"zh", "ja", "th", "lo", "my", "km", "bo", "yue"})


def timed_words(segments: Sequence[Segment], offset: float, unspaced: bool,
                speech: Sequence[tuple[float, float]] | None = None) -> list[tuple[float, str]]:
    """(time, word) for every word of the segments, times in the recording's seconds.

    speech: where the voice activity detector heard speech (sorted, in the recording's seconds).
    Whisper's segment ends often run on into the pause that follows, so words are spread over
    the speech inside a segment, not over its pauses; a segment that holds no speech is spread
    over its own span."""
    out = []
    for s in segments:
        words = [c for c in s.text if not c.isspace()] if unspaced else s.text.split()
        if not words:
            continue
        start, end = offset + s.start, offset + s.end
        spoken = _inside(speech, start, end) if speech else []
        if sum(b - a for a, b in spoken) < 0.05:
            spoken = [(start, end)]
        sizes = [len(w) for w in words]
        total, before = float(sum(sizes)), 0.0
        for w, n in zip(words, sizes):
            out.append((_at(spoken, (before + n / 2) / total), w))
            before += n
    return out


def speech_of(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of windows (start, end), as sorted disjoint intervals."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _inside(speech: Sequence[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    k = max(0, bisect_right(speech, (start, float("inf"))) - 1)
    out = []
    for a, b in speech[k:]:
        if a >= end:
            break
        if b > start:
            out.append((max(a, start), min(b, end)))
    return out


def _at(spoken: Sequence[tuple[float, float]], fraction: float) -> float:
    """The time `fraction` of the way through the speech in `spoken`."""
    left = fraction * sum(b - a for a, b in spoken)
    for a, b in spoken:
        if left <= b - a:
            return a + left
        left -= b - a
    return spoken[-1][1]


def window_texts(chunk: Chunk, words: Sequence[tuple[float, str]], spans: Sequence[tuple[float, float]],
                 unspaced: bool) -> dict[int, str]:
    """The transcript of each window of `chunk`, from its timed words. A word timed into a pause
    between windows (its time is an estimate) goes to the nearest window: none is lost."""
    sep = "" if unspaced else " "
    got: dict[int, list[str]] = {w: [] for w in chunk.windows}
    for t, word in words:
        inside = [w for w in chunk.windows if spans[w][0] <= t <= spans[w][1]]
        if not inside:
            inside = [min(chunk.windows, key=lambda w: max(spans[w][0] - t, t - spans[w][1]))]
        for w in inside:
            got[w].append(word)
    return {w: sep.join(ws) for w, ws in got.items()}
