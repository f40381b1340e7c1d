"""Speaker vectors: 3D-Speaker's CAM++ (zh+en, 192-d) on onnxruntime, with its Kaldi filterbank
front end in numpy.

The network runs once over each 10 s chunk up to its frame features (two per 20 ms); a vector
is the statistics (mean and standard deviation) of any set of those frames, projected. So one
pass gives a vector per speaker per chunk and one per window, each pooled over the frames where
that speaker speaks alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .models import model_file, onnx_session

SAMPLE_RATE = 16_000
DIM = 192
FRAME_LEN = 400  # 25 ms
FRAME_SHIFT = 160  # 10 ms
N_FFT = 512
MELS = 80
# The trunk halves the filterbank's frame rate: frame j covers filterbank frames 2j and 2j+1.
TRUNK_STEP_S = 2 * FRAME_SHIFT / SAMPLE_RATE
TRUNK_FIRST_S = FRAME_LEN / 2 / SAMPLE_RATE
MIN_SAMPLES = FRAME_LEN * 2
TRUNK = "campplus-trunk.onnx"
POOL = "campplus-pool.safetensors"


def _mel_banks() -> np.ndarray:
    """Kaldi's triangular mel filters (20 Hz to Nyquist) over the 257 FFT bins, as (257, 80)."""
    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)

    lo, hi = mel(20.0), mel(SAMPLE_RATE / 2)
    delta = (hi - lo) / (MELS + 1)
    bins = mel(np.arange(N_FFT // 2) * SAMPLE_RATE / N_FFT)
    left = lo + np.arange(MELS)[:, None] * delta
    centre, right = left + delta, left + 2 * delta
    up = (bins - left) / (centre - left)
    down = (right - bins) / (right - centre)
    w = np.where((bins > left) & (bins < right), np.minimum(up, down), 0.0)
    return np.concatenate([w, np.zeros((MELS, 1))], axis=1).T.astype(np.float32)


_BANKS = _mel_banks()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME_LEN) / (FRAME_LEN - 1))) ** 0.85  # Povey's


def fbank(wave: np.ndarray) -> np.ndarray:
    """80 log mel energies per 10 ms frame as Kaldi computes them (no dither, DC removed,
    pre-emphasis 0.97, Povey window, power spectrum), mean-normalised over the clip: (frames, 80)."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.size < FRAME_LEN:
        wave = np.pad(wave, (0, FRAME_LEN - wave.size))
    n = 1 + (wave.size - FRAME_LEN) // FRAME_SHIFT
    idx = np.arange(FRAME_LEN)[None, :] + FRAME_SHIFT * np.arange(n)[:, None]
    frames = wave[idx].astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= 0.97 * frames[:, :-1]
    frames[:, 0] *= 1 - 0.97
    spec = np.abs(np.fft.rfft(frames * _WINDOW, N_FFT)) ** 2
    feats = np.log(np.maximum(spec.astype(np.float32) @ _BANKS, np.finfo(np.float32).eps))
    return feats - feats.mean(axis=0, keepdims=True)


def trunk_times(n: int) -> np.ndarray:
    """The centre of each trunk frame, in seconds from the start of its chunk."""
    return TRUNK_FIRST_S + np.arange(n) * TRUNK_STEP_S


@dataclass
class Stats:
    """Running statistics of trunk frames: enough to pool any union of frame sets."""

    n: float = 0.0
    s: np.ndarray = field(default_factory=lambda: np.zeros(512))
    sq: np.ndarray = field(default_factory=lambda: np.zeros(512))

    def add(self, frames: np.ndarray) -> None:
        """frames: (k, 512) trunk features."""
        if len(frames):
            self.n += len(frames)
            self.s = self.s + frames.sum(axis=0)
            self.sq = self.sq + np.square(frames, dtype=np.float64).sum(axis=0)

    @property
    def seconds(self) -> float:
        return self.n * TRUNK_STEP_S


class SpeakerEncoder:
    """CAM++ speaker vectors (unit length, compare by cosine)."""

    dim = DIM

    def __init__(self, threads: int | None = None):
        from safetensors.numpy import load_file

        self._session = onnx_session(TRUNK, threads)
        pool = load_file(str(model_file(POOL)))
        self._dense = pool["dense"].astype(np.float64)
        self._mean = pool["mean"].astype(np.float64)
        self._scale = 1.0 / np.sqrt(pool["var"].astype(np.float64) + 1e-5)

    def frames(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """The trunk features of each clip, (frames, 512) float32; clips of one length run as one batch."""
        feats = [fbank(w) for w in waves]
        out: list[np.ndarray | None] = [None] * len(feats)
        by_len: dict[int, list[int]] = {}
        for i, f in enumerate(feats):
            by_len.setdefault(len(f), []).append(i)
        for idx in by_len.values():
            got = self._session.run(None, {"fbank": np.stack([feats[i] for i in idx]).astype(np.float32)})[0]
            for i, g in zip(idx, got):
                out[i] = np.ascontiguousarray(g.T)
        return out  # type: ignore[return-value]

    def pool(self, stats: list[Stats]) -> np.ndarray:
        """One unit vector per Stats (zeros for an empty one)."""
        out = np.zeros((len(stats), DIM), dtype=np.float32)
        for i, st in enumerate(stats):
            if st.n < 2:
                continue
            mean = st.s / st.n
            var = np.maximum(st.sq - st.n * mean * mean, 0.0) / (st.n - 1)
            v = (np.concatenate([mean, np.sqrt(var)]) @ self._dense.T - self._mean) * self._scale
            out[i] = v / max(np.linalg.norm(v), 1e-12)
        return out

    def embed(self, wave: np.ndarray) -> np.ndarray:
        """The speaker vector of one clip of one voice (a query by voice), pooled over all its frames."""
        wave = np.asarray(wave, dtype=np.float32)
        if wave.size < MIN_SAMPLES:
            wave = np.pad(wave, (0, MIN_SAMPLES - wave.size))
        st = Stats()
        for block in range(0, wave.size, 10 * SAMPLE_RATE):  # 10 s pieces, as indexing sees them
            piece = wave[block:block + 10 * SAMPLE_RATE]
            if piece.size >= MIN_SAMPLES or block == 0:
                st.add(self.frames([piece])[0])
        return self.pool([st])[0]
