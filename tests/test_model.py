"""The CLASP model: fusion head variants, save/load, the registry, and pickle refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clasp_cli.audio import load_audio
from clasp_cli.config import FUSIONS, POOLINGS, HeadConfig, ModelConfig
from clasp_cli.errors import ModelError, PickleRefusedError
from clasp_cli.registry import create_model, list_models, load_model


def _config(**head) -> ModelConfig:
    return ModelConfig(name="test", head=HeadConfig(speech_dim=384, out_dim=512, **head))


@pytest.fixture(scope="module")
def wave(speech_wav):
    return load_audio(speech_wav)


@pytest.fixture(scope="module")
def base_model():
    return create_model(_config(), device="cpu", seed=0)


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_every_fusion_and_pooling_gives_unit_vectors_of_the_text_dim(fusion, pooling, wave, base_model):
    model = create_model(_config(fusion=fusion, pooling=pooling), device="cpu")
    model._speech = base_model.speech  # share the frozen encoder; only the head differs
    e = model.embed_audio([wave, wave[:12000]])
    assert e.shape == (2, 512) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_head_without_spectrogram_branch(wave, base_model):
    model = create_model(_config(use_spectrogram=False), device="cpu")
    model._speech = base_model.speech
    assert model.audio_features([wave])[0].mel is None
    assert model.embed_audio([wave]).shape == (1, 512)


def test_same_input_same_output_alone_or_in_a_batch(wave, base_model):
    alone = base_model.embed_audio([wave])
    assert np.array_equal(alone, base_model.embed_audio([wave]))
    batched = base_model.embed_audio([wave[:5000], wave, wave[:30000]])
    assert np.allclose(alone[0], batched[1], atol=1e-5)


def test_text_side_uses_the_text_encoder(base_model):
    x = base_model.embed_text(["hello", "bonjour", "こんにちは"])
    assert x.shape == (3, 512)


def test_save_then_load_reproduces_outputs_exactly(tmp_path, wave, base_model):
    before = base_model.embed_audio([wave])
    base_model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_model(tmp_path / "m", device="cpu")
    # On the CPU a loaded model runs the numpy head: the same vector to float rounding.
    assert np.allclose(loaded.embed_audio([wave]), before, atol=1e-5)
    loaded.head  # noqa: B018 - the torch head, as training has it: bit for bit
    assert np.array_equal(loaded.embed_audio([wave]), before)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["versions"]["clasp"] and cfg["training"]["weights_sha256"]


def test_pickle_file_is_refused(tmp_path):
    p = tmp_path / "CLASP_Concat_Final_Fusion_Encoder.pt"
    p.write_bytes(b"\x80\x04pickle")
    with pytest.raises(PickleRefusedError, match="pickle"):
        load_model(p)


def test_directory_of_pickles_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(_config().to_dict()))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(PickleRefusedError):
        load_model(tmp_path)


def test_weights_that_do_not_match_the_config_are_named(tmp_path, base_model):
    base_model.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["head"]["fusion"] = "gating"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="do not match"):
        load_model(tmp_path / "m", device="cpu").head


def test_unknown_model_name_lists_the_registry():
    with pytest.raises(ModelError, match="clasp-tiny"):
        load_model("no-such-model")


def test_config_rejects_unknown_settings(tmp_path):
    d = _config().to_dict()
    d["head"]["fussion"] = "concat"
    (tmp_path / "config.json").write_text(json.dumps(d))
    with pytest.raises(ModelError, match="fussion"):
        ModelConfig.load(tmp_path / "config.json")


def test_config_rejects_unknown_fusion():
    with pytest.raises(ModelError, match="concat"):
        HeadConfig(fusion="sum")


def test_registry_lists_the_default_model():
    names = [e.name for e in list_models()]
    assert "clasp-tiny" in names


def test_saved_files_get_ordinary_permissions(tmp_path, base_model):
    import os

    base_model.save(tmp_path / "m")
    umask = os.umask(0)
    os.umask(umask)
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "m" / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_transformer_pooling_gives_the_same_output_alone_or_in_a_batch(wave, base_model):
    model = create_model(_config(pooling="transformer", norm="layer", use_spectrogram=False), device="cpu")
    model._speech = base_model.speech
    alone = model.embed_audio([wave])
    batched = model.embed_audio([wave[:5000], wave, wave[:30000]])
    assert np.allclose(alone[0], batched[1], atol=1e-5)


def test_a_sigmoid_head_scores_match_probabilities_read_back_without_the_head(tmp_path, base_model):
    model = create_model(_config(score="sigmoid", use_spectrogram=False), device="cpu")
    model.save(tmp_path / "m")
    cos = np.array([-0.2, 0.1, 0.4, 0.9])
    direct = model.match_score(cos)
    loaded = load_model(tmp_path / "m", device="cpu")
    read_back = loaded.match_score(cos)
    assert loaded._head is None  # read from the weights file with numpy, no torch head built
    assert np.allclose(direct, read_back)
    assert np.all((read_back > 0) & (read_back < 1)) and np.all(np.diff(read_back) > 0)


def test_a_cosine_head_scores_are_the_cosines(base_model):
    assert np.array_equal(base_model.match_score(np.array([0.25, 0.5])), np.array([0.25, 0.5]))


def test_config_rejects_unknown_norm_and_score():
    with pytest.raises(ModelError, match="norm"):
        HeadConfig(norm="group")
    with pytest.raises(ModelError, match="score"):
        HeadConfig(score="softmax")


def test_frames_are_averaged_in_groups_with_a_shorter_last_group():
    from clasp_cli.model import downsample_frames

    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    assert downsample_frames(x, 2).tolist() == [[1, 2], [5, 6], [8, 9]]
    assert downsample_frames(x, 1) is x


def test_a_downsampling_head_embeds_an_utterance_the_same_alone_or_in_a_batch(model_dir):
    from clasp_cli.model import AudioFeatures
    from clasp_cli.registry import create_model
    from clasp_cli.config import ModelConfig

    cfg = ModelConfig.load(model_dir / "config.json")
    cfg.head.frame_downsample = 2
    m = create_model(cfg, device="cpu", seed=0)
    rng = np.random.default_rng(0)
    feats = [AudioFeatures(rng.normal(size=(t, cfg.head.speech_dim)).astype(np.float32),
                           rng.normal(size=(cfg.head.mel_bins, 2 * t)).astype(np.float32)) for t in (37, 80)]
    both = m.embed_features(feats)
    assert np.allclose(both[0], m.embed_features(feats[:1])[0], atol=1e-5)
