"""Calibrated scores: a query's cosines against a background bank become match probabilities,
and the model's default --min-score keeps nonsense queries out while true matches stay in."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from clasp_cli.calibration import ScoreCalibration, fit_calibration, nonsense_queries


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _toy_space(n: int = 600, dim: int = 128, seed: int = 0):
    """Speech near its own text; nonsense queries near the centre of everything (close to all, to none in particular)."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=dim)
    text = _unit(centre + rng.normal(size=(n, dim)) * 2.0)
    speech = _unit(text + rng.normal(size=(n, dim)) * 0.05)
    junk = _unit(centre + rng.normal(size=(200, dim)) * 0.3)
    return speech, text, junk


def test_nonsense_queries_are_reproducible_and_varied():
    a, b = nonsense_queries(90, seed=3), nonsense_queries(90, seed=3)
    assert a == b and len(set(a)) > 60
    assert nonsense_queries(90, seed=4) != a


def test_fitted_scores_keep_nonsense_out_and_matches_in():
    speech, text, junk = _toy_space()
    cal, report = fit_calibration(speech, text, junk, bank_size=200, max_false=0.02)
    assert 0 < cal.min_score < 1
    assert report["nonsense_above"] <= 0.02
    assert report["true_above"] >= 0.9


def test_calibration_never_changes_a_ranking():
    speech, text, junk = _toy_space()
    cal, _ = fit_calibration(speech, text, junk, bank_size=200)
    q = text[7]
    cos = speech @ q
    assert np.array_equal(np.argsort(-cos, kind="stable"), np.argsort(-cal.probability(q, cos), kind="stable"))
    p = cal.probability(q, cos)
    assert ((p >= 0) & (p <= 1)).all()


def test_a_saved_calibration_loads_back_the_same(tmp_path):
    speech, text, junk = _toy_space()
    cal, _ = fit_calibration(speech, text, junk, bank_size=200)
    cfg = cal.save(tmp_path)
    back = ScoreCalibration.load(tmp_path, cfg)
    q = text[3]
    assert np.allclose(back.probability(q, speech @ q), cal.probability(q, speech @ q), atol=2e-3)
    assert back.min_score == pytest.approx(cal.min_score, abs=1e-4)


def test_a_damaged_bank_is_a_model_error(tmp_path):
    from clasp_cli.errors import ModelError

    speech, text, junk = _toy_space()
    cfg = fit_calibration(speech, text, junk, bank_size=200)[0].save(tmp_path)
    (tmp_path / cfg["bank"]).write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="calibration bank"):
        ScoreCalibration.load(tmp_path, cfg)


@pytest.fixture
def calibrated_model(model_dir, tmp_path):
    """The random-head test model with a calibration fitted on its own text space."""
    from clasp_cli.registry import load_model

    d = tmp_path / "calibrated"
    shutil.copytree(model_dir, d)
    m = load_model(d, device="cpu")
    texts = [f"sentence number {i} about topic {i % 7}" for i in range(120)]
    text = m.embed_text(texts)
    speech = _unit(text + np.random.default_rng(0).normal(size=text.shape) * 0.02)
    m.calibrator, _ = fit_calibration(speech, text, m.embed_text(nonsense_queries(60)), bank_size=40)
    m.save(d)
    return d


def test_a_calibrated_model_reports_its_default_min_score(calibrated_model):
    from clasp_cli.registry import load_model

    m = load_model(calibrated_model, device="cpu")
    assert m.default_min_score is not None and 0 < m.default_min_score < 1
    q = m.embed_text(["hello"])[0]
    assert 0 <= float(m.match_score(0.3, q)) <= 1
    assert float(m.match_score(0.3)) == pytest.approx(0.3)  # no query vector: the plain cosine


def test_search_applies_the_default_only_when_asked(calibrated_model, tmp_path, speech_wav):
    from clasp_cli.indexer import index_paths
    from clasp_cli.registry import load_model
    from clasp_cli.search import Searcher

    m = load_model(calibrated_model, device="cpu")
    idx = tmp_path / "idx"
    index_paths([speech_wav], idx, model=m)
    with Searcher(idx, model=m) as s:
        everything = s.search("the committee approved the budget", top_k=5)
        auto = s.search("the committee approved the budget", top_k=5, min_score="auto")
        level = s.noise_level(fused=False)  # what auto applies on an index without transcripts
    assert everything.results
    assert all(r.score >= level for r in auto.results)
    assert len(auto.results) <= len(everything.results)


def test_a_model_without_calibration_has_no_default(model_dir):
    from clasp_cli.registry import load_model

    assert load_model(model_dir, device="cpu").default_min_score is None


def test_the_benchmark_check_reports_each_query_set_against_the_default(calibrated_model):
    from clasp_cli.benchmark.scoring import calibration_check
    from clasp_cli.registry import load_model

    m = load_model(calibrated_model, device="cpu")
    texts = [f"a sentence about subject {i}" for i in range(30)]
    q = m.embed_text(texts)
    emb = _unit(q + np.random.default_rng(1).normal(size=q.shape) * 0.02)
    de = m.embed_text([f"ein Satz über Thema {i}" for i in range(10)])
    check = calibration_check(m, emb, q, m.embed_text(nonsense_queries(30, seed=1)), {"de": (de, emb, np.arange(10))})
    assert check["min_score"] == m.default_min_score and check["n_nonsense"] == 30
    for name, n in (("en", 30), ("de", 10)):
        assert check[name]["n"] == n
        assert 0 <= check[name]["true_above"] <= 1 and 0 <= check[name]["nonsense_above"] <= 1


def test_the_cli_takes_auto_or_a_number_for_min_score_and_names_a_bad_value(model_dir, tmp_path, speech_wav):
    from typer.testing import CliRunner

    from clasp_cli.cli import app

    idx = str(tmp_path / "idx")
    runner = CliRunner()
    assert runner.invoke(app, ["index", str(speech_wav), "--index", idx, "--model", str(model_dir)]).exit_code == 0
    # A model without a calibration has no threshold: auto hides nothing.
    assert runner.invoke(app, ["search", "the budget", "--index", idx, "--min-score", "auto", "--json"]).exit_code == 0
    bad = runner.invoke(app, ["search", "the budget", "--index", idx, "--min-score", "high"])
    assert bad.exit_code == 2 and "--min-score" in bad.output
