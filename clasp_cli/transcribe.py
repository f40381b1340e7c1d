"""Speech to text with faster-whisper: the ASR baseline, and the reading second stage of search.

One place decides how clasp transcribes (greedy, no sampled fallback, no conditioning on earlier
text), so the baseline and search read audio the same way and results are reproducible.
"""

from __future__ import annotations

import functools
import os
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


@functools.lru_cache(maxsize=2)
def shared_transcriber(model: str) -> Transcriber:
    """One loaded Whisper per model for the whole process: loading takes seconds, and search and
    indexing both transcribe with the same weights."""
    return Transcriber(model)
