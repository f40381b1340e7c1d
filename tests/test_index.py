"""The archive index: incremental updates, crash safety, the writer lock, bad files, search output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from clasp_cli.cli import app
from clasp_cli.indexer import index_paths
from clasp_cli.registry import create_model, load_model
from clasp_cli.search import search
from clasp_cli.store import IndexError_, IndexLockedError, Store


def _passages_per_file(index: Path) -> dict[str, int]:
    with Store.open(index) as s:
        return dict(s.db.execute("SELECT f.path, COUNT(p.id) FROM files f LEFT JOIN passages p ON p.file_id=f.id GROUP BY f.path").fetchall())


def test_first_run_indexes_every_file(tmp_path, archive, model):
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert (s.added, s.updated, s.unchanged, s.failed) == (4, 0, 0, [])
    counts = _passages_per_file(tmp_path / "idx")
    assert len(counts) == 4 and all(n >= 1 for n in counts.values())
    assert s.passages == sum(counts.values())


def test_rerun_skips_unchanged_files(tmp_path, archive, model):
    index_paths([archive], tmp_path / "idx", model=model)
    before = _passages_per_file(tmp_path / "idx")
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert (s.added, s.updated, s.unchanged, s.passages) == (0, 0, 4, 0)
    assert _passages_per_file(tmp_path / "idx") == before


def test_touched_but_identical_file_is_not_reembedded(tmp_path, archive, model):
    index_paths([archive], tmp_path / "idx", model=model)
    os.utime(archive / "weather.wav", (1, 1))
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert (s.updated, s.unchanged) == (0, 4)


def test_changed_file_replaces_its_passages(tmp_path, archive, model, say):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    say("A short new message.", archive / "weather.wav")
    s = index_paths([archive], idx, model=model)
    assert (s.updated, s.unchanged) == (1, 3)
    with Store.open(idx) as st:
        n_db = st.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        assert n_db == sum(_passages_per_file(idx).values())
        spans = st.db.execute("SELECT f.path, p.start, p.end FROM passages p JOIN files f ON f.id = p.file_id").fetchall()
    # every remaining passage is findable (inside some result's run of windows) and none is listed twice
    hits = search("message", idx, top_k=100, model=model).results
    assert len({(h.path, h.start) for h in hits}) == len(hits)
    for path, start, end in spans:
        assert any(h.path == path and h.passage_start <= start and end <= h.passage_end for h in hits)


def test_new_files_are_added(tmp_path, archive, model, say):
    index_paths([archive], tmp_path / "idx", model=model)
    (archive / "sub").mkdir()
    say("An extra recording about trains.", archive / "sub" / "trains.wav")
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert (s.added, s.unchanged) == (1, 4)


def test_deleted_files_are_dropped_only_with_prune(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    (archive / "garden.wav").unlink()
    index_paths([archive], idx, model=model)
    assert len(_passages_per_file(idx)) == 4
    s = index_paths([archive], idx, model=model, prune=True)
    assert s.removed == 1 and str(archive / "garden.wav") not in _passages_per_file(idx)
    assert all("garden" not in h.path for h in search("garden", idx, top_k=50, model=model).results)


def test_bad_files_are_recorded_with_reasons_and_the_rest_indexed(tmp_path, archive, model):
    (archive / "empty.wav").write_bytes(b"")
    (archive / "corrupt.mp3").write_bytes(np.random.default_rng(1).bytes(3000))
    (archive / "notes.wav").write_text("not audio\n")
    sf.write(archive / "silence.wav", np.zeros(16000 * 4, np.float32), 16000)
    (archive / "dangling.wav").symlink_to(archive / "gone.wav")
    shutil.copy(archive / "weather.wav", archive / "Zoë – interview #2 (final).wav")
    s = index_paths([archive], tmp_path / "idx", model=model)
    reasons = {Path(p).name: r for p, r in s.failed}
    assert reasons == {
        "empty.wav": "empty file (0 bytes)",
        "corrupt.mp3": reasons["corrupt.mp3"],
        "notes.wav": reasons["notes.wav"],
        "silence.wav": "no speech found (silent or too quiet)",
        "dangling.wav": "broken symbolic link",
    }
    assert "not a readable audio file" in reasons["corrupt.mp3"] and "not a readable audio file" in reasons["notes.wav"]
    assert s.added == 5
    with Store.open(tmp_path / "idx") as st:
        assert len(st.stats()["failed_files"]) == 5


def test_a_second_writer_is_refused_while_readers_keep_working(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    with Store.open(idx, write=True):
        with pytest.raises(IndexLockedError, match="another clasp process"):
            index_paths([archive], idx, model=model)
        assert search("weather", idx, model=model).results


def test_an_index_refuses_a_different_model(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive / "weather.wav"], idx, model=model)
    other = create_model(model.config, device="cpu", seed=1)
    other.save(tmp_path / "other")
    with pytest.raises(IndexError_, match="cannot be mixed"):
        index_paths([archive], idx, model=load_model(tmp_path / "other", device="cpu"))


KILLER = """
import os, signal, sys
from clasp_cli.indexer import index_paths
from clasp_cli.registry import load_model
seen = []
def on_event(kind, **d):
    if kind == "file":
        seen.append(d)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
index_paths([sys.argv[1]], sys.argv[2], model=load_model(sys.argv[3], device="cpu"), on_event=on_event)
"""


def test_a_killed_run_leaves_a_usable_index_and_a_rerun_completes_it(tmp_path, archive, model, model_dir):
    idx = tmp_path / "idx"
    r = subprocess.run([sys.executable, "-c", KILLER, str(archive), str(idx), str(model_dir)])
    assert r.returncode == -9
    assert len(_passages_per_file(idx)) == 2  # two files committed, nothing half-written
    assert search("weather", idx, model=model).results  # opens and answers; graph repaired from the DB
    s = index_paths([archive], idx, model=model)
    assert (s.added, s.unchanged) == (2, 2)
    clean = tmp_path / "clean"
    index_paths([archive], clean, model=model)
    assert _passages_per_file(idx) == _passages_per_file(clean)
    found = [(r.path, r.start, r.end) for r in search("weather", idx, top_k=100, model=model).results]
    assert found == [(r.path, r.start, r.end) for r in search("weather", clean, top_k=100, model=model).results]
    assert len(set(found)) == len(found)


def test_search_filters(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    only = search("anything", idx, path_glob="*garden*", top_k=20, model=model).results
    assert only and all(h.path.endswith("garden.wav") for h in only)
    assert search("anything", idx, path_glob="garden", top_k=20, model=model).results == only
    assert len(search("anything", idx, top_k=2, model=model).results) == 2
    assert search("anything", idx, min_score=1.01, model=model).results == []


def test_search_by_example_recording(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    res = search(None, idx, audio=archive / "football.ogg", model=model).results
    assert res[0].path.endswith("football.ogg") and res[0].score > 0.95


def test_cli_json_output_has_exactly_the_documented_schema(tmp_path, archive, model_dir, monkeypatch):
    monkeypatch.setenv("CLASP_INDEX", str(tmp_path / "idx"))
    runner = CliRunner()
    r = runner.invoke(app, ["index", str(archive), "--model", str(model_dir), "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["search", "the budget of the library", "--json", "--top-k", "3"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert set(d) == {"query", "results"} and d["query"] == "the budget of the library"
    assert len(d["results"]) == 3
    for i, x in enumerate(d["results"], 1):
        # `clasp index` transcribes by default, so each hit also says what was said (the documented "text").
        assert set(x) == {"rank", "score", "path", "start", "end", "passage_start", "passage_end", "text", "language", "speaker"}
        assert x["passage_start"] <= x["start"] < x["end"] <= x["passage_end"]
        assert x["rank"] == i and isinstance(x["score"], float) and os.path.isabs(x["path"])
        assert isinstance(x["start"], float) and x["end"] > x["start"]


def test_cli_exits_nonzero_when_nothing_could_be_indexed(tmp_path, model_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.wav").write_bytes(b"garbage")
    r = CliRunner().invoke(app, ["index", str(bad), "--index", str(tmp_path / "i"), "--model", str(model_dir), "--device", "cpu"])
    assert r.exit_code == 3 and "nothing could be indexed" in r.output


def test_cli_search_without_an_index_is_one_clear_line(tmp_path):
    r = CliRunner().invoke(app, ["search", "hello", "--index", str(tmp_path / "none")])
    assert r.exit_code != 0 and "no index at" in r.output and "Traceback" not in r.output


def test_text_search_never_imports_torch(tmp_path, archive, model):
    index_paths([archive / "weather.wav"], tmp_path / "idx", model=model)
    code = (
        "import sys\n"
        "from clasp_cli.search import search\n"
        f"r = search('rain in the evening', {str(tmp_path / 'idx')!r})\n"
        "assert r.results\n"
        "heavy = [m for m in ('torch', 'transformers', 'ctranslate2') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_rerun_with_nothing_to_do_reports_no_speed(tmp_path, archive, model_dir):
    args = ["index", str(archive), "--index", str(tmp_path / "i"), "--model", str(model_dir), "--device", "cpu", "--no-transcribe"]
    assert CliRunner().invoke(app, args).exit_code == 0
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "unchanged" in r.output and "real time" not in r.output
