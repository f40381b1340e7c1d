"""Passage audio for `clasp serve`: a cut holds the very samples a full decode has at that span."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clasp_cli.audio import audio_info, load_audio
from clasp_cli.errors import AudioError
from clasp_cli.serve.clips import cut, media_type, wav_bytes

from conftest import EXAMPLES


@pytest.fixture(scope="module")
def m4a(tmp_path_factory) -> Path:
    """An AAC .m4a, which libsndfile cannot read: the PyAV path."""
    import av

    x, sr = sf.read(EXAMPLES / "meetings" / "council-budget.wav", dtype="float32")
    path = tmp_path_factory.mktemp("m4a") / "council.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=sr)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


@pytest.mark.parametrize("name", ["meetings/council-budget.wav", "lectures/astronomy.flac", "radio/weather-forecast.mp3",
                                  "radio/football-report.ogg", "m4a"])
def test_a_cut_is_that_span_of_the_full_decode(name, m4a):
    path = m4a if name == "m4a" else EXAMPLES / name
    rate = audio_info(path).sample_rate
    full = load_audio(path, rate)
    samples, got_rate = cut(path, 4.25, 9.5)
    assert got_rate == rate and samples.shape == (round(5.25 * rate), 1)
    # Lossy decoders may differ by rounding after a seek; the waveform is the same.
    np.testing.assert_allclose(samples[:, 0], full[round(4.25 * rate) : round(9.5 * rate)], atol=2e-3)


def test_a_cut_past_the_end_stops_at_the_end():
    path = EXAMPLES / "meetings" / "council-budget.wav"
    info = audio_info(path)
    samples, rate = cut(path, info.duration - 1.0, info.duration + 5.0)
    assert abs(len(samples) / rate - 1.0) < 0.01


def test_wav_bytes_round_trip():
    x = (0.5 * np.sin(np.linspace(0, 100, 8000))).astype(np.float32).reshape(-1, 1)
    y, rate = sf.read(io.BytesIO(wav_bytes(x, 8000)), dtype="float32", always_2d=True)
    assert rate == 8000 and y.shape == x.shape and np.abs(y - x).max() < 1e-4


def test_a_missing_file_is_an_audio_error(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        cut(tmp_path / "gone.wav", 0.0, 1.0)


@pytest.mark.parametrize("name, expected", [("a.mp3", "audio/mpeg"), ("a.OGG", "audio/ogg"), ("a.flac", "audio/flac"),
                                            ("a.wav", "audio/wav"), ("a.m4a", "audio/mp4"), ("a.opus", "audio/ogg")])
def test_recordings_are_served_with_the_media_type_browsers_expect(name, expected):
    assert media_type(name) == expected
