"""Log-mel spectrogram features in numpy, for the trainable spectrogram branch.

Kept free of torch so features can be computed and cached by processes that never train.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

N_FFT = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms: 100 frames per second


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    # Slaney scale: linear below 1 kHz, logarithmic above (what Whisper and librosa use).
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log_region = f >= 1000.0
    mel = np.where(log_region, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)
    return mel


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f = m * (200.0 / 3)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), f)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """[n_mels, n_fft//2+1] triangular, area-normalised filters."""
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    lower = (freqs[None, :] - edges[:-2, None]) / np.maximum(edges[1:-1, None] - edges[:-2, None], 1e-10)
    upper = (edges[2:, None] - freqs[None, :]) / np.maximum(edges[2:, None] - edges[1:-1, None], 1e-10)
    fb = np.maximum(0.0, np.minimum(lower, upper))
    fb *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return fb.astype(np.float32)


def log_mel(wave: np.ndarray, sample_rate: int = 16_000, n_mels: int = 64) -> np.ndarray:
    """[n_mels, frames] log-mel of a mono waveform, scaled to roughly [-1, 1].

    Dynamic range is clamped to 80 dB below the loudest bin, as Whisper does, so gain changes
    and silence padding do not dominate the features.
    """
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if wave.size < N_FFT:
        wave = np.pad(wave, (0, N_FFT - wave.size))
    n_frames = 1 + (wave.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    spec = np.abs(np.fft.rfft(wave[idx] * window, axis=1)) ** 2  # [frames, bins]
    mel = mel_filterbank(sample_rate, N_FFT, n_mels) @ spec.T.astype(np.float32)
    logm = np.log10(np.maximum(mel, 1e-10))
    logm = np.maximum(logm, logm.max() - 8.0)
    return ((logm + 4.0) / 4.0).astype(np.float32)
