"""Whisper reading chunks of up to 30 s: batched encoding, language probabilities, and greedy
decoding with timestamps, on CTranslate2 directly (the weights of `transcribe.Transcriber`).

Decoding stays as reproducible as `transcribe` makes it: greedy, no sampled fallback, no
conditioning on earlier text. A chunk whose transcript loops is decoded again with repeats
barred, and in that second reading a segment that only says an earlier one again is dropped;
a segment timed after the end of the audio (the decoder going on over the padding) is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..transcribe import segment_key, stutters

SAMPLE_RATE = 16_000
MAX_SECONDS = 30
SECONDS_PER_FRAME = 0.02  # one encoder frame, and one timestamp step


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the audio read
    end: float
    text: str
    tokens: tuple[int, ...] = ()  # its text tokens, for word timing


# Clips are padded to a multiple of this many seconds (half a second of silence at least), so a
# recording's chunks fall into a few lengths and are decoded in batches: decoding one clip at a
# time costs several times more per clip on a CPU.
PAD_STEP = 5


def padded_seconds(seconds: float) -> int:
    """The length a clip of `seconds` is encoded at."""
    return int(min(MAX_SECONDS, PAD_STEP * math.ceil((seconds + 0.5) / PAD_STEP)))


class ChunkReader:
    """Reads 16 kHz mono clips of at most 30 s with a loaded `transcribe.Transcriber`."""

    def __init__(self, transcriber, batch_size: int = 16, words: bool = False) -> None:
        self.transcriber = transcriber
        self.batch_size = batch_size
        self.words = words  # time each word (a cross-attention alignment pass), not only each segment
        self.multilingual = transcriber.multilingual
        tok = transcriber.whisper.hf_tokenizer
        self._tok = tok
        self._eot = tok.token_to_id("<|endoftext|>")
        # Timestamps are not in the tokenizer's vocabulary: they follow <|notimestamps|>, 20 ms apart.
        self._ts_begin = tok.token_to_id("<|notimestamps|>") + 1

    def encode(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Encoder output ([frames, dim]) per clip, each padded to `padded_seconds`, batched by length."""
        import ctranslate2

        model, fe = self.transcriber.whisper.model, self.transcriber.whisper.feature_extractor
        out: list[np.ndarray | None] = [None] * len(waves)
        padded = [padded_seconds(w.size / SAMPLE_RATE) * SAMPLE_RATE for w in waves]
        by_len: dict[int, list[int]] = {}
        for k, n in enumerate(padded):
            by_len.setdefault(n, []).append(k)
        for n, ks in sorted(by_len.items()):
            for s in range(0, len(ks), self.batch_size):
                group = ks[s : s + self.batch_size]
                mel = np.stack([fe(np.pad(waves[k][:n], (0, n - min(n, waves[k].size))), padding=0)[:, : n // 160]
                                for k in group])
                enc = np.asarray(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel, dtype=np.float32))))
                for j, k in enumerate(group):
                    out[k] = enc[j]
        return out  # type: ignore[return-value]

    def languages(self, encoded: Sequence[np.ndarray]) -> list[dict[str, float]]:
        """Whisper's probability of each language, per clip (empty for an English-only model)."""
        import ctranslate2

        if not self.multilingual:
            return [{} for _ in encoded]
        out: list[dict[str, float]] = []
        for group in _same_length(encoded, self.batch_size):
            enc = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack([encoded[k] for k in group])))
            for k, found in zip(group, self.transcriber.whisper.model.detect_language(enc)):
                out.append((k, {tok[2:-2]: float(p) for tok, p in found}))
        return [p for _, p in sorted(out, key=lambda kp: kp[0])]

    def read(self, encoded: Sequence[np.ndarray], langs: Sequence[str | None],
             seconds: Sequence[float] | None = None) -> list[list[Segment]]:
        """Timed segments per clip, each read in its language (None: English for an English-only
        model). seconds: each clip's length before padding; a segment timed after it is the
        decoder going round again over the silence, and is dropped."""
        import ctranslate2

        out: list[list[Segment]] = [[] for _ in encoded]
        model = self.transcriber.whisper.model
        for group in _same_length(encoded, self.batch_size):
            padded = encoded[group[0]].shape[0] * SECONDS_PER_FRAME
            enc = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack([encoded[k] for k in group])))
            prompts = [self._prompt(langs[k]) for k in group]
            limit = min(448, 8 + math.ceil(14 * padded))
            results = model.generate(enc, prompts, beam_size=self.transcriber.beam_size, max_length=limit, suppress_blank=True)
            segs = [self._segments(r.sequences_ids[0], padded) for r in results]
            # Only the signs that hold for any length (transcribe.stutters): in 30 s of speech,
            # unlike in one window, people do say a sentence twice.
            again = [j for j, s in enumerate(segs) if stutters(" ".join(x.text for x in s))]
            if again:
                sub = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(enc)[again]))
                redo = model.generate(sub, [prompts[j] for j in again], beam_size=self.transcriber.beam_size, max_length=limit,
                                      suppress_blank=True, no_repeat_ngram_size=4, repetition_penalty=1.1)
                for j, r in zip(again, redo):
                    segs[j] = _without_repeats(self._segments(r.sequences_ids[0], padded))
            for k, s in zip(group, segs):
                if seconds is not None:
                    end = seconds[k]
                    s = [Segment(x.start, min(x.end, end), x.text, x.tokens) for x in s if x.start < end - 0.1]
                out[k] = s
            if self.words:
                self._time_words(enc, group, [langs[k] for k in group], out, seconds)
        return out

    def _time_words(self, enc, group: list[int], langs: list[str | None], out: list[list[Segment]],
                    seconds: Sequence[float] | None) -> None:
        """Replace each clip's segments by its words, timed by Whisper's cross-attention alignment
        (faster-whisper's find_alignment, the pass its word_timestamps make)."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        whisper = self.transcriber.whisper
        by_lang: dict[str | None, list[int]] = {}
        for j, (k, lang) in enumerate(zip(group, langs)):
            if any(x.tokens for x in out[k]):
                by_lang.setdefault(lang, []).append(j)
        for lang, js in by_lang.items():
            tok = Tokenizer(self._tok, self.multilingual, task="transcribe", language=(lang or "en") if self.multilingual else None)
            sub = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(enc)[js]))
            frames = np.asarray(enc).shape[1] * 2
            tokens = [[t for x in out[group[j]] for t in x.tokens] for j in js]
            num = frames if seconds is None else min(frames, max(int(seconds[group[j]] * 100) for j in js))
            for j, words in zip(js, whisper.find_alignment(tok, tokens, sub, num)):
                k = group[j]
                timed = [Segment(float(w["start"]), float(w["end"]), w["word"].strip()) for w in words if w["word"].strip()]
                if timed:
                    out[k] = timed

    def _prompt(self, lang: str | None) -> list[int]:
        tok = self._tok
        ids = [tok.token_to_id("<|startoftranscript|>")]
        if self.multilingual:
            lang_id = tok.token_to_id(f"<|{lang or 'en'}|>")
            ids += [lang_id if lang_id is not None else tok.token_to_id("<|en|>"), tok.token_to_id("<|transcribe|>")]
        return ids  # no <|notimestamps|>: the decoder times each segment

    def _segments(self, ids: Sequence[int], seconds: float) -> list[Segment]:
        """Timed segments from a token sequence: <|t0|> words <|t1|> ... (an unclosed tail runs to the end)."""
        segs: list[Segment] = []
        words: list[int] = []
        start, last = None, 0.0
        for t in ids:
            if t >= self._ts_begin:
                at = min(seconds, (t - self._ts_begin) * SECONDS_PER_FRAME)
                if words:
                    segs.append(Segment(start if start is not None else last, max(at, start or last), self._text(words),
                                        tuple(words)))
                    words, start = [], None
                else:
                    start = at
                last = at
            elif t < self._eot:
                words.append(t)
        if words:
            segs.append(Segment(start if start is not None else last, seconds, self._text(words), tuple(words)))
        return [s for s in segs if s.text]

    def _text(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids)).strip()


def _same_length(encoded: Sequence[np.ndarray], batch_size: int) -> list[list[int]]:
    by_len: dict[int, list[int]] = {}
    for k, e in enumerate(encoded):
        by_len.setdefault(e.shape[0], []).append(k)
    return [ks[s : s + batch_size] for _, ks in sorted(by_len.items()) for s in range(0, len(ks), batch_size)]


def _without_repeats(segs: list[Segment]) -> list[Segment]:
    """A chunk's segments less any that only says an earlier one again (3 words or more)."""
    seen: set[str] = set()
    kept = []
    for s in segs:
        key = segment_key(s.text)
        if key and len(key.split()) >= 3 and key in seen:
            continue
        seen.add(key)
        kept.append(s)
    return kept
