"""Frozen encoders on real inputs: whisper-tiny.en on real speech, USE in several languages."""

from __future__ import annotations

import numpy as np
import pytest

from clasp_cli.audio import load_audio
from clasp_cli.encoders import build_speech_encoder, build_text_encoder
from clasp_cli.errors import ModelError, PickleRefusedError


@pytest.fixture(scope="module")
def whisper():
    return build_speech_encoder("whisper-tiny.en", device="cpu")


@pytest.fixture(scope="module")
def use():
    return build_text_encoder("use-multilingual")


def test_whisper_frames_follow_the_audio_length(whisper, speech_wav):
    w = load_audio(speech_wav)
    f = whisper.encode([w, w[: 16000]])
    assert f.frames.shape == (2, f.lengths.max(), 384)
    assert f.lengths[0] == int(np.ceil(w.size / 320)) and f.lengths[1] == 50
    assert np.all(f.frames[1, 50:] == 0)


def test_whisper_is_deterministic_and_batch_independent(whisper, speech_wav):
    w = load_audio(speech_wav)
    alone = whisper.encode([w]).unpad()[0]
    again = whisper.encode([w]).unpad()[0]
    batched = whisper.encode([np.zeros(8000, np.float32), w, w[:20000]]).unpad()[1]
    assert np.array_equal(alone, again)
    assert np.array_equal(alone, batched)


def test_whisper_handles_audio_longer_than_its_30s_window(whisper, speech_wav):
    w = np.tile(load_audio(speech_wav), 12)  # > 30 s
    assert w.size > 30 * 16000
    f = whisper.encode([w])
    assert f.lengths[0] == int(np.ceil(30 * 16000 / 320)) + int(np.ceil((w.size - 30 * 16000) / 320))


def test_finer_padding_keeps_the_true_frame_count_and_stays_close(whisper, speech_wav):
    from clasp_cli.encoders.speech import WhisperCT2Encoder

    w = load_audio(speech_wav)[:27_000]  # 1.69 s: padded to 2 s by default, to 1.8 s on a 0.2 s grid
    fine = WhisperCT2Encoder("whisper-tiny.en", pad_seconds=0.2)
    a, b = whisper.encode([w]).unpad()[0], fine.encode([w]).unpad()[0]
    assert a.shape == b.shape == (int(np.ceil(w.size / 320)), 384)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert not np.array_equal(a, b)  # the grid is applied: less silence to attend to ...
    assert cos.mean() > 0.9  # ... around the same speech


def test_padding_must_be_whole_encoder_frames():
    from clasp_cli.encoders.speech import WhisperCT2Encoder

    with pytest.raises(ModelError, match="pad_seconds"):
        WhisperCT2Encoder("whisper-tiny.en", pad_seconds=0.013)


def test_unknown_speech_encoder_lists_the_valid_ones():
    with pytest.raises(ModelError, match="whisper-tiny.en"):
        build_speech_encoder("whisper-huge")


def test_hf_hubert_from_a_local_directory(tiny_hubert_dir, speech_wav):
    enc = build_speech_encoder(f"hf:{tiny_hubert_dir}")
    w = load_audio(speech_wav)
    f = enc.encode([w, w[:16000]])
    assert enc.dim == 32 and f.frames.shape[2] == 32
    assert f.lengths[1] == 49  # wav2vec2's conv stack: 1 s -> 49 frames
    assert np.array_equal(enc.encode([w]).unpad()[0], f.unpad()[0])


def test_hf_directory_with_only_pickled_weights_is_refused(tiny_hubert_dir, tmp_path):
    d = tmp_path / "pickled"
    d.mkdir()
    (d / "config.json").write_text((tiny_hubert_dir / "config.json").read_text())
    (d / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(PickleRefusedError):
        build_speech_encoder(f"hf:{d}")


def test_use_embeds_three_languages_to_unit_vectors(use):
    texts = ["Where is the train station?", "Wo ist der Bahnhof?", "¿Dónde está la estación de tren?", "I like green apples."]
    x = use.encode(texts)
    assert x.shape == (4, 512) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # translations land closer to each other than to an unrelated sentence
    assert x[0] @ x[1] > x[0] @ x[3] and x[0] @ x[2] > x[0] @ x[3]
    assert np.array_equal(x, use.encode(texts))


def test_bundled_sentence_transformer(use):
    st = build_text_encoder("all-MiniLM-L6-v2")
    x = st.encode(["a cat sits on the mat", "a kitten rests on a rug", "stock prices fell sharply"])
    assert x.shape == (3, 384)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2]


def test_empty_text_batch(use):
    assert use.encode([]).shape == (0, 512)
