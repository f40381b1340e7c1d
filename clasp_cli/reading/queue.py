"""Recordings read together, so that the decoder runs in full batches.

A recording's chunks are encoded and its language decided as soon as it is added. Decoding waits
until enough chunks of one padded length are queued, from any recording: on a CPU, decoding a
batch of sixteen chunks costs little more than decoding one, because every step reads the
decoder's weights once for the whole batch, and a recording of a few minutes has only a few
chunks of each length. A recording's Reading is handed on as soon as its last chunk is read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Collection, Hashable, Iterator, Sequence

import numpy as np

from .align import UNSPACED, speech_of, timed_words, window_texts
from .chunks import MAX_SECONDS, Chunk, reading_chunks
from .language import Language, chunk_language, recording_language
from .reader import SAMPLE_RATE, ChunkReader

# Chunks whose probabilities decide a recording's language: its first few minutes of speech. A
# recording is encoded this many chunks at a time, so one of hours never holds more than this
# many chunks' encoder output at once beyond the queue.
LANGUAGE_CHUNKS = 16
# Chunks held for decoding, across recordings (a 30 s chunk's encoder output is 3 MB): past this,
# the length with the oldest chunk is decoded even if its batch is not full. Fewer held means
# each recording's transcripts are stored sooner (a killed run loses less); more means fuller
# batches. See docs/benchmarks.md for the measured choice.
MAX_QUEUED = 32
# Nor does a chunk wait longer than this many seconds while others are encoded: a recording's
# transcripts are stored within about this long of its reading, whatever the lengths of its chunks.
MAX_WAIT_S = 10.0


@dataclass
class Reading:
    texts: list[str]  # one per window
    langs: list[str | None]  # the language each window was read in
    language: Language | None  # the recording's (None: an English-only reader)
    chunks: int = 0
    seconds: float = 0.0  # of audio read


@dataclass
class _Recording:
    key: Hashable
    spans: Sequence[tuple[float, float]]
    chunks: list[Chunk]
    langs: list[str | None]
    language: Language | None = None
    words: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    unread: int = 0  # pieces queued and not yet decoded
    seconds: float = 0.0
    speech: list[tuple[float, float]] = field(default_factory=list)  # where its windows are


@dataclass
class _Piece:
    rec: _Recording
    chunk: int
    offset: float
    encoded: np.ndarray
    lang: str | None
    seconds: float
    order: int  # when it was queued
    since: float  # time.monotonic() then


def plan_pieces(chunks: Sequence[Chunk]) -> list[tuple[int, float, float]]:
    """(chunk, start, end) of each piece of at most 30 s that Whisper hears."""
    plan = []
    for n, c in enumerate(chunks):
        t = c.start
        while True:
            plan.append((n, t, min(c.end, t + MAX_SECONDS)))
            t += MAX_SECONDS
            if t >= c.end:
                break
    return plan


class ReadingQueue:
    """Reads recordings with `reader`, handing each one's Reading to done(key, reading) once all
    of it is read, which may be after later recordings were added. `flush()` reads what is queued."""

    def __init__(self, reader: ChunkReader, done: Callable[[Hashable, Reading], None], max_queued: int = MAX_QUEUED,
                 speech_timing: bool = True, max_wait_s: float | None = MAX_WAIT_S) -> None:
        self.reader = reader
        # Words spread over the speech inside a segment (align.timed_words), not over its pauses.
        self.speech_timing = speech_timing
        self.done = done
        self.max_queued = max(max_queued, reader.batch_size)
        self.max_wait_s = max_wait_s  # None: wait for full batches or the room, however long
        self._queued: dict[int, list[_Piece]] = {}  # by encoder frames
        self._added = 0

    def add(self, key: Hashable, spans: Sequence[tuple[float, float]],
            audio_of: Callable[[Sequence[tuple[float, float]]], Iterator[np.ndarray]], prior: str | None = None,
            forced: str | None = None, wanted: Collection[int] | None = None) -> Language | None:
        """Queue one recording's windows (start, end in seconds, in order). audio_of(spans) yields
        the 16 kHz audio of each span in turn. wanted: read only the chunks holding these windows.
        Returns the language it will be read in (decided now, from its encoder pass), None for
        an English-only reader or a recording with nothing to read."""
        chunks = [c for c in reading_chunks(spans) if wanted is None or any(w in wanted for w in c.windows)]
        rec = _Recording(key, spans, chunks, [None] * len(spans), speech=speech_of(spans) if self.speech_timing else [])
        plan = plan_pieces(chunks)
        rec.unread = len(plan)
        if not plan:
            self._finish(rec)
            return None
        try:
            self._encode(rec, plan, audio_of([(a, b) for _, a, b in plan]), prior, forced)
        except BaseException:  # an unreadable file (or Ctrl-C): none of it stays queued
            for frames in list(self._queued):
                self._queued[frames] = [p for p in self._queued[frames] if p.rec is not rec]
                if not self._queued[frames]:
                    del self._queued[frames]
            raise
        return rec.language

    def flush(self) -> None:
        """Read everything queued (the end of a run)."""
        self._decode(full_only=False)

    def _encode(self, rec: _Recording, plan: list[tuple[int, float, float]], audio: Iterator[np.ndarray],
                prior: str | None, forced: str | None) -> None:
        reader, chunks = self.reader, rec.chunks
        for g in range(0, len(plan), LANGUAGE_CHUNKS):
            group = plan[g : g + LANGUAGE_CHUNKS]
            waves = [next(audio) for _ in group]
            encoded = reader.encode(waves)
            probs = reader.languages(encoded) if reader.multilingual and not forced else [{} for _ in group]
            seconds = [w.size / SAMPLE_RATE for w in waves]
            if rec.language is None and reader.multilingual:
                rec.language = recording_language(probs, seconds, prior, forced)
            for (n, offset, _), enc, p, s in zip(group, encoded, probs, seconds):
                code = chunk_language(rec.language, p, s) if rec.language else None
                for w in chunks[n].windows:
                    rec.langs[w] = code
                rec.seconds += s
                self._added += 1
                self._queued.setdefault(enc.shape[0], []).append(_Piece(rec, n, offset, enc, code, s, self._added,
                                                                        time.monotonic()))
            self._decode(full_only=True)  # a recording of hours is read as it goes, not held

    def _decode(self, full_only: bool) -> None:
        size = self.reader.batch_size
        while self._queued:
            full = [f for f, ps in self._queued.items() if len(ps) >= size]
            if full:
                frames = full[0]
            elif full_only and sum(map(len, self._queued.values())) <= self.max_queued and not self._overdue():
                return
            else:
                # The length whose oldest piece has waited longest: no recording waits for the end
                # of the run because its chunks are of a rare length (a kill would lose it).
                frames = min(self._queued, key=lambda f: self._queued[f][0].order)
            pieces = self._queued[frames]
            batch, rest = pieces[:size], pieces[size:]
            if rest:
                self._queued[frames] = rest
            else:
                del self._queued[frames]
            segs = self.reader.read([p.encoded for p in batch], [p.lang for p in batch], [p.seconds for p in batch])
            for p, s in zip(batch, segs):
                rec = p.rec
                rec.words.setdefault(p.chunk, []).extend(timed_words(s, p.offset, (p.lang or "en") in UNSPACED,
                                                                          rec.speech or None))
                rec.unread -= 1
                if rec.unread == 0:
                    self._finish(rec)

    def _overdue(self) -> bool:
        if self.max_wait_s is None:
            return False
        oldest = min(ps[0].since for ps in self._queued.values())
        return time.monotonic() - oldest > self.max_wait_s

    def _finish(self, rec: _Recording) -> None:
        texts = [""] * len(rec.spans)
        for n, c in enumerate(rec.chunks):
            unspaced = (rec.langs[c.windows[0]] or "en") in UNSPACED
            for w, t in window_texts(c, rec.words.get(n, []), rec.spans, unspaced).items():
                texts[w] = t
        self.done(rec.key, Reading(texts, rec.langs, rec.language, len(rec.chunks), rec.seconds))
