"""Fused search: the CLASP vector, the transcript's vector and its words in one match probability."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from clasp_cli.fusion import FusionWeights, fit, fuse, word_share
from clasp_cli.indexer import index_paths
from clasp_cli.search import Searcher
from clasp_cli.store import MIGRATIONS, Store
from clasp_cli.transcribe import looped

from conftest import drop_languages

EXAMPLES = Path(__file__).parents[1] / "examples"
QUESTIONS = json.loads((EXAMPLES / "questions.json").read_text())


def test_a_window_without_a_transcript_keeps_its_clasp_probability():
    p = np.array([0.3, 0.2])
    out = fuse(p, np.array([0.9, 0.0]), np.array([1.0, 0.0]), np.array([0.5, 0.0]), np.array([True, False]), FusionWeights())
    assert out[1] == pytest.approx(0.2) and out[0] != pytest.approx(0.3)


def test_a_transcript_that_says_the_query_outranks_one_that_does_not():
    w = FusionWeights(clasp=1.0, text=10.0, keyword=2.0, bias=-6.0)
    out = fuse(np.array([0.2, 0.2]), np.array([0.8, 0.1]), np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([True, True]), w)
    assert out[0] > 0.5 > out[1]


def test_the_agreement_term_moves_a_windows_score_by_its_own_speech_and_transcript():
    w = FusionWeights(clasp=1.0, text=10.0, keyword=2.0, agree=-4.0, bias=-6.0)
    out = fuse(np.array([0.3, 0.3]), np.array([0.6, 0.6]), np.array([0.5, 0.5]), np.array([0.9, 0.2]), np.array([True, True]), w)
    assert out[1] > out[0]


def test_the_fit_recovers_the_direction_of_the_evidence():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=400), rng.normal(size=400), rng.uniform(size=400), np.ones(400)])
    y = (x[:, 0] + 3 * x[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(float)
    w = fit(x, y)
    assert w[1] > w[0] > 0


def test_the_share_of_query_words_is_case_and_punctuation_blind():
    assert word_share({"rain", "weekend"}, "Heavy RAIN at the weekend.") == 1.0
    assert word_share({"regen", "wochenende"}, "Rain at the weekend.") == 0.0
    assert word_share(set(), "anything") == 0.0


def test_the_shipped_model_names_its_fitted_fusion_weights(shipped_model):
    w = FusionWeights.from_config(shipped_model.config.fusion)
    assert shipped_model.config.fusion and w.clasp > 0 and w.text > 0 and w.min_score is not None


def test_a_default_index_answers_every_example_question_with_the_right_recording(examples_transcribed, shipped_model):
    with Searcher(examples_transcribed, model=shipped_model) as s:
        tops = [s.search(q["query"], top_k=3).results[0] for q in QUESTIONS]
    wrong = [(q["query"], Path(t.path).name) for q, t in zip(QUESTIONS, tops) if not t.path.endswith(q["answer"])]
    assert wrong == []
    assert all(t.text for t in tops)  # what was said comes with each hit


def test_no_transcript_of_the_example_archive_repeats_itself(examples_transcribed):
    with Store.open(examples_transcribed) as st:
        texts = [t for (t,) in st.db.execute("SELECT text FROM transcripts")]
    assert len(texts) > 20 and [t for t in texts if looped(t)] == []


def test_the_best_hit_does_not_depend_on_how_many_are_asked_for(examples_transcribed, shipped_model):
    with Searcher(examples_transcribed, model=shipped_model) as s:
        for q in ("stars", "rain", "budget"):
            one = s.search(q, top_k=1).results
            three = s.search(q, top_k=3).results
            assert (one[0].path, one[0].start) == (three[0].path, three[0].start)


def test_scores_are_probabilities_and_auto_threshold_hides_nonsense(examples_transcribed, shipped_model):
    with Searcher(examples_transcribed, model=shipped_model) as s:
        hits = s.search("how are stars born").results
        assert all(0.0 <= r.score <= 1.0 for r in hits)
        assert s.search("🙂🙂🙂", min_score="auto").results == []
        assert s.search("how are stars born", min_score="auto").results


def test_the_auto_level_is_this_indexs_own_noise_level(examples_transcribed, shipped_model):
    from clasp_cli.calibration import nonsense_queries
    from clasp_cli.search import NOISE_QUERIES

    with Searcher(examples_transcribed, model=shipped_model) as s:
        level = s.noise_level(fused=True)
        # Each query is held to the level of the half of the fusion it is scored in (USE's languages or the others).
        best = [((s.search(q, top_k=1).results or [None])[0], s.noise_level(True, q)) for q in nonsense_queries(NOISE_QUERIES)]
        kept = [b for b, lv in best if b is not None and b.score >= lv]
        assert len(kept) <= 0.05 * NOISE_QUERIES
        assert s.search("how are stars born", weak_level=True).auto_min_score == level
        assert s.search("how are stars born").auto_min_score is None  # measured only when asked


def test_every_demo_answer_scores_above_the_weak_match_level(examples_transcribed, shipped_model):
    with Searcher(examples_transcribed, model=shipped_model) as s:
        for q in QUESTIONS:
            top = s.search(q["query"], top_k=1, min_score="auto").results
            assert top and top[0].path.endswith(q["answer"]), q["query"]


def test_a_window_whose_transcript_has_not_landed_yet_is_still_found(tmp_path, examples_transcribed, shipped_model):
    import shutil

    d = tmp_path / "index"
    shutil.copytree(examples_transcribed, d)
    db = sqlite3.connect(d / "index.sqlite")  # as during fill-in: some windows not yet transcribed
    pid = db.execute("SELECT p.id FROM passages p JOIN files f ON p.file_id=f.id WHERE f.path LIKE '%astronomy%' "
                     "ORDER BY p.start LIMIT 1").fetchone()[0]
    with db:
        db.execute("DELETE FROM transcripts WHERE passage_id=?", (pid,))
    db.close()
    with Searcher(d, model=shipped_model) as s:
        res = s.search("how stars are born inside clouds of gas", top_k=5).results
        cands = s.candidates("how stars are born inside clouds of gas")
    assert any(r.passage_id == pid for r in res)
    j = cands.ids.index(pid)
    assert not cands.has_text[j]


def _as_previous_version(index: Path) -> None:
    """Turn an index into what the previous clasp wrote: transcripts without text vectors."""
    db = sqlite3.connect(index / "index.sqlite")
    drop_languages(db)
    db.executescript("DROP TRIGGER transcripts_au_vector; DROP TABLE transcript_vectors; PRAGMA user_version=3;")
    db.close()
    for name in ("transcripts.hnsw", "transcripts.json"):
        (index / name).unlink(missing_ok=True)


def test_an_index_transcribed_by_the_previous_version_gains_text_vectors_without_transcribing_again(
        tmp_path, recordings, model, monkeypatch):
    d = tmp_path / "index"
    index_paths([recordings], d, model=model, transcribe=True)
    _as_previous_version(d)
    from clasp_cli.transcribe import Transcriber

    def refuse(*_a, **_k):
        raise AssertionError("transcribed again")

    from clasp_cli.reading.reader import ChunkReader

    monkeypatch.setattr(Transcriber, "transcribe_batch", refuse)
    monkeypatch.setattr(Transcriber, "transcribe_encoded", refuse)
    monkeypatch.setattr(ChunkReader, "read", refuse)
    index_paths([recordings], d, model=model)
    with Store.open(d) as st:
        spoken = st.db.execute("SELECT COUNT(*) FROM transcripts WHERE trim(text) != ''").fetchone()[0]
        assert st.db.execute("SELECT COUNT(*) FROM transcript_vectors").fetchone()[0] == spoken > 0
        assert st.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert st.check() == []


def test_repair_fills_in_text_vectors_of_an_index_from_the_previous_version(tmp_path, recordings, model, model_dir):
    from clasp_cli.repair import repair_index

    d = tmp_path / "index"
    index_paths([recordings], d, model=model, transcribe=True)
    _as_previous_version(d)
    with Store.open(d, write=True):  # the migration alone: the table is there, still empty
        pass
    report = repair_index(d, model=model)
    assert any("without a text vector" in p for p in report.problems) and report.remaining == []
    with Store.open(d) as st:
        assert st.transcripts_without_vectors() == []


def test_a_read_only_index_with_transcripts_is_searched_fused(tmp_path, recordings, model, read_only):
    d = tmp_path / "index"
    index_paths([recordings], d, model=model, transcribe=True)
    before = sorted(p.name for p in d.iterdir())
    read_only(d)
    with Searcher(d, model=model) as s:
        res = s.search("the council approved the budget", top_k=2).results
    assert res and res[0].text and sorted(p.name for p in d.iterdir()) == before


def test_a_read_only_index_from_the_previous_version_embeds_its_transcripts_in_memory(tmp_path, recordings, model, read_only):
    d = tmp_path / "index"
    index_paths([recordings], d, model=model, transcribe=True)
    _as_previous_version(d)
    read_only(d)
    with Searcher(d, model=model) as s:
        cands = s.candidates("the council approved the budget")
    assert cands.has_text.all()


def test_the_json_schema_keeps_its_keys(examples_transcribed, shipped_model):
    with Searcher(examples_transcribed, model=shipped_model) as s:
        doc = s.search("how are stars born", top_k=2).to_json()
    assert set(doc) == {"query", "results"}
    for row in doc["results"]:
        assert set(row) == {"rank", "score", "path", "start", "end", "passage_start", "passage_end", "text", "language", "speaker"}
        assert set(row["speaker"]) == {"id", "name"}


KILL_DURING_FILL_IN = """
import os, signal, sys
from clasp_cli.indexer import index_paths
from clasp_cli.registry import load_model
from clasp_cli.store import Store


real_put = Store.put_transcripts
def put_then_die(self, *args, **kwargs):
    real_put(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
Store.put_transcripts = put_then_die
index_paths([sys.argv[2]], sys.argv[1], model=load_model(sys.argv[3], device="cpu"), transcribe=True)
"""


def _fill_in_invariants(index: Path) -> tuple[int, int]:
    db = sqlite3.connect(index / "index.sqlite")
    try:
        db.execute("INSERT INTO transcripts_fts(transcripts_fts, rank) VALUES('integrity-check', 1)")  # raises if out of step
        n = db.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0]
        assert db.execute("SELECT COUNT(*) FROM transcripts_fts").fetchone()[0] == n
        spoken = db.execute("SELECT COUNT(*) FROM transcripts WHERE trim(text) != ''").fetchone()[0]
        assert db.execute("SELECT COUNT(*) FROM transcript_vectors").fetchone()[0] == spoken
        return n, db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
    finally:
        db.close()


def test_a_kill_during_fill_in_keeps_what_was_committed_and_a_rerun_finishes(tmp_path, recordings, model, model_dir):
    import subprocess
    import sys

    d = tmp_path / "index"
    index_paths([recordings], d, model=model)  # embedded, no transcripts
    r = subprocess.run([sys.executable, "-c", KILL_DURING_FILL_IN, str(d), str(recordings), str(model_dir)])
    assert r.returncode == -9
    done, passages = _fill_in_invariants(d)
    assert 0 < done < passages
    with Searcher(d, model=model) as s:  # searchable in between, fused where transcripts landed
        assert s.search("the council approved the budget").results
    index_paths([recordings], d, model=model, transcribe=True)
    done, passages = _fill_in_invariants(d)
    assert done == passages
    with Store.open(d) as st:
        assert st.check() == []


def _worded_store(d: Path, texts: list[str], model_id: str = "test", dim: int = 8) -> Store:
    rng = np.random.default_rng(0)
    st = Store.open(d, write=True, model_id=model_id, dim=dim)
    vecs = rng.standard_normal((len(texts), dim)).astype(np.float32)
    st.replace_file("/a.wav", 1, 1.0, None, len(texts) * 5.0, [(i * 5.0, i * 5.0 + 5) for i in range(len(texts))],
                    vecs, texts=texts, text_vectors=vecs)
    return st


def test_a_word_in_more_than_half_the_transcripts_leaves_the_keyword_list(tmp_path):
    texts = ["the rain"] + ["the sun"] * 5 + ["a moon"] * 4
    with _worded_store(tmp_path / "i", texts) as st:
        assert st.selective_terms(['"the"', '"rain"', '"moon"'], budget=100) == ['"rain"', '"moon"']


def test_the_keyword_list_takes_words_rarest_first_within_its_budget(tmp_path):
    texts = ["rain"] + ["moon"] * 3 + ["sun"] * 4 + ["other"] * 12
    with _worded_store(tmp_path / "i", texts) as st:
        assert st.selective_terms(['"sun"', '"moon"', '"rain"'], budget=5) == ['"rain"', '"moon"']
        assert st.selective_terms(['"unsaid"', '"rain"'], budget=5) == ['"rain"']


def test_hybrid_still_finds_a_window_only_its_rare_word_points_to(tmp_path, model):
    texts = ["the weather is fine"] * 600 + ["the zeppelin lands at noon"]  # more windows than the vector lists offer
    with _worded_store(tmp_path / "i", texts, model.id, model.dim) as st:
        st.set_meta("transcribe", "1")
    with Searcher(tmp_path / "i", model=model) as s:
        cands = s.candidates("the zeppelin", top_k=1)
        by_vector = s.candidates("the zeppelin", top_k=1, mode="vector")
    with Store.open(tmp_path / "i") as st:
        rare = st.keyword_search('"zeppelin"')[0].passage_id
    assert rare in cands.ids and rare not in by_vector.ids


def test_a_reopened_index_of_about_the_same_size_keeps_its_noise_level(examples_transcribed, shipped_model):
    with Searcher(examples_transcribed, model=shipped_model) as a, Searcher(examples_transcribed, model=shipped_model) as b:
        a._noise["hybrid"] = 0.5  # as if measured; b opens the same index
        b.inherit_noise_levels(a)
        assert b.noise_level(fused=True) == 0.5


def test_an_index_that_grew_by_more_than_a_tenth_measures_its_noise_level_again(tmp_path, examples_transcribed, shipped_model):
    small = tmp_path / "small"
    index_paths([EXAMPLES / "archive" / "radio" / "weather-forecast.mp3"], small, model=shipped_model, transcribe=False)
    with Searcher(small, model=shipped_model) as a, Searcher(examples_transcribed, model=shipped_model) as b:
        a._noise["vector"] = 0.5
        b.inherit_noise_levels(a)
        assert b.noise_level(fused=False) != 0.5
