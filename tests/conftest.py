"""Shared fixtures: real speech made with espeak-ng, and a tiny HuBERT built from a config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest


def _need(program: str) -> None:
    if shutil.which(program) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is required in CI (make test installs it)")
        pytest.skip(f"{program} not installed (make test installs it)")


def speak(text: str, path: Path, voice: str = "en") -> Path:
    """Synthesise real speech to a wav file with espeak-ng (22.05 kHz, as espeak writes it)."""
    _need("espeak-ng")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    return speak("The committee approved the budget for the new library on Tuesday.", tmp_path_factory.mktemp("speech") / "budget.wav")


@pytest.fixture(scope="session")
def tiny_hubert_dir(tmp_path_factory) -> Path:
    """A random-weight HuBERT saved as safetensors: exercises the real HF loading path offline."""
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16, 16, 16, 16, 16, 16), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )
    d = tmp_path_factory.mktemp("tiny-hubert")
    import torch

    torch.manual_seed(0)
    HubertModel(cfg).save_pretrained(d, safe_serialization=True)
    return d


@pytest.fixture
def tone() -> np.ndarray:
    t = np.arange(16000, dtype=np.float32) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.fixture(scope="session")
def say():
    """The espeak-ng synthesiser as a fixture: say(text, path, voice="en") -> path."""
    return speak


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A clasp-tiny-shaped model with a random head, saved like a real one (behaviour tests
    that do not depend on retrieval quality use it; the shipped weights have their own tests)."""
    from clasp_cli.config import ModelConfig
    from clasp_cli.registry import create_model

    cfg = ModelConfig.load(Path(__file__).parents[1] / "clasp_cli/models/clasp-tiny/config.json")
    cfg.name = "test-random"
    d = tmp_path_factory.mktemp("model") / "test-random"
    create_model(cfg, device="cpu", seed=0).save(d)
    return d
