"""One recording read whole: chunks, its language, timed segments, and each window's words (a
ReadingQueue of one; indexing reads many recordings through one queue)."""

from __future__ import annotations

from typing import Callable, Collection, Iterator, Sequence

import numpy as np

from .queue import LANGUAGE_CHUNKS, Reading, ReadingQueue
from .reader import SAMPLE_RATE, ChunkReader

__all__ = ["LANGUAGE_CHUNKS", "Reading", "read_recording", "wave_audio"]


def read_recording(reader: ChunkReader, spans: Sequence[tuple[float, float]],
                   audio_of: Callable[[Sequence[tuple[float, float]]], Iterator[np.ndarray]], prior: str | None = None,
                   forced: str | None = None, wanted: Collection[int] | None = None) -> Reading:
    """What was said in each window (start, end in seconds, in order) of a recording.

    audio_of(spans) yields the 16 kHz audio of each span in turn (streamed from the file, or cut
    from a wave in memory: `wave_audio`). wanted: read only the chunks holding these windows
    (the others' texts stay empty), as a fill-in of a partly transcribed recording does."""
    got: list[Reading] = []
    queue = ReadingQueue(reader, lambda _key, reading: got.append(reading))
    queue.add(None, spans, audio_of, prior, forced, wanted)
    queue.flush()
    return got[0]


def wave_audio(wave: np.ndarray) -> Callable[[Sequence[tuple[float, float]]], Iterator[np.ndarray]]:
    """audio_of for a 16 kHz recording held in memory."""
    def cut(spans: Sequence[tuple[float, float]]) -> Iterator[np.ndarray]:
        for a, b in spans:
            yield wave[int(round(a * SAMPLE_RATE)) : int(round(b * SAMPLE_RATE))]
    return cut
