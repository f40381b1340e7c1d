"""Speech to text with Whisper: the ASR baseline, and the reading second stage of search.

One place decides how clasp transcribes: greedy, no sampled fallback, no conditioning on earlier
text, so results are reproducible. There are two ways to run the same weights:
- `transcribe`: faster-whisper, one clip at a time, each padded to Whisper's 30 s window. It is
  what a transcribe-then-search pipeline does, so the benchmark's ASR baseline uses it.
- `transcribe_batch`: CTranslate2 directly, clips batched by length and never padded to 30 s
  (the encoder accepts shorter input, as the CLASP speech encoder already relies on). Search
  windows are a few seconds long, so this reads them 5-8x faster at a similar word error rate
  (`benchmarks/asr_speed.py` on validation clips: tiny.en 8.8x -> 50.9x real time, WER 0.50 ->
  0.41; base 2.3x -> 17.6x, WER 0.43 -> 0.40); `--rerank` and `index --transcribe` use it.
"""

from __future__ import annotations

import functools
import math
import os
import re
import zlib
from typing import Sequence

import numpy as np

from .errors import ModelError


def whisper_for(speech_encoder: str) -> str:
    """The Whisper of a CLASP model's encoder family: the same weights, used whole to transcribe."""
    from .encoders.whisper_weights import WHISPER_MODELS

    if speech_encoder in WHISPER_MODELS:
        return speech_encoder
    if speech_encoder.startswith("whisper-ct2:"):
        return speech_encoder.split(":", 1)[1]
    return "whisper-base"  # a non-Whisper encoder (HuBERT, ...): the multilingual default


_SAMPLE_RATE = 16_000
_MAX_SECONDS = 30  # Whisper's positional table covers 30 s


def _length_groups(order: list[int], sizes: list[int], batch_size: int) -> list[list[int]]:
    """Consecutive runs of the length-sorted clips, at most `batch_size` long, whose longest is at
    most 1.5x its shortest plus a second: padding costs compute and changes what Whisper hears."""
    groups: list[list[int]] = []
    for k in order:
        if groups and len(groups[-1]) < batch_size and sizes[k] <= 1.5 * sizes[groups[-1][0]] + _SAMPLE_RATE:
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


class Transcriber:
    def __init__(self, model: str = "whisper-base", device: str = "cpu", beam_size: int = 1, threads: int = 0):
        from faster_whisper import WhisperModel

        from .encoders.whisper_weights import resolve_whisper_path

        path = resolve_whisper_path(model)
        compute_type = "float16" if device == "cuda" else "int8"
        try:
            self.whisper = WhisperModel(str(path), device=device, compute_type=compute_type,
                                        cpu_threads=threads or os.cpu_count() or 0)
        except Exception as e:
            raise ModelError(f"{path}: cannot load Whisper model ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        self.model = model
        self.multilingual = bool(self.whisper.model.is_multilingual)
        self.beam_size = beam_size

    def transcribe(self, waves: Sequence[np.ndarray], langs: Sequence[str | None] | None = None) -> list[str]:
        """One transcript per 16 kHz mono wave; the language is detected unless given (English-only
        models are always told English)."""
        out = []
        for i, w in enumerate(waves):
            lang = (langs[i] if langs else None) if self.multilingual else "en"
            segments, _ = self.whisper.transcribe(
                np.asarray(w, dtype=np.float32), language=lang or None, beam_size=self.beam_size, vad_filter=False,
                condition_on_previous_text=False, without_timestamps=True, temperature=0.0,  # no sampled fallback: reproducible
            )
            out.append(" ".join(s.text.strip() for s in segments).strip())
        return out

    def transcribe_batch(self, waves: Sequence[np.ndarray], langs: Sequence[str | None] | None = None,
                         batch_size: int = 8) -> list[str]:
        """Like `transcribe`, but batched and without padding each clip to 30 s.

        Clips longer than 30 s are read in 30 s pieces whose texts are joined. Each clip's output
        is capped at about 12 tokens per second of audio, and a transcript caught in a repetition
        loop is decoded again with repeats barred (see `_decode`)."""
        import ctranslate2

        pieces: list[tuple[int, np.ndarray]] = []
        step = _MAX_SECONDS * _SAMPLE_RATE
        for i, w in enumerate(waves):
            w = np.asarray(w, dtype=np.float32).reshape(-1)
            pieces += [(i, w[s : s + step]) for s in range(0, max(w.size, 1), step)]
        texts = [""] * len(pieces)
        order = sorted(range(len(pieces)), key=lambda k: pieces[k][1].size)
        model, fe = self.whisper.model, self.whisper.feature_extractor
        for group in _length_groups([k for k in order if pieces[k][1].size], [p.size for _, p in pieces], batch_size):
            # Half a second of trailing silence, rounded up to whole seconds, as one padded length.
            n = min(step, math.ceil(max(pieces[k][1].size for k in group) / _SAMPLE_RATE + 0.5) * _SAMPLE_RATE)
            mel = np.stack([fe(np.pad(pieces[k][1], (0, n - pieces[k][1].size)), padding=0)[:, : n // 160] for k in group])
            enc = model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel, dtype=np.float32)))
            codes = [(langs[pieces[k][0]] if langs else None) for k in group]
            for k, t in zip(group, self._decode(enc, codes, n / _SAMPLE_RATE)):
                texts[k] = t
        return _join(pieces, texts, len(waves))

    def transcribe_encoded(self, encoded: Sequence[Sequence[np.ndarray]], langs: Sequence[str | None] | None = None,
                           batch_size: int = 8) -> list[str]:
        """Transcripts from encoder output already computed (SpeechFeatures.outputs: per clip, one
        [frames, dim] array per 30 s piece), so a window indexed with transcripts is encoded once
        for both its CLASP vector and its words. Pieces of one padded length are decoded together."""
        import ctranslate2

        pieces = [(i, np.asarray(e, dtype=np.float32)) for i, clip in enumerate(encoded) for e in clip]
        texts = [""] * len(pieces)
        by_len: dict[int, list[int]] = {}
        for k, (_, e) in enumerate(pieces):
            by_len.setdefault(e.shape[0], []).append(k)
        for frames, ks in sorted(by_len.items()):
            for s in range(0, len(ks), batch_size):
                group = ks[s : s + batch_size]
                enc = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack([pieces[k][1] for k in group])))
                codes = [(langs[pieces[k][0]] if langs else None) for k in group]
                for k, t in zip(group, self._decode(enc, codes, frames / 50.0)):
                    texts[k] = t
        return _join(pieces, texts, len(encoded))

    def _decode(self, enc, codes: list[str | None], seconds: float) -> list[str]:
        """Greedy decoding of one batch of encoder output; languages detected where not given.

        Whisper's greedy decoder can fall into a loop and say a sentence two or three times. A
        transcript that repeats itself (`looped`) is decoded again with every 4-word sequence
        allowed once, and what still comes round again is cut off (`drop_repeats`, `cut_loop`)."""
        model = self.whisper.model
        codes = [c if self.multilingual else None for c in codes]
        if self.multilingual and any(c is None for c in codes):
            detected = model.detect_language(enc)
            codes = [c or d[0][0][2:-2] for c, d in zip(codes, detected)]
        prompts = [self._prompt(c) for c in codes]
        limit = min(448, 8 + math.ceil(12 * seconds))
        texts = [self._text(r) for r in model.generate(enc, prompts, beam_size=self.beam_size, max_length=limit, suppress_blank=True)]
        again = [j for j, t in enumerate(texts) if looped(t)]
        if again:
            import ctranslate2

            sub = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(enc)[again])) if len(again) < len(texts) else enc
            redo = model.generate(sub, [prompts[j] for j in again], beam_size=self.beam_size, max_length=limit,
                                  suppress_blank=True, no_repeat_ngram_size=4, repetition_penalty=1.1)
            for j, r in zip(again, redo):
                texts[j] = cut_loop(drop_repeats(self._text(r)))
        return texts

    def _text(self, result) -> str:
        eot = self._eot
        return self.whisper.hf_tokenizer.decode([t for t in result.sequences_ids[0] if t < eot]).strip()

    @functools.cached_property
    def _eot(self) -> int:
        return self.whisper.hf_tokenizer.token_to_id("<|endoftext|>")

    def _prompt(self, lang: str | None) -> list[int]:
        tok = self.whisper.hf_tokenizer
        ids = [tok.token_to_id("<|startoftranscript|>")]
        if self.multilingual:
            lang_id = tok.token_to_id(f"<|{lang or 'en'}|>")
            ids += [lang_id if lang_id is not None else tok.token_to_id("<|en|>"), tok.token_to_id("<|transcribe|>")]
        return ids + [tok.token_to_id("<|notimestamps|>")]


def _join(pieces: Sequence[tuple[int, object]], texts: Sequence[str], n: int) -> list[str]:
    """The texts of each clip's 30 s pieces, joined in order."""
    joined = [""] * n
    for (i, _), t in zip(pieces, texts):
        joined[i] = f"{joined[i]} {t}".strip() if t else joined[i]
    return joined


_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def _sentences(text: str) -> list[str]:
    return [x for x in _SENTENCE_END.split(text.strip()) if x]


def segment_key(sentence: str) -> str:
    """A sentence as loop checks compare it: its words, case-folded, punctuation gone."""
    return " ".join(re.findall(r"\w+", sentence.casefold()))


def looped(text: str) -> bool:
    """Whether a transcript repeats itself: a sentence said twice, any 5 words said twice in that
    order, a phrase of 3-4 words three times in a row, or text that compresses like a loop (zlib
    ratio above 2.4, Whisper's own test). Windows are a sentence or two long, where people seldom
    say five words over again."""
    said = [segment_key(x) for x in _sentences(text)]
    said = [x for x in said if len(x.split()) >= 3]
    if len(said) != len(set(said)):
        return True
    words = segment_key(text).split()
    grams = [tuple(words[i : i + 5]) for i in range(len(words) - 4)]
    if len(grams) != len(set(grams)):
        return True
    if _restart(words) is not None:
        return True
    return stutters(text)


def stutters(text: str) -> bool:
    """The loop signs of any length of text: a phrase of 3-4 words three times in a row, or text
    that compresses like a loop (zlib ratio above 2.4, Whisper's own test)."""
    words = segment_key(text).split()
    for n in range(3, 5):
        for i in range(0, len(words) - 3 * n + 1):
            if words[i : i + n] == words[i + n : i + 2 * n] == words[i + 2 * n : i + 3 * n]:
                return True
    raw = text.encode("utf-8")
    return len(raw) > 60 and len(raw) / len(zlib.compress(raw)) > 2.4


def _restart(words: list[str], n: int = 3) -> int | None:
    """Where a transcript starts over: the first later position of its own first n words."""
    head = words[:n]
    if len(head) < n:
        return None
    for i in range(n, len(words) - n + 1):
        if words[i : i + n] == head:
            return i
    return None


def cut_loop(text: str) -> str:
    """A transcript cut where it starts over (its first three words said again), the way a
    looping decoder goes round a window's sentence a second time with small changes."""
    raw = text.split()
    # Compared word by word as `looped` sees them, each remembering the raw word it came from:
    # the second time round may glue words ("kilo-ofripe") that the first kept apart.
    tokens, origin = [], []
    for i, w in enumerate(raw):
        for t in segment_key(w).split():
            tokens.append(t)
            origin.append(i)
    at = _restart(tokens)
    return " ".join(raw[: origin[at]]) if at is not None else text


def drop_repeats(text: str) -> str:
    """A transcript with every sentence after its first occurrence removed, and a last fragment
    that only starts an earlier sentence again (the loop cut off by the length cap)."""
    seen: list[str] = []
    kept = []
    for x in _sentences(text):
        key = segment_key(x)
        if key and len(key.split()) >= 3 and any(k == key or k.startswith(key + " ") for k in seen):
            continue
        seen.append(key)
        kept.append(x)
    return " ".join(kept)


@functools.lru_cache(maxsize=2)
def shared_transcriber(model: str, device: str = "cpu") -> Transcriber:
    """One loaded Whisper per model and device for the whole process: loading takes seconds, and
    search and indexing both transcribe with the same weights."""
    return Transcriber(model, device=device)
