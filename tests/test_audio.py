"""Decoding: any common format -> mono 16 kHz float32; bad files -> AudioError naming the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clasp_cli.audio import audio_info, load_audio, stream_audio
from clasp_cli.errors import AudioError, PartialAudioWarning

SR = 44_100


def _signal(seconds: float = 1.0, sr: int = SR, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    left = 0.4 * np.sin(2 * np.pi * 300 * t)
    right = 0.2 * np.sin(2 * np.pi * 500 * t)
    return np.stack([left, right], axis=1)[:, :channels].astype(np.float32)


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")])
def test_soundfile_formats_decode_to_mono_16k(tmp_path, fmt, ext):
    p = tmp_path / f"a.{ext}"
    sf.write(p, _signal(1.0), SR, format=fmt)
    x = load_audio(p)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(x.size - 16000) < 1600  # codecs may add priming samples
    assert 0.05 < np.abs(x).max() <= 1.0


def _write_m4a(path: Path, seconds: float = 1.0) -> None:
    import av

    x = _signal(seconds, SR, 1)[:, 0]
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=SR)
        s.layout = "mono"
        frame_len = 1024
        for i in range(0, x.size, frame_len):
            f = av.AudioFrame.from_ndarray(x[None, i : i + frame_len].copy(), format="flt", layout="mono")
            f.sample_rate = SR
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)


def test_m4a_decodes_through_pyav(tmp_path):
    p = tmp_path / "a.m4a"
    _write_m4a(p)
    assert audio_info(p).backend == "pyav"
    x = load_audio(p)
    assert x.dtype == np.float32 and abs(x.size - 16000) < 1600


def test_stereo_is_averaged_to_mono(tmp_path):
    p = tmp_path / "s.wav"
    x = np.zeros((16000, 2), np.float32)
    x[:, 0], x[:, 1] = 0.5, -0.5
    sf.write(p, x, 16000)
    assert np.allclose(load_audio(p), 0.0, atol=1e-4)


def test_blocks_concatenate_to_the_whole_file(tmp_path):
    p = tmp_path / "long.flac"
    sf.write(p, _signal(7.3, SR, 1), SR)
    blocks = list(stream_audio(p, block_seconds=2.0))
    assert all(b.size == 32000 for b in blocks[:-1])
    whole = load_audio(p)
    assert np.allclose(np.concatenate(blocks), whole, atol=1e-6)


def test_max_seconds_stops_early(tmp_path):
    p = tmp_path / "long.wav"
    sf.write(p, _signal(5.0, 16000, 1), 16000)
    assert load_audio(p, max_seconds=1.5).size == 24000


def test_odd_file_names_are_fine(tmp_path):
    p = tmp_path / "Interview – Zoë's notes (draft #2) 日本.wav"
    sf.write(p, _signal(0.5, 16000, 1), 16000)
    assert load_audio(p).size == 8000


def _assert_error(path: Path, reason: str) -> None:
    with pytest.raises(AudioError) as e:
        load_audio(path)
    assert str(path) in str(e.value) and reason in str(e.value)
    assert "\n" not in str(e.value)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    _assert_error(p, "empty file")


def test_truncated_header(tmp_path, speech_wav):
    p = tmp_path / "cut.wav"
    p.write_bytes(speech_wav.read_bytes()[:30])
    _assert_error(p, "not a readable audio file")


def test_truncated_data_keeps_what_is_there(tmp_path, speech_wav):
    # An interrupted copy: the header promises more than is there. Decode the part that exists.
    p = tmp_path / "half.wav"
    data = speech_wav.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    full = load_audio(speech_wav)
    with pytest.warns(PartialAudioWarning, match="the file ends early"):
        half = load_audio(p)
    assert 0.4 * full.size < half.size < 0.6 * full.size


def test_random_bytes_named_wav(tmp_path):
    p = tmp_path / "noise.wav"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    _assert_error(p, "not a readable audio file")


def test_zero_length_audio(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros((0,), np.float32), 16000)
    _assert_error(p, "no audio samples")


def test_text_file_is_not_audio(tmp_path):
    p = tmp_path / "notes.mp3"
    p.write_text("meeting notes, not a recording\n" * 20)
    _assert_error(p, "not a readable audio file")


def test_missing_file(tmp_path):
    _assert_error(tmp_path / "nope.wav", "file not found")


def test_directory(tmp_path):
    _assert_error(tmp_path, "is a directory")


def test_broken_symlink(tmp_path):
    p = tmp_path / "link.wav"
    p.symlink_to(tmp_path / "gone.wav")
    _assert_error(p, "broken symbolic link")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_file(tmp_path):
    p = tmp_path / "locked.wav"
    sf.write(p, _signal(0.2, 16000, 1), 16000)
    p.chmod(0)
    _assert_error(p, "permission denied")


def test_stderr_survives_two_threads_opening_mp3s_at_once():
    # The interleaving two threads produce (the speaker pass and the reader each opening an MP3):
    # both hush fd 2, the first leaves, then the second. Everything written after must still show.
    from clasp_cli.audio import _quiet_native_stderr

    def where() -> tuple[int, int]:
        st = os.fstat(2)
        return st.st_dev, st.st_ino

    before = where()
    first, second = _quiet_native_stderr(), _quiet_native_stderr()
    first.__enter__()
    second.__enter__()
    assert where() != before  # hushed
    first.__exit__(None, None, None)
    assert where() != before  # still hushed: the second is still opening its file
    second.__exit__(None, None, None)
    assert where() == before
