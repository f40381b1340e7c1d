"""Who speaks when inside 10 s of audio: pyannote segmentation-3.0, its seven powerset classes
decoded into three local speakers, overlaps included.

The model hears 10 s at a time and names at most three speakers in it, in an order of its own:
"speaker 1" of one chunk need not be "speaker 1" of the next. diarize.py ties the chunks
together with speaker vectors.
"""

from __future__ import annotations

import numpy as np

from .models import onnx_session

SAMPLE_RATE = 16_000
CHUNK_SAMPLES = 10 * SAMPLE_RATE
# The model's frames: its SincNet front end and pooling give one frame per 270 samples, the
# first centred 360 samples in (589 frames per 10 s).
FRAME_STEP = 270
FRAME_CENTRE = 360
FRAMES = (CHUNK_SAMPLES - 721) // FRAME_STEP
LOCAL_SPEAKERS = 3
# The classes, in the model's order: nobody, each speaker alone, each pair together.
POWERSET = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=bool)
MODEL = "segmentation-3.0.onnx"


def frame_times(n: int = FRAMES) -> np.ndarray:
    """Each frame's centre, in seconds from the start of its chunk."""
    return (np.arange(n) * FRAME_STEP + FRAME_CENTRE) / SAMPLE_RATE


class Segmenter:
    """segmentation-3.0 on onnxruntime."""

    def __init__(self, threads: int | None = None):
        self._session = onnx_session(MODEL, threads)
        self._input = self._session.get_inputs()[0].name

    def activity(self, chunks: np.ndarray, overlap_at: float = 1.0) -> np.ndarray:
        """(chunks, FRAMES, 3) bool: which local speakers speak in each frame of each 10 s chunk
        (zero-padded to 10 s); two at once where they overlap.

        A frame is the likeliest class, except that where the pair classes together are at least
        `overlap_at` likely, it is the likeliest pair: the model spreads a second voice's
        probability over the three pairs, so their sum says "two at once" well before any one
        pair wins the argmax (1.0: the plain argmax)."""
        chunks = np.asarray(chunks, dtype=np.float32).reshape(-1, 1, CHUNK_SAMPLES)
        logits = self._session.run(None, {self._input: chunks})[0][:, :FRAMES]
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        best = np.argmax(p, axis=-1)
        pairs = p[..., 4:]
        two = pairs.sum(axis=-1) >= overlap_at
        best[two] = 4 + np.argmax(pairs[two], axis=-1)
        return POWERSET[best]
