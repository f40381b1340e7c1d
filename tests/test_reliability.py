"""Bad files, damaged indexes and odd paths: each ends in one clear line or a correct result (issue 11)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clasp_cli.errors import AudioError
from clasp_cli.indexer import index_paths
from clasp_cli.search import search
from clasp_cli.store import IndexDamagedError, IndexReadOnlyError, Store

ROOT = Path(__file__).parents[1]


def clasp(*args: str, user: int | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command line in a fresh process, as a person (or another user) runs it."""
    e = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", **(env or {})}
    return subprocess.run([sys.executable, "-m", "clasp_cli", *args], capture_output=True, text=True, env=e,
                          user=user, group=user, cwd="/")


def one_clear_line(r: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def passages(index: Path) -> dict[str, int]:
    with Store.open(index) as s:
        return dict(s.db.execute("SELECT f.path, COUNT(p.id) FROM files f LEFT JOIN passages p ON p.file_id=f.id "
                                 "WHERE f.status='ok' GROUP BY f.path").fetchall())


@pytest.fixture
def indexed(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    return idx


# -- odd paths ----------------------------------------------------------------------------------

def test_a_name_that_is_not_utf8_is_indexed_shown_escaped_and_the_files_after_it_too(tmp_path, archive, model):
    odd = os.fsencode(str(archive)) + b"/caf\xe9.wav"
    shutil.copy(archive / "weather.wav", odd)
    shutil.copy(archive / "weather.wav", archive / "zebra.wav")  # sorts after the odd name
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert s.failed == [] and s.added == 6
    shown = str(archive / "caf\\xe9.wav")
    assert shown in passages(tmp_path / "idx") and str(archive / "zebra.wav") in passages(tmp_path / "idx")
    assert any(h.path == shown for h in search("rain", tmp_path / "idx", top_k=50, model=model).results)
    assert index_paths([archive], tmp_path / "idx", model=model).unchanged == 6


def test_pruning_keeps_a_non_utf8_name_that_still_exists(tmp_path, archive, model):
    shutil.copy(archive / "weather.wav", os.fsencode(str(archive)) + b"/caf\xe9.wav")
    index_paths([archive], tmp_path / "idx", model=model)
    assert index_paths([archive], tmp_path / "idx", model=model, prune=True).removed == 0


def test_index_below_a_regular_file_is_one_line(tmp_path, archive, model_dir):
    (tmp_path / "notes.txt").write_text("x")
    r = clasp("index", str(archive / "weather.wav"), "--index", str(tmp_path / "notes.txt" / "sub"), "--model", str(model_dir))
    assert r.returncode == 7 and "cannot create the index folder" in one_clear_line(r)


def test_a_linked_folder_is_followed_and_a_linked_file_is_indexed_once(tmp_path, archive, model):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(archive / "garden.wav", outside / "garden.wav")
    (archive / "linked").symlink_to(outside)
    (archive / "again.wav").symlink_to(archive / "weather.wav")
    (archive / "sub").mkdir()
    shutil.copy(archive / "budget.flac", archive / "sub" / "b.flac")
    (archive / "sub-link").symlink_to(archive / "sub")  # a second way into a folder already walked
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert s.failed == []
    assert sorted(Path(p).relative_to(archive).as_posix() for p in passages(tmp_path / "idx")) == [
        "budget.flac", "football.ogg", "linked/garden.wav", "sub/b.flac", "weather.wav"]


def test_symlink_loops_end_and_are_named_as_loops(tmp_path, archive, model):
    (archive / "loop").symlink_to(archive)  # a folder containing itself
    (archive / "a.wav").symlink_to(archive / "b.wav")
    (archive / "b.wav").symlink_to(archive / "a.wav")
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert s.added == 4
    assert dict((Path(p).name, r) for p, r in s.failed) == {"a.wav": "symbolic link loop", "b.wav": "symbolic link loop"}


def test_a_file_that_failed_is_tried_again_even_when_size_and_time_are_unchanged(tmp_path, archive, model):
    good = (archive / "garden.wav").read_bytes()
    (archive / "garden.wav").write_bytes(b"\0" * len(good))  # unreadable now, same size as later
    st = (archive / "garden.wav").stat()
    first = index_paths([archive], tmp_path / "idx", model=model)
    assert [Path(p).name for p, _ in first.failed] == ["garden.wav"]
    again = index_paths([archive], tmp_path / "idx", model=model)
    assert [Path(p).name for p, _ in again.failed] == ["garden.wav"]  # listed in every run's summary
    (archive / "garden.wav").write_bytes(good)
    os.utime(archive / "garden.wav", ns=(st.st_atime_ns, st.st_mtime_ns))
    fixed = index_paths([archive], tmp_path / "idx", model=model)
    assert (fixed.updated, fixed.failed) == (1, [])


def test_an_earlier_failure_whose_file_is_gone_stays_in_the_summary_until_pruned(tmp_path, archive, model):
    (archive / "bad.wav").write_bytes(b"garbage")
    index_paths([archive], tmp_path / "idx", model=model)
    (archive / "bad.wav").unlink()
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert [Path(p).name for p, _ in s.failed] == ["bad.wav"] and "--prune" in s.failed[0][1]
    assert index_paths([archive], tmp_path / "idx", model=model, prune=True).failed == []


# -- partial audio ------------------------------------------------------------------------------

def test_a_truncated_flac_is_indexed_up_to_the_damage_with_a_warning_naming_the_second(tmp_path, archive, model):
    x, sr = sf.read(archive / "budget.flac", dtype="float32")
    long = np.concatenate([x, x, x])
    sf.write(tmp_path / "full.flac", long, sr)
    data = (tmp_path / "full.flac").read_bytes()
    (archive / "budget.flac").write_bytes(data[: len(data) // 3])
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert s.failed == []
    [(path, warning)] = s.warnings
    assert path.endswith("budget.flac") and warning.startswith("decoding stopped at ")
    seconds = float(warning.split()[3])
    assert 0.2 * len(long) / sr < seconds < 0.45 * len(long) / sr
    with Store.open(tmp_path / "idx") as st:
        assert st.stats()["warnings"] == [{"path": path, "warning": warning}]


# -- the graph ------------------------------------------------------------------------------------

def _graph_matches(index: Path) -> list[str]:
    with Store.open(index) as s:
        return s.check()


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_lost_or_truncated_graph_is_written_back_by_the_next_index_run(indexed, archive, model, damage):
    g = indexed / "vectors.hnsw"
    if damage == "delete":
        g.unlink()
    else:
        g.write_bytes(g.read_bytes()[: g.stat().st_size // 2])
    assert search("rain", indexed, model=model).results  # answers from a graph rebuilt in memory
    assert index_paths([archive], indexed, model=model).unchanged == 4
    assert g.exists() and _graph_matches(indexed) == []


def test_a_graph_copied_from_another_index_is_detected_and_replaced(tmp_path, indexed, archive, model, say):
    other_src = tmp_path / "other"
    other_src.mkdir()
    for i, text in enumerate(["Completely different words about cooking pasta.", "A story about a cat and a dog.",
                              "The train leaves at nine.", "Buy milk and bread today."]):
        say(text, other_src / f"o{i}.wav")
    index_paths([other_src], tmp_path / "other-idx", model=model)
    want = [(h.path, h.start) for h in search("rain", indexed, top_k=5, model=model).results]
    for name in ("vectors.hnsw", "vectors.json"):
        shutil.copy(tmp_path / "other-idx" / name, indexed / name)
    assert [(h.path, h.start) for h in search("rain", indexed, top_k=5, model=model).results] == want
    shutil.copy(tmp_path / "other-idx" / "vectors.hnsw", indexed / "vectors.hnsw")  # the graph alone, stamp kept
    assert [(h.path, h.start) for h in search("rain", indexed, top_k=5, model=model).results] == want
    assert _graph_matches(indexed) != []


def test_repair_rewrites_a_foreign_graph(tmp_path, indexed, archive, model):
    index_paths([archive / "weather.wav"], tmp_path / "other", model=model)
    shutil.copy(tmp_path / "other" / "vectors.hnsw", indexed / "vectors.hnsw")
    r = clasp("index", "--repair", "--index", str(indexed), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["problems"] and rep["remaining"] == [] and rep["passages"] == sum(passages(indexed).values())
    assert _graph_matches(indexed) == []


# -- a damaged database --------------------------------------------------------------------------

def _damage_a_page(index: Path) -> None:
    db = sqlite3.connect(index / "index.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    path = index / "index.sqlite"
    pages = path.stat().st_size // 4096
    with open(path, "r+b") as fh:  # one page of a passages leaf, the way a bad sector does it
        fh.seek((pages // 2) * 4096)
        fh.write(np.random.default_rng(0).bytes(4096))


def test_a_damaged_database_stops_index_with_the_way_out(indexed, archive, model):
    _damage_a_page(indexed)
    with pytest.raises(IndexDamagedError, match=r"index\.sqlite: the index database is damaged .*clasp index --rebuild"):
        index_paths([archive], indexed, model=model)


@pytest.mark.parametrize("command", [["search", "rain"], ["info"]])
def test_a_damaged_database_gives_readers_one_line_or_a_correct_answer(indexed, command):
    _damage_a_page(indexed)
    r = clasp(*command, "--index", str(indexed))
    if r.returncode != 0:
        line = one_clear_line(r)
        assert r.returncode == 7 and "index.sqlite" in line and "clasp index --rebuild" in line


def test_rebuild_re_embeds_every_recorded_file(tmp_path, indexed, archive, model_dir, model):
    clean = passages(indexed)
    _damage_a_page(indexed)
    r = clasp("index", "--rebuild", "--index", str(indexed), "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 4
    assert passages(indexed) == clean and _graph_matches(indexed) == []
    assert any(p.name.startswith("damaged-") for p in indexed.iterdir())


# -- read-only indexes ------------------------------------------------------------------------------

def test_search_and_info_work_on_a_read_only_index_folder(indexed, read_only):
    read_only(indexed)
    r = clasp("search", "rain tomorrow", "--index", str(indexed), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"]
    r = clasp("info", "--index", str(indexed), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["files"] == 4
    assert not (indexed / "index.sqlite-shm").exists()  # a reader wrote nothing


def test_indexing_into_a_read_only_index_folder_is_one_line(indexed, archive, model_dir, read_only):
    read_only(indexed)
    r = clasp("index", str(archive), "--index", str(indexed), "--model", str(model_dir), "--device", "cpu")
    assert r.returncode == 7 and "cannot write the index folder" in one_clear_line(r)


def test_a_read_only_database_file_with_a_new_file_to_index_is_one_line(indexed, archive, model_dir, read_only, say):
    read_only(indexed / "index.sqlite")
    say("A new recording about the harbour.", archive / "new.wav")
    r = clasp("index", str(archive), "--index", str(indexed), "--model", str(model_dir), "--device", "cpu")
    assert r.returncode == 7 and "cannot write the index" in one_clear_line(r)


def test_library_reports_a_read_only_database_as_a_typed_error(indexed, archive, model, read_only, say):
    read_only(indexed / "index.sqlite")
    say("A new recording about the harbour.", archive / "new.wav")
    with pytest.raises(IndexReadOnlyError, match="searching it still works"):
        index_paths([archive], indexed, model=model)


# -- queries ----------------------------------------------------------------------------------------

def test_search_by_a_silent_recording_is_refused(tmp_path, indexed, model):
    sf.write(tmp_path / "quiet.wav", np.zeros(16000 * 3, np.float32), 16000)
    with pytest.raises(AudioError, match="no speech found in the query recording"):
        search(None, indexed, audio=tmp_path / "quiet.wav", model=model)


def test_search_with_an_unknown_device_is_a_usage_error(indexed):
    r = clasp("search", "rain", "--index", str(indexed), "--device", "tpu")
    assert r.returncode == 2 and "unknown device 'tpu'" in one_clear_line(r)


@pytest.mark.parametrize("args", [["search", "x", "--top-k", "0"], ["serch", "x"], ["index"], ["search", "--bogus"],
                                  ["index", ".", "--batch-size", "many"]])
def test_usage_errors_are_one_red_line_with_exit_code_2(args):
    r = clasp(*args)
    assert r.returncode == 2
    one_clear_line(r)
    assert "─" not in r.stderr and "╭" not in r.stderr  # no boxes


def test_version():
    from clasp_cli import __version__

    r = clasp("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"clasp {__version__}"


@pytest.mark.parametrize("as_json", [False, True])
def test_no_results_exits_1_in_table_and_json_mode_alike(indexed, as_json):
    r = clasp("search", "rain", "--index", str(indexed), "--min-score", "1.5", *(["--json"] if as_json else []))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    if as_json:
        assert json.loads(r.stdout)["results"] == []


def test_results_table_fits_80_columns_shortening_paths_from_the_left(tmp_path, archive, model):
    deep = tmp_path / ("a-rather-long-folder-name-" * 3) / "and-deeper" / "still-deeper"
    deep.mkdir(parents=True)
    shutil.copy(archive / "weather.wav", deep / "weather-report-for-tomorrow.wav")
    index_paths([deep], tmp_path / "idx", model=model)
    r = clasp("search", "rain", "--index", str(tmp_path / "idx"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(ln) for ln in lines) <= 80
    row = next(ln for ln in lines if "weather-report-for-tomorrow.wav" in ln)
    assert "…/" in row
    start, end = row.split("│")[4].strip().split("-")
    assert start.count(".") == 1 and len(start.split(".")[1]) == 1 and end.count(".") == 1
