"""Contrastive training on a tiny real-speech set: the loss falls, retrieval beats chance, runs resume."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from clasp_cli.feature_cache import FeatureCache
from clasp_cli.registry import load_model
from clasp_cli.train import TrainConfig, evaluate_embeddings, evaluate_manifest, featurize, text_targets, train

WORDS = "apple river mountain budget music doctor window garden engine winter teacher ocean coffee election storm library".split()


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory, say):
    d = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    rows = []
    for i in range(32):
        w = rng.sample(WORDS, 3)
        text = f"The {w[0]} saw the {w[1]} by the {w[2]}."
        say(text, d / f"u{i}.wav", voice=rng.choice(["en", "en+m3", "en+f2"]))
        row = {"id": f"u{i}", "audio": f"u{i}.wav", "text": text}
        if i >= 28:  # a few held-out rows carry a translation, as the test subset does
            row["translations"] = {"de": f"Der {w[0]} sah den {w[1]} am {w[2]}."}
        rows.append(row)
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:24]))
    (d / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[24:]))
    return d


def _cfg(d, out, **kw) -> TrainConfig:
    base = dict(manifest=str(d / "train.jsonl"), val=str(d / "val.jsonl"), out=str(out), epochs=8, batch_size=8,
                lr=2e-3, warmup_steps=2, patience=100, cache=str(d / "cache"), device="cpu")
    return TrainConfig(**{**base, **kw})


def test_loss_falls_and_retrieval_beats_chance(tiny_corpus, tmp_path):
    losses = []
    result = train(_cfg(tiny_corpus, tmp_path / "m"), on_event=lambda k, **d: losses.append(d["loss"]) if k == "step" else None)
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3])
    # On the training sentences themselves: chance HITS@1 is 1/24.
    model = load_model(tmp_path / "m", device="cpu")
    from clasp_cli.manifest import read_manifest

    utts = read_manifest(tiny_corpus / "train.jsonl")
    feats, _ = featurize(model, utts, tiny_corpus, tiny_corpus / "cache")
    scores = evaluate_embeddings(model.embed_features(feats), text_targets(model, [u.text for u in utts], tiny_corpus / "cache"))
    assert scores.hits_at_1 >= 0.5
    assert result.best_epoch >= 1 and (tmp_path / "m" / "model.safetensors").exists()


def test_huber_loss_variant_trains(tiny_corpus, tmp_path):
    result = train(_cfg(tiny_corpus, tmp_path / "lasp", loss="huber", epochs=2))
    assert result.epochs_run == 2


def test_a_stopped_run_resumes_from_its_checkpoint(tiny_corpus, tmp_path):
    train(_cfg(tiny_corpus, tmp_path / "r", epochs=2))
    events = []
    result = train(_cfg(tiny_corpus, tmp_path / "r", epochs=4), on_event=lambda k, **d: events.append((k, d)))
    assert ("resumed", {"epoch": 2}) in events
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]


def test_features_are_computed_once(tiny_corpus, tmp_path):
    train(_cfg(tiny_corpus, tmp_path / "a", epochs=1))
    events = []
    train(_cfg(tiny_corpus, tmp_path / "b", epochs=1), on_event=lambda k, **d: events.append((k, d)))
    starts = [d for k, d in events if k == "featurize_start"]
    assert starts and all(d["todo"] == 0 for d in starts)


def test_feature_cache_survives_a_torn_index_line(tmp_path):
    c = FeatureCache(tmp_path, "ns")
    c.put({"k1": {"x": np.ones((3, 2), np.float32)}})
    with (tmp_path / "ns" / "index.jsonl").open("a") as fh:
        fh.write('{"key": "k2", "sha')  # a crash mid-write
    again = FeatureCache(tmp_path, "ns")
    assert "k1" in again and "k2" not in again
    assert again.get(["k1"])["k1"]["x"].dtype == np.float16


def test_evaluation_covers_english_and_translated_queries(tiny_corpus, tmp_path):
    train(_cfg(tiny_corpus, tmp_path / "m", epochs=1))
    ev = evaluate_manifest(load_model(tmp_path / "m", device="cpu"), tiny_corpus / "val.jsonl", tiny_corpus / "cache")
    assert ev["candidates"] == 8
    assert ev["en"]["n"] == 8 and ev["de"]["n"] == 4  # translated queries still rank all 8 recordings
    assert 1 <= ev["de"]["meanr"] <= 8


def test_stop_after_ends_early_but_keeps_the_schedule(tiny_corpus, tmp_path):
    result = train(_cfg(tiny_corpus, tmp_path / "s", epochs=6, stop_after=2))
    assert result.epochs_run == 2
    assert json.loads((tmp_path / "s" / "checkpoint" / "state.json").read_text())["config"]["epochs"] == 6


def test_the_sigmoid_loss_trains_a_head_whose_scores_separate_matches(tiny_corpus, tmp_path):
    train(_cfg(tiny_corpus, tmp_path / "sig", loss="sigmoid", epochs=10))
    model = load_model(tmp_path / "sig", device="cpu")
    assert model.config.head.score == "sigmoid"
    from clasp_cli.manifest import read_manifest

    utts = read_manifest(tiny_corpus / "train.jsonl")
    feats, _ = featurize(model, utts, tiny_corpus, tiny_corpus / "cache")
    sims = text_targets(model, [u.text for u in utts], tiny_corpus / "cache") @ model.embed_features(feats).T
    p = model.match_score(sims)
    assert np.mean(np.diag(p)) > np.mean(p[~np.eye(len(p), dtype=bool)]) + 0.2


def test_training_reads_several_manifests_each_against_its_own_folder(tiny_corpus, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    rows = [json.loads(line) for line in (tiny_corpus / "train.jsonl").read_text().splitlines()]
    (other / "more.jsonl").write_text("".join(json.dumps({**r, "audio": str(tiny_corpus / r["audio"])}) + "\n" for r in rows[:8]))
    seen = []
    result = train(
        _cfg(tiny_corpus, tmp_path / "two", manifest=[str(tiny_corpus / "train.jsonl"), str(other / "more.jsonl")], epochs=1),
        on_event=lambda k, **d: seen.append(d["n_train"]) if k == "train_start" else None,
    )
    assert seen == [32] and result.epochs_run == 1


def test_evaluation_of_foreign_speech_scores_native_and_english_queries_apart(tmp_path, say):
    from clasp_cli.config import ModelConfig
    from clasp_cli.registry import create_model, resolve_model_dir

    rows = []
    for i, (de, en) in enumerate([("Die Datei wurde gespeichert.", "The file was saved."),
                                  ("Das Netzwerk ist nicht erreichbar.", "The network is not reachable."),
                                  ("Der Drucker hat kein Papier mehr.", "The printer is out of paper.")]):
        say(de, tmp_path / f"d{i}.wav", voice="de")
        rows.append({"id": f"d{i}", "audio": f"d{i}.wav", "text": de, "lang": "de", "translations": {"en": en}})
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = create_model(ModelConfig.load(resolve_model_dir("clasp-tiny") / "config.json"), device="cpu")
    out = evaluate_manifest(model, tmp_path / "test.jsonl", cache_root=tmp_path / "cache")
    assert set(out) == {"candidates", "native", "native:de", "en"}
    assert out["native"]["n"] == out["en"]["n"] == out["native:de"]["n"] == 3


def test_training_fits_the_score_calibration_on_validation(tiny_corpus, tmp_path):
    out = tmp_path / "cal"
    events = []
    train(_cfg(tiny_corpus, out, epochs=2, val=str(tiny_corpus / "train.jsonl")), on_event=lambda k, **d: events.append(k))
    model = load_model(out, device="cpu")
    assert "calibrated" in events and (out / "background.safetensors").exists()
    assert 0 < model.default_min_score <= 1
    assert model.config.training["calibration"]["fit_candidates"] >= 10


def test_too_small_a_validation_set_trains_without_calibration(tiny_corpus, tmp_path):
    events = []
    train(_cfg(tiny_corpus, tmp_path / "nocal", epochs=1), on_event=lambda k, **d: events.append(k))
    assert "calibration_skipped" in events
    assert load_model(tmp_path / "nocal", device="cpu").default_min_score is None


def test_augmentation_of_large_float16_frames_stays_finite():
    from clasp_cli.model import AudioFeatures
    from clasp_cli.train import _augment

    frames = (np.random.default_rng(0).normal(size=(200, 512)) * 300).astype(np.float16)  # squares overflow float16
    out = _augment(AudioFeatures(frames, None), np.random.default_rng(1))
    assert out.frames.dtype == np.float16 and np.isfinite(out.frames).all()


def test_bank_negatives_with_translations_as_positives_and_a_cosine_term_train(tiny_corpus, tmp_path):
    # The training sentences get German versions, which the bank holds as extra right answers.
    rows = [json.loads(x) for x in (tiny_corpus / "train.jsonl").read_text().splitlines()]
    for r in rows:
        r["translations"] = {"de": "Auf Deutsch: " + r["text"]}
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r in rows:
        r["audio"] = str(tiny_corpus / r["audio"])
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    losses = []
    train(_cfg(tiny_corpus, tmp_path / "bank", manifest=str(tmp_path / "train.jsonl"), negatives="bank",
               positives="translations", cosine_weight=0.5, target="mean"),
          on_event=lambda k, **d: losses.append(d["loss"]) if k == "step" else None)
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    meta = json.loads((tmp_path / "bank" / "config.json").read_text())["training"]
    assert meta["negatives"] == "bank" and meta["positives"] == "translations" and meta["cosine_weight"] == 0.5


def test_a_run_started_from_a_model_with_no_learning_rate_keeps_its_vectors(tiny_corpus, tmp_path):
    train(_cfg(tiny_corpus, tmp_path / "first", epochs=2, norm="layer", use_spectrogram=False))  # BatchNorm would move its statistics
    train(_cfg(tiny_corpus, tmp_path / "again", epochs=1, lr=0.0, init=str(tmp_path / "first"), calibrate=False))
    a, b = load_model(tmp_path / "first", device="cpu"), load_model(tmp_path / "again", device="cpu")
    from clasp_cli.manifest import read_manifest

    utts = read_manifest(tiny_corpus / "val.jsonl")
    feats, _ = featurize(a, utts, tiny_corpus, tiny_corpus / "cache")
    assert np.allclose(a.embed_features(feats), b.embed_features(feats), atol=1e-5)


@pytest.mark.parametrize("bad", [{"positives": "translations"}, {"negatives": "bank", "loss": "huber"},
                                 {"init": "clasp-base", "pooling": "mean"}, {"target": "median"}])
def test_contradictory_training_options_are_usage_errors(tiny_corpus, tmp_path, bad):
    from clasp_cli.errors import UsageError

    with pytest.raises(UsageError):
        train(_cfg(tiny_corpus, tmp_path / "x", **bad))
