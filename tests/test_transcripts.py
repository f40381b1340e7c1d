"""What was said: grouping hits, the transcript cache behind `--rerank`, `clasp index --transcribe`,
keyword and hybrid search, and the "text" key of the JSON output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clasp_cli.cli import app, optional_values
from clasp_cli.indexer import index_paths
from clasp_cli.search import DEFAULT_RERANK, Searcher, fts_query, group_hits
from clasp_cli.store import Store

from conftest import drop_languages

BASE_KEYS = {"rank", "score", "path", "start", "end", "passage_start", "passage_end"}


class CountingReader:
    """The real reader, counting the windows a search asks it to read."""

    def __init__(self):
        self.windows = 0


def counting(monkeypatch) -> CountingReader:
    import clasp_cli.reading.recording as recording

    spy, real = CountingReader(), recording.read_recording

    def read_recording(reader, spans, audio_of, prior=None, forced=None, wanted=None):
        spy.windows += len(spans) if wanted is None else len(wanted)
        return real(reader, spans, audio_of, prior, forced, wanted)

    monkeypatch.setattr(recording, "read_recording", read_recording)
    return spy


def cached(index: Path) -> dict[int, str]:
    with Store.open(index) as s:
        return dict(s.db.execute("SELECT passage_id, text FROM transcripts").fetchall())


@pytest.fixture(scope="module")
def plain_index(tmp_path_factory, recordings, model) -> Path:
    """The four recordings, embedded only (each test that writes transcripts copies it)."""
    d = tmp_path_factory.mktemp("plain") / "index"
    index_paths([recordings], d, model=model)
    return d


@pytest.fixture
def fresh_index(tmp_path, plain_index) -> Path:
    d = tmp_path / "index"
    shutil.copytree(plain_index, d)
    return d


@pytest.fixture(scope="module")
def transcribed(tmp_path_factory, recordings, model) -> Path:
    """The four recordings indexed with --transcribe (read by the tests that use it, never written)."""
    d = tmp_path_factory.mktemp("transcribed") / "index"
    summary = index_paths([recordings], d, model=model, transcribe=True)
    assert summary.transcribed == summary.passages > 0
    return d


def cli(*args: str):
    return CliRunner().invoke(app, [*args, "--device", "cpu"])


# -- grouping ------------------------------------------------------------------------------------

def test_neighbouring_windows_of_one_file_are_one_result_with_the_best_windows_span():
    runs = group_hits([("/a", 10.0, 12.0, 0.9, 1), ("/a", 12.5, 14.0, 0.8, 2), ("/a", 8.0, 9.5, 0.7, 3)])
    assert len(runs) == 1
    r = runs[0]
    assert (r.start, r.end, r.score, r.passage_id) == (10.0, 12.0, 0.9, 1)
    assert (r.passage_start, r.passage_end) == (8.0, 14.0)


def test_distant_windows_and_other_files_stay_separate_results_in_score_order():
    runs = group_hits([("/a", 10.0, 12.0, 0.9, 1), ("/b", 12.0, 13.0, 0.8, 2), ("/a", 20.0, 22.0, 0.7, 3)])
    assert [(r.path, r.passage_id) for r in runs] == [("/a", 1), ("/b", 2), ("/a", 3)]


# -- the transcript cache behind --rerank ----------------------------------------------------------

def test_rerank_transcribes_each_window_once_across_queries_and_processes(fresh_index, model, monkeypatch):
    with Searcher(fresh_index, model=model) as s:
        spy = counting(monkeypatch)
        first = s.search("rain in the evening", rerank=3, top_k=3)
        assert spy.windows == 3
        again = s.search("rain in the evening", rerank=3, top_k=3)
        assert spy.windows == 3 and again.to_json() == first.to_json()
    assert len(cached(fresh_index)) == 3
    with Searcher(fresh_index, model=model) as s:
        spy = counting(monkeypatch)
        s.search("rain in the evening", rerank=4, top_k=3)
        assert spy.windows == 1  # the same query's first three windows were cached by the earlier Searcher


def test_reranked_results_carry_what_was_said(fresh_index, model):
    with Searcher(fresh_index, model=model) as s:
        res = s.search("light rain in the evening", rerank=DEFAULT_RERANK).results
    # espeak's "light rain" is heard as "I train" by the Whisper of this model; "evening" survives.
    assert "evening" in res[0].text.lower() and res[0].path.endswith("weather.wav")



def test_rerank_fuses_with_the_weights_the_model_config_names(fresh_index, model, monkeypatch):
    import numpy as np

    # Only the transcript counts, and it counts 20x its cosine: a read window outranks every unread one.
    monkeypatch.setattr(model.config, "fusion", {"clasp": 0.0, "text": 20.0, "keyword": 0.0, "bias": 0.0})
    with Searcher(fresh_index, model=model) as s:
        res = s.search("light rain in the evening", rerank=3, top_k=3).results
    q, t = model.embed_text(["light rain in the evening"])[0], model.embed_text([res[0].text])[0]
    assert res[0].score == pytest.approx(1 / (1 + np.exp(-20 * float(q @ t))), abs=1e-3)


def test_a_rerank_whose_windows_were_read_before_embeds_only_the_query(fresh_index, model, monkeypatch):
    with Searcher(fresh_index, model=model) as s:
        before = s.search("rain in the evening", rerank=3).results
        calls, real = [], model.embed_text
        monkeypatch.setattr(model, "embed_text", lambda texts: calls.append(len(texts)) or real(texts))
        again = s.search("rain in the evening", rerank=3).results
    assert calls == [1]
    assert [(r.path, r.start, r.score) for r in again] == [(r.path, r.start, r.score) for r in before]

KILL_AFTER_FIRST_PUT = """
import os, signal, sys
from clasp_cli.registry import load_model
from clasp_cli.search import Searcher
from clasp_cli.store import Store


real_put = Store.put_transcripts
def put_then_die(self, *args, **kwargs):
    real_put(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
Store.put_transcripts = put_then_die
with Searcher(sys.argv[1], model=load_model(sys.argv[2], device="cpu")) as s:
    s.search("rain in the evening", rerank=3)
"""


def test_a_kill_during_rerank_leaves_a_usable_index_that_keeps_its_transcripts(fresh_index, model, model_dir, monkeypatch):
    r = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_PUT, str(fresh_index), str(model_dir)])
    assert r.returncode == -9
    assert len(cached(fresh_index)) == 3
    with Store.open(fresh_index) as st:
        assert st.check() == []
    with Searcher(fresh_index, model=model) as s:
        spy = counting(monkeypatch)
        assert s.search("rain in the evening", rerank=3).results
        assert spy.windows == 0


def test_a_read_only_index_reranks_with_its_cached_transcripts_and_stores_nothing_new(fresh_index, model, read_only, monkeypatch):
    with Searcher(fresh_index, model=model) as s:
        s.search("rain in the evening", rerank=2)
    read_only(fresh_index)
    with Searcher(fresh_index, model=model) as s:
        spy = counting(monkeypatch)
        res = s.search("rain in the evening", rerank=4, top_k=4).results
        assert spy.windows == 2 and any(r.text for r in res)
        s.search("rain in the evening", rerank=4, top_k=4)
        assert spy.windows == 4  # nothing could be cached, so the same two are read again
    assert len(cached(fresh_index)) == 2


def test_rerank_reads_around_a_recording_that_went_away_since_indexing(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    (archive / "weather.wav").unlink()
    with Searcher(idx, model=model) as s:
        res = s.search("light rain in the evening", rerank=50, top_k=50).results
    gone = [r for r in res if r.path.endswith("weather.wav")]
    read = [r for r in res if not r.path.endswith("weather.wav")]
    # Windows of the gone recording keep their CLASP score and stay listed; the others were read.
    assert gone and read and all(r.text is None for r in gone) and all(r.text is not None for r in read)


def test_bare_rerank_flag_means_the_default_number_of_windows():
    assert optional_values(["search", "--rerank", "the budget"]) == ["search", "--rerank", "default", "the budget"]
    assert optional_values(["search", "the budget", "--rerank"]) == ["search", "the budget", "--rerank", "default"]
    assert optional_values(["search", "the budget", "--rerank", "5"]) == ["search", "the budget", "--rerank", "5"]


def test_the_default_rerank_reads_as_many_windows_as_the_model_names(fresh_index, model, monkeypatch):
    monkeypatch.setattr(model.config, "rerank_windows", 2)
    with Searcher(fresh_index, model=model) as s:
        spy = counting(monkeypatch)
        s.search("rain in the evening", rerank=True, top_k=5)
    assert spy.windows == 2


def test_the_default_rerank_of_a_model_that_names_none_is_the_package_default(fresh_index, model, monkeypatch):
    monkeypatch.setattr(model.config, "rerank_windows", None)
    with Searcher(fresh_index, model=model) as s:
        spy = counting(monkeypatch)
        s.search("rain in the evening", rerank=True, top_k=5)
    with Store.open(fresh_index) as st:
        n = st.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
    assert spy.windows == min(DEFAULT_RERANK, n)


def test_rerank_with_a_word_for_a_number_is_a_usage_error(fresh_index, model_dir):
    r = CliRunner().invoke(app, ["search", "rain", "--index", str(fresh_index), "--rerank=many", "--device", "cpu"])
    assert r.exit_code == 2 and "--rerank takes a whole number of windows" in r.output


# -- index --transcribe, keyword and hybrid search ---------------------------------------------------

def test_keyword_mode_finds_a_spoken_exact_phrase(transcribed, model):
    with Searcher(transcribed, model=model) as s:
        res = s.search('"approved the budget for the new public library"', mode="keyword").results
    assert [r.path.endswith("budget.flac") for r in res] == [True]
    assert "approved the budget for the new public library" in res[0].text.lower()


def test_keyword_mode_ignores_a_phrase_never_spoken(transcribed, model):
    with Searcher(transcribed, model=model) as s:
        # Every word was said somewhere; never in this order.
        assert s.search('"the budget for the garden"', mode="keyword").results == []


def test_a_transcribed_index_searches_hybrid_by_default(transcribed, model):
    with Searcher(transcribed, model=model) as s:
        default = s.search("water the tomato plants").to_json()
        assert default == s.search("water the tomato plants", mode="hybrid").to_json()
        assert default != s.search("water the tomato plants", mode="vector").to_json()


@pytest.mark.parametrize("hostile", [
    '"', '""', 'rain"', 'a" OR "b', "NEAR(rain evening)", "*", "rain*", "AND OR NOT", "text:rain", "^rain",
    "((((", "'; DROP TABLE files; --", "Regen am Abend ☔ 予算 café", "\x00rain", "rain -evening", "rain + evening",
])
def test_hostile_keyword_queries_answer_or_find_nothing_never_crash(transcribed, hostile):
    r = cli("search", hostile, "--mode", "keyword", "--index", str(transcribed), "--json")
    assert r.exit_code in (0, 1), r.output  # results, or none
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception


def test_fts_operators_are_plain_words_and_quoted_text_stays_a_phrase():
    assert fts_query('rain OR "light rain" NEAR*') == '"rain" "OR" "light rain" "NEAR*"'
    assert fts_query('say "hi" there', any_word=True) == '"say" OR "hi" OR "there"'
    assert fts_query('" * ()') == ""


def test_keyword_mode_without_transcripts_is_one_clear_line(plain_index):
    r = cli("search", "rain", "--mode", "keyword", "--index", str(plain_index))
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "clasp index --transcribe" in r.output


def test_replacing_a_recording_replaces_its_transcripts_in_keyword_search(tmp_path, archive, model, say):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model, transcribe=True)
    say("The museum will open again next summer.", archive / "weather.wav")
    summary = index_paths([archive], idx, model=model)  # the index stays transcribed without the flag
    assert summary.transcribed > 0
    with Searcher(idx, model=model) as s:
        assert s.search('"in the evening"', mode="keyword").results == []
        assert [r.path.endswith("weather.wav") for r in s.search('"next summer"', mode="keyword").results] == [True]


def test_forgetting_a_recording_drops_it_from_keyword_search(tmp_path, transcribed):
    idx = tmp_path / "idx"
    shutil.copytree(transcribed, idx)
    with Store.open(idx, write=True) as st:  # what --prune does for a deleted file
        st.remove_files([f.path for f in st.files() if f.path.endswith("weather.wav")])
        assert st.keyword_search('"in the evening"') == []
        st.db.execute("INSERT INTO transcripts_fts(transcripts_fts) VALUES('integrity-check')")  # raises when out of step


# -- the JSON schema ---------------------------------------------------------------------------------

def test_json_results_carry_text_when_transcribed(transcribed):
    r = cli("search", "the football match", "--index", str(transcribed), "--json")
    assert r.exit_code == 0, r.output
    for hit in json.loads(r.stdout)["results"]:
        # "speaker" too, where the window's voice was found (tests/test_speakers.py)
        assert set(hit) - {"speaker"} == BASE_KEYS | {"text", "language"} and isinstance(hit["text"], str)
        assert hit["language"] == "en"  # the language it was read in


def test_json_results_have_no_text_or_language_key_when_nothing_was_transcribed(plain_index):
    r = cli("search", "the football match", "--index", str(plain_index), "--json")
    assert r.exit_code == 0, r.output
    assert all(set(hit) - {"speaker"} == BASE_KEYS for hit in json.loads(r.stdout)["results"])


def test_table_shows_what_was_said_under_its_hit(transcribed):
    r = cli("search", "football", "--mode", "keyword", "--index", str(transcribed), "--top-k", "1")
    assert r.exit_code == 0, r.output
    assert "extra time" in r.stdout  # from the transcript, not the file name


def test_an_index_from_before_transcripts_still_searches_and_reranks_and_is_upgraded_by_index(fresh_index, model, recordings):
    import sqlite3

    db = sqlite3.connect(fresh_index / "index.sqlite")
    drop_languages(db)
    db.executescript("DROP TABLE transcript_vectors; DROP TABLE transcripts_fts; DROP TABLE transcripts; PRAGMA user_version=2;")
    db.close()
    with Searcher(fresh_index, model=model) as s:
        res = s.search("rain in the evening", rerank=2, top_k=10).results
        assert any(r.text for r in res)  # read for this query; there is nowhere to keep it yet
    index_paths([recordings], fresh_index, model=model)
    with Searcher(fresh_index, model=model) as s:
        s.search("rain in the evening", rerank=2)
    assert len(cached(fresh_index)) == 2


# -- two writers of one transcript ------------------------------------------------------------------

def _bm25(db, word: str) -> list[tuple[int, float]]:
    return [(i, round(s, 6)) for i, s in db.execute(
        "SELECT rowid, bm25(transcripts_fts) FROM transcripts_fts WHERE transcripts_fts MATCH ? ORDER BY rowid", (word,))]


def test_two_readers_storing_the_same_windows_keep_the_keyword_index_in_step(tmp_path, transcribed):
    import sqlite3

    idx = tmp_path / "idx"
    shutil.copytree(transcribed, idx)
    with Store.open(idx) as a, Store.open(idx) as b:  # two `clasp search --rerank` processes
        ids = [int(i) for i in a.db.execute("SELECT passage_id FROM transcripts LIMIT 3").fetchall() for i in i]
        for text in ("the weather report", "the weather report again", "the weather report"):
            assert a.put_transcripts({i: text for i in ids}) and b.put_transcripts({i: text for i in ids})
    db = sqlite3.connect(idx / "index.sqlite")
    db.execute("INSERT INTO transcripts_fts(transcripts_fts, rank) VALUES('integrity-check', 1)")  # raises when out of step
    stored = _bm25(db, "weather")
    db.execute("INSERT INTO transcripts_fts(transcripts_fts) VALUES('rebuild')")
    assert stored == _bm25(db, "weather") and len(stored) >= 3


def test_repair_finds_a_keyword_index_out_of_step_and_rebuilds_it(tmp_path, transcribed):
    import sqlite3

    from clasp_cli.repair import repair_index

    idx = tmp_path / "idx"
    shutil.copytree(transcribed, idx)
    db = sqlite3.connect(idx / "index.sqlite")
    pid, text = db.execute("SELECT passage_id, text FROM transcripts WHERE trim(text) != '' LIMIT 1").fetchone()
    db.execute("INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES('delete', ?, ?)", (pid, text))  # what REPLACE did
    db.commit()
    db.close()
    report = repair_index(idx)
    assert any("keyword index" in p for p in report.problems) and report.remaining == []
