"""One recording read whole: chunks, its language, timed segments, and each window's words (a
ReadingQueue of one; indexing reads many recordings through one queue)."""

from __future__ import annotations

from typing import Callable, Collection, Iterator, Sequence

import numpy as np

from .queue import LANGUAGE_CHUNKS, Reading, ReadingQueue
from .reader import SAMPLE_RATE, ChunkReader

__all__ = ["LANGUAGE_CHUNKS", "Reading", "read_clips", "read_recording", "wave_audio"]


def read_recording(reader: ChunkReader, spans: Sequence[tuple[float, float]],
                   audio_of: Callable[[Sequence[tuple[float, float]]], Iterator[np.ndarray]], prior: str | None = None,
                   forced: str | None = None, wanted: Collection[int] | None = None, speech_timing: bool = True) -> Reading:
    """What was said in each window (start, end in seconds, in order) of a recording.

    audio_of(spans) yields the 16 kHz audio of each span in turn (streamed from the file, or cut
    from a wave in memory: `wave_audio`). wanted: read only the chunks holding these windows
    (the others' texts stay empty), as a fill-in of a partly transcribed recording does.
    speech_timing=False spreads a segment's words over its pauses too (the reading before it)."""
    got: list[Reading] = []
    queue = ReadingQueue(reader, lambda _key, reading: got.append(reading), speech_timing=speech_timing)
    queue.add(None, spans, audio_of, prior, forced, wanted)
    queue.flush()
    return got[0]


def read_clips(reader: ChunkReader, waves: Sequence[np.ndarray], langs: Sequence[str | None] | None = None) -> list[str]:
    """What was said in each clip (16 kHz), each a recording of one window read as indexing reads
    a recording, the clips read together. langs: each clip's language, where known; else each
    is detected, a clip with weak evidence taking the language most clips so far were read in."""
    from collections import Counter

    got: dict[int, str] = {}
    seen: Counter = Counter()
    queue = ReadingQueue(reader, lambda k, r: got.__setitem__(k, " ".join(t for t in r.texts if t)))
    for i, w in enumerate(waves):
        forced = (langs[i] if langs else None) if reader.multilingual else None
        prior = seen.most_common(1)[0][0] if seen else None
        language = queue.add(i, [(0.0, w.size / SAMPLE_RATE)], wave_audio(w), prior, forced)
        if language is not None:
            seen[language.code] += 1
    queue.flush()
    return [got.get(i, "") for i in range(len(waves))]


def wave_audio(wave: np.ndarray) -> Callable[[Sequence[tuple[float, float]]], Iterator[np.ndarray]]:
    """audio_of for a 16 kHz recording held in memory."""
    def cut(spans: Sequence[tuple[float, float]]) -> Iterator[np.ndarray]:
        for a, b in spans:
            yield wave[int(round(a * SAMPLE_RATE)) : int(round(b * SAMPLE_RATE))]
    return cut
