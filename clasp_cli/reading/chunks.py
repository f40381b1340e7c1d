"""A recording's windows merged into reading chunks: Whisper hears up to 30 s at a time, as it was
trained to, and a cut falls where the speaker paused longest, never inside a sentence that a
pause-free stretch would hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

MAX_SECONDS = 30.0


@dataclass(frozen=True)
class Chunk:
    start: float
    end: float
    windows: tuple[int, ...]  # indices of the windows it reads, in order

    @property
    def seconds(self) -> float:
        return self.end - self.start


def reading_chunks(spans: Sequence[tuple[float, float]], max_seconds: float = MAX_SECONDS) -> list[Chunk]:
    """Consecutive windows (start, end) grouped into chunks of at most `max_seconds` (a single
    window longer than that is a chunk of its own). Each window is in exactly one chunk, and a
    chunk's audio runs from its first window's start to its latest end, so every word a window
    holds is heard by its chunk. Spans must be in order of start."""
    if not spans:
        return []
    order = list(range(len(spans)))
    out: list[Chunk] = []

    def split(a: int, b: int) -> None:  # windows a..b-1
        reach = max(spans[i][1] for i in order[a:b])
        if b - a == 1 or reach - spans[a][0] <= max_seconds:
            out.append(Chunk(spans[a][0], reach, tuple(range(a, b))))
            return
        best, best_gap, ends = a + 1, float("-inf"), spans[a][1]
        for k in range(a + 1, b):
            gap = spans[k][0] - ends  # the pause before window k (negative: windows overlap)
            # The longest pause wins; between equal ones, the cut nearer the middle of the span.
            if gap > best_gap + 1e-9 or (abs(gap - best_gap) <= 1e-9 and abs(2 * k - a - b) < abs(2 * best - a - b)):
                best, best_gap = k, gap
            ends = max(ends, spans[k][1])
        split(a, best)
        split(best, b)

    split(0, len(spans))
    return out
