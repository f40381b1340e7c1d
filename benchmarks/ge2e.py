"""Resemblyzer's GE2E d-vectors (256-d, a 3-layer LSTM on 40 mel bands), as a drop-in for CAM++
in the diarizer, so that `benchmarks/speakers.py --encoder ge2e` measures both on the same
recordings (issue 41 asks for both numbers; docs/speakers.md has them).

Measurement only: it needs torch (the `convert` extra) and the resemblyzer 0.1.4 wheel, and
reads the wheel's weights with torch.load(weights_only=True). clasp itself ships CAM++.

    pip download --no-deps resemblyzer==0.1.4 -d /tmp/spk   # or RESEMBLYZER_WHEEL=path

    .venv/bin/python benchmarks/speakers.py tune --encoder ge2e --archive data/arch-tune-fillets-train

The front end follows resemblyzer/audio.py: volume raised to -30 dBFS, librosa's power mel
spectrogram (25 ms Hann frames every 10 ms, 40 Slaney mel bands, centred), no log. A clip is
cut into 1.6 s partials, 1.3 a second; each gives one embedding. For the diarizer, each CAM++
trunk frame of a crop takes the embedding of the partial centred nearest it, so the diarizer's
pooling over frames where a speaker is alone becomes a mean of partial embeddings.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from clasp_cli.speakers.embed import SAMPLE_RATE, TRUNK_STEP_S, Stats, trunk_times

WHEEL = Path(os.environ.get("RESEMBLYZER_WHEEL", "/tmp/spk/Resemblyzer-0.1.4-py3-none-any.whl"))
N_FFT, HOP, MELS, PARTIAL = 400, 160, 40, 160
DIM = 256


def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


def _slaney_banks() -> np.ndarray:
    freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - freqs[None, :]
    w = np.maximum(0, np.minimum(-ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]))
    return (w * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]).astype(np.float32)


_BANKS = _slaney_banks()
_HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic


def mel(wave: np.ndarray) -> np.ndarray:
    """(frames, 40) power mel spectrogram as resemblyzer computes it with librosa."""
    padded = np.pad(np.asarray(wave, dtype=np.float32), N_FFT // 2)
    n = 1 + (padded.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(padded[idx] * _HANN, N_FFT)) ** 2
    return (spec.astype(np.float32) @ _BANKS.T).astype(np.float32)


def louder(wave: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
    if rms <= 0:
        return wave
    change = target_dbfs - 20 * np.log10(rms)
    return wave * (10 ** (change / 20)) if change > 0 else wave


def partial_starts(n_samples: int, rate: float = 1.3, min_coverage: float = 0.75) -> list[int]:
    """First mel frame of each 1.6 s partial (resemblyzer's compute_partial_slices)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((SAMPLE_RATE / rate) / HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL + step + 1), step))
    last = starts[-1] * HOP
    if (n_samples - last) / (PARTIAL * HOP) < min_coverage and len(starts) > 1:
        starts = starts[:-1]
    return starts


class GE2EEncoder:
    """The diarizer's encoder interface (frames, pool, embed, dim) with GE2E underneath."""

    dim = DIM

    def __init__(self, threads: int | None = None):
        import io

        import torch

        torch.set_num_threads(threads or min(4, os.cpu_count() or 1))
        with zipfile.ZipFile(WHEEL) as z:
            state = torch.load(io.BytesIO(z.read("resemblyzer/pretrained.pt")), map_location="cpu", weights_only=True)["model_state"]
        self._lstm = torch.nn.LSTM(MELS, 256, 3, batch_first=True)
        self._linear = torch.nn.Linear(256, DIM)
        self._lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self._linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        self._torch = torch

    def partials(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, centre seconds) of a clip's 1.6 s partials."""
        wave = louder(np.asarray(wave, dtype=np.float32))
        starts = partial_starts(wave.size)
        need = (starts[-1] + PARTIAL) * HOP
        if need > wave.size:
            wave = np.pad(wave, (0, need - wave.size))
        m = mel(wave)
        batch = np.stack([m[s:s + PARTIAL] for s in starts])
        with self._torch.no_grad():
            _, (h, _) = self._lstm(self._torch.from_numpy(batch))
            e = self._torch.relu(self._linear(h[-1])).numpy()
        e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        return e, (np.array(starts) + PARTIAL / 2) * HOP / SAMPLE_RATE

    def frames(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """Per CAM++-like trunk frame of each clip, its nearest partial's embedding (padded to
        the 512 columns the diarizer's Stats add up)."""
        out = []
        for w in waves:
            e, centres = self.partials(w)
            t = trunk_times(max(1, int(w.size / SAMPLE_RATE / TRUNK_STEP_S)))
            rows = np.zeros((len(t), 512), dtype=np.float32)
            rows[:, :DIM] = e[np.abs(t[:, None] - centres[None, :]).argmin(axis=1)]
            out.append(rows)
        return out

    def pool(self, stats: list[Stats]) -> np.ndarray:
        out = np.zeros((len(stats), DIM), dtype=np.float32)
        for i, st in enumerate(stats):
            if st.n:
                v = st.s[:DIM] / st.n
                out[i] = v / max(np.linalg.norm(v), 1e-12)
        return out

    def embed(self, wave: np.ndarray) -> np.ndarray:
        e, _ = self.partials(wave)
        v = e.mean(axis=0)
        return (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)
