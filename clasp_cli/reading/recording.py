"""One recording read whole: chunks, its language, timed segments, and each window's words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection, Iterator, Sequence

import numpy as np

from .align import UNSPACED, timed_words, window_texts
from .chunks import MAX_SECONDS, reading_chunks
from .language import Language, chunk_language, recording_language
from .reader import SAMPLE_RATE, ChunkReader

# Chunks whose probabilities decide a recording's language: its first few minutes of speech. A
# recording is read this many chunks at a time, so one of hours never holds more than this many
# chunks' encoder output (about 50 MB) at once.
LANGUAGE_CHUNKS = 16


@dataclass
class Reading:
    texts: list[str]  # one per window
    langs: list[str | None]  # the language each window was read in
    language: Language | None  # the recording's (None: an English-only reader)
    chunks: int = 0
    seconds: float = 0.0  # of audio read


def read_recording(reader: ChunkReader, spans: Sequence[tuple[float, float]],
                   audio_of: Callable[[Sequence[tuple[float, float]]], Iterator[np.ndarray]], prior: str | None = None,
                   forced: str | None = None, wanted: Collection[int] | None = None) -> Reading:
    """What was said in each window (start, end in seconds, in order) of a recording.

    audio_of(spans) yields the 16 kHz audio of each span in turn (streamed from the file, or cut
    from a wave in memory: `wave_audio`). wanted: read only the chunks holding these windows
    (the others' texts stay empty), as a fill-in of a partly transcribed recording does."""
    chunks = [c for c in reading_chunks(spans) if wanted is None or any(w in wanted for w in c.windows)]
    plan: list[tuple[int, float, float]] = []  # (chunk, start, end) of each piece of at most 30 s
    for n, c in enumerate(chunks):
        t = c.start
        while True:
            plan.append((n, t, min(c.end, t + MAX_SECONDS)))
            t += MAX_SECONDS
            if t >= c.end:
                break
    texts = [""] * len(spans)
    langs: list[str | None] = [None] * len(spans)
    words: dict[int, list[tuple[float, str]]] = {}
    language: Language | None = None
    audio = audio_of([(a, b) for _, a, b in plan])
    for g in range(0, len(plan), LANGUAGE_CHUNKS):
        group = plan[g : g + LANGUAGE_CHUNKS]
        waves = [next(audio) for _ in group]
        encoded = reader.encode(waves)
        probs = reader.languages(encoded) if reader.multilingual and not forced else [{} for _ in group]
        seconds = [w.size / SAMPLE_RATE for w in waves]
        if language is None and reader.multilingual:
            language = recording_language(probs, seconds, prior, forced)
        codes = [chunk_language(language, p, s) if language else None for p, s in zip(probs, seconds)]
        for (n, offset, _), code, segs in zip(group, codes, reader.read(encoded, codes, seconds)):
            words.setdefault(n, []).extend(timed_words(segs, offset, (code or "en") in UNSPACED))
            for w in chunks[n].windows:
                langs[w] = code
    for n, c in enumerate(chunks):
        unspaced = (langs[c.windows[0]] or "en") in UNSPACED
        for w, t in window_texts(c, words.get(n, []), spans, unspaced).items():
            texts[w] = t
    return Reading(texts, langs, language, len(chunks), sum(b - a for _, a, b in plan))


def wave_audio(wave: np.ndarray) -> Callable[[Sequence[tuple[float, float]]], Iterator[np.ndarray]]:
    """audio_of for a 16 kHz recording held in memory."""
    def cut(spans: Sequence[tuple[float, float]]) -> Iterator[np.ndarray]:
        for a, b in spans:
            yield wave[int(round(a * SAMPLE_RATE)) : int(round(b * SAMPLE_RATE))]
    return cut
