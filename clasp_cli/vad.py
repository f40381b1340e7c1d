"""Voice activity detection with Silero VAD (ONNX through onnxruntime; no torch).

The model is the Silero VAD v6 that faster-whisper ships (`faster_whisper/assets/silero_vad_v6.onnx`),
so it costs no package of its own (the `silero-vad` wheel requires torch). It cut better windows
than that wheel's `silero_vad_16k_sequence.onnx` on 3 of 4 validation archives, 434 against 425
top-1 hits of 760 queries (benchmarks/vad_models.py, results/vad-models.json).

One speech probability per 32 ms chunk (512 samples at 16 kHz, each seen with the 64 samples
before it), with a recurrent state carried from chunk to chunk. The state and the context are
carried across blocks too, so a file streamed in blocks gets exactly the probabilities it would
get in one piece, in memory that does not grow with its length.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import ModelError

SAMPLE_RATE = 16_000
CHUNK = 512  # samples per probability: 32 ms
CONTEXT = 64
CHUNK_SECONDS = CHUNK / SAMPLE_RATE
_MODEL = "silero_vad_v6.onnx"


def model_path() -> Path:
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("voice activity detection needs the package faster-whisper (pip install faster-whisper)")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / _MODEL
    if not path.is_file():
        raise ModelError(f"{path}: missing from the faster-whisper package; reinstall it (pip install --force-reinstall faster-whisper)")
    return path


class SileroVAD:
    """Speech probabilities for 16 kHz mono audio, fed block by block."""

    def __init__(self, threads: int = 0, model: Path | None = None):
        import onnxruntime as ort

        path = model or model_path()

        opts = ort.SessionOptions()
        # 0: onnxruntime's default, every core. Indexing cuts a file before it encodes it, never at
        # the same time, so the VAD has the cores to itself; on 2 cores this halves its time
        # (8 test programs: 2.0 s with one thread, 1.0 s with two), which is a tenth of indexing.
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types with the reason
            raise ModelError(f"{path}: cannot load the Silero VAD model ({e})") from None
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def feed(self, block: np.ndarray) -> np.ndarray:
        """Probabilities for every whole chunk now available; a partial chunk waits for the next block."""
        x = np.concatenate([self._pending, np.asarray(block, np.float32).reshape(-1)])
        n = x.size // CHUNK
        self._pending = x[n * CHUNK :]
        if n == 0:
            return np.zeros(0, np.float32)
        padded = np.concatenate([self._context, x[: n * CHUNK]])
        frames = np.lib.stride_tricks.sliding_window_view(padded, CHUNK + CONTEXT)[::CHUNK][:n]
        probs, self._h, self._c = self._session.run(None, {"input": np.ascontiguousarray(frames), "h": self._h, "c": self._c})
        self._context = x[n * CHUNK - CONTEXT : n * CHUNK]
        return np.asarray(probs, np.float32).reshape(-1)

    def flush(self) -> np.ndarray:
        """The last, partial chunk (zero-padded), if any; then the detector is ready for a new file."""
        tail = self._pending
        out = self.feed(np.zeros(CHUNK - tail.size, np.float32)) if tail.size else np.zeros(0, np.float32)
        self.reset()
        return out

    def probabilities(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """One probability per 32 ms over a whole stream of blocks."""
        parts = [self.feed(b) for b in blocks]
        parts.append(self.flush())
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)
