"""Silero VAD through onnxruntime: speech found where it is, and block size never matters."""

from __future__ import annotations

import numpy as np

from clasp_cli.audio import load_audio
from clasp_cli.vad import CHUNK_SECONDS, SileroVAD


def _speech_with_silence(speech_wav) -> tuple[np.ndarray, float, float]:
    speech = load_audio(speech_wav)
    pad = np.zeros(32000, np.float32)
    return np.concatenate([pad, speech, pad]), 2.0, 2.0 + speech.size / 16000


def test_speech_is_detected_between_silences(speech_wav):
    wave, start, end = _speech_with_silence(speech_wav)
    p = SileroVAD().probabilities([wave])
    assert p.size == int(np.ceil(wave.size / 512))
    t = np.arange(p.size) * CHUNK_SECONDS
    assert p[t < start - 0.3].max() < 0.5
    assert p[t > end + 0.5].max() < 0.5
    assert (p[(t > start + 0.3) & (t < end - 0.3)] > 0.5).mean() > 0.7


def test_streaming_in_odd_blocks_gives_the_same_probabilities_as_one_piece(speech_wav):
    wave, _, _ = _speech_with_silence(speech_wav)
    vad = SileroVAD()
    whole = vad.probabilities([wave])
    cuts = [0, 700, 5000, 5001, 33333, wave.size]
    pieces = vad.probabilities(wave[a:b] for a, b in zip(cuts, cuts[1:]))
    assert np.allclose(whole, pieces, atol=1e-5)
