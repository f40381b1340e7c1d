"""Noise, reverberation and codec augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from clasp_cli.data.augment import (
    AugmentConfig,
    add_noise,
    augment,
    babble_noise,
    codec,
    draw_plan,
    reverb,
    snr_db,
    speed,
    telephone,
)
from clasp_cli.errors import UsageError

SR = 16_000


def speechlike(seed: int = 0, seconds: float = 2.0) -> np.ndarray:
    """A voiced-sounding test signal: harmonics of a wandering f0 under a syllable-rate envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)))
    return (0.3 * x * env).astype(np.float32)


@pytest.mark.parametrize("target", [0.0, 10.0, 25.0])
def test_white_noise_at_snr_x_measures_x_db(target):
    x = speechlike()
    y = add_noise(x, target, rng=1, kind="white")
    assert abs(snr_db(x, y) - target) < 0.05


def test_babble_noise_at_snr_x_measures_x_db():
    x = speechlike(0)
    sources = [speechlike(s, seconds=1.3) for s in (1, 2, 3)]
    y = add_noise(x, 10.0, rng=2, kind="babble", sources=sources)
    assert abs(snr_db(x, y) - 10.0) < 0.05
    b = babble_noise(x.size, sources, rng=3)
    assert b.shape == x.shape and np.std(b) > 0


def test_babble_without_sources_is_a_usage_error():
    with pytest.raises(UsageError):
        add_noise(speechlike(), 10.0, rng=0, kind="babble", sources=[])


def test_reverb_keeps_length_rate_and_level_and_changes_the_signal():
    x = speechlike()
    y = reverb(x, SR, rng=4, rt60=0.6)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.isclose(np.abs(y).max(), np.abs(x).max(), rtol=1e-4)
    assert snr_db(x, y) < 20  # audibly different
    assert np.array_equal(y, reverb(x, SR, rng=4, rt60=0.6))  # same seed, same room


@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_codec_round_trip_keeps_length_and_stays_aligned(fmt):
    x = speechlike()
    y = codec(x, SR, fmt, bitrate_kbps=16)
    assert y.shape == x.shape and y.dtype == np.float32
    assert 5 < snr_db(x, y) < 60  # lossy, but the same speech, time-aligned


def test_augment_is_deterministic_given_a_seed():
    cfg = AugmentConfig(noise_prob=1.0, reverb_prob=1.0, codec_prob=0.0)
    x = speechlike()
    a, plan_a = augment(x, cfg, rng=7)
    b, plan_b = augment(x, cfg, rng=7)
    c, _ = augment(x, cfg, rng=8)
    assert plan_a == plan_b and np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == x.shape and np.abs(a).max() <= 0.99 + 1e-6


def test_probabilities_outside_zero_to_one_are_rejected():
    with pytest.raises(UsageError):
        AugmentConfig(reverb_prob=1.5)
    with pytest.raises(UsageError):
        AugmentConfig(noise="pink")


def _band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_telephone_keeps_the_voice_band_and_removes_what_a_phone_line_cannot_carry():
    x = np.random.default_rng(5).standard_normal(SR).astype(np.float32) * 0.1  # flat spectrum
    y = telephone(x, SR)
    assert y.shape == x.shape and y.dtype == np.float32
    assert _band_energy(y, 4000, 8000) < 1e-3 * _band_energy(x, 4000, 8000)  # above 8 kHz sampling's Nyquist
    assert _band_energy(y, 0, 150) < 0.01 * _band_energy(x, 0, 150)
    kept = _band_energy(y, 500, 3000) / _band_energy(x, 500, 3000)
    assert 0.5 < kept < 1.5


def test_speed_perturbation_changes_the_length_by_the_factor():
    x = speechlike(seconds=2.0)
    assert abs(speed(x, 1.1, SR).size - x.size / 1.1) <= 2
    assert abs(speed(x, 0.9, SR).size - x.size / 0.9) <= 2
    assert np.array_equal(speed(x, 1.0, SR), x)


def test_plans_without_telephone_or_speed_are_the_plans_made_before_they_existed():
    # The same draws and the same file-naming key as before: a corpus built then is not rebuilt.
    plan = draw_plan(AugmentConfig(), 11)
    assert set(plan.key()) == {"rt60", "noise", "snr_db", "codec", "bitrate_kbps", "seed"}
    rng = np.random.default_rng(11)
    u = rng.random(3)
    assert plan.rt60 == (float(rng.uniform(0.2, 0.8)) if u[0] < 0.3 else None)


def test_telephone_and_speed_are_drawn_recorded_and_applied():
    cfg = AugmentConfig(noise="none", reverb_prob=0.0, codec_prob=0.0, phone_prob=1.0, speed_prob=1.0)
    x = speechlike()
    y, plan = augment(x, cfg, rng=3)
    assert plan.phone and plan.speed in (0.9, 1.1)
    assert "telephone" in plan.describe() and plan.key()["phone"] is True
    assert abs(y.size - x.size / plan.speed) <= 2


# -- augmented copies of a manifest (`clasp dataset augment`) -------------------------------------


def _clips_manifest(tmp_path, n: int = 3):
    import soundfile as sf

    from clasp_cli.manifest import Utterance, write_manifest

    src = tmp_path / "real"
    (src / "audio").mkdir(parents=True)
    rows = []
    for i in range(n):
        sf.write(src / "audio" / f"line{i}.wav", speechlike(i, 1.5), SR)
        rows.append(Utterance(id=f"line{i}", audio=f"audio/line{i}.wav", text=f"věta {i}", lang="cs", split="train",
                              translations={"en": f"sentence {i}"}))
    write_manifest(src / "train.jsonl", rows)
    return src / "train.jsonl"


def test_copies_keep_each_clips_text_and_point_at_new_audio(tmp_path):
    from clasp_cli.data.copies import CopiesConfig, make_copies
    from clasp_cli.manifest import read_manifest

    got = make_copies(CopiesConfig(manifest=_clips_manifest(tmp_path), out=tmp_path / "aug", copies=2))
    rows = read_manifest(got.manifest)
    assert got.written == len(rows) == 6 and got.made == 6
    assert sorted(r.id for r in rows) == sorted(f"line{i}~c{k}" for i in range(3) for k in (1, 2))
    assert all(r.translations == {"en": f"sentence {r.id[4]}"} and r.lang == "cs" for r in rows)
    assert all((tmp_path / "aug" / r.audio).is_file() and r.duration > 0 for r in rows)


def test_a_rerun_keeps_the_copies_already_made(tmp_path):
    from clasp_cli.data.copies import CopiesConfig, make_copies

    cfg = CopiesConfig(manifest=_clips_manifest(tmp_path), out=tmp_path / "aug", copies=2)
    first = make_copies(cfg).manifest.read_text()
    again = make_copies(cfg)
    assert (again.made, again.kept) == (0, 6) and again.manifest.read_text() == first


def test_an_unreadable_clip_is_skipped_by_name_and_the_rest_are_copied(tmp_path):
    from clasp_cli.data.copies import CopiesConfig, make_copies

    manifest = _clips_manifest(tmp_path)
    (manifest.parent / "audio" / "line1.wav").write_bytes(b"not audio at all")
    got = make_copies(CopiesConfig(manifest=manifest, out=tmp_path / "aug", copies=2))
    assert got.written == 4 and [s[0] for s in got.skipped] == ["line1"]
