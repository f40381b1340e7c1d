"""Names are data and only regular files are read: escape codes in a name never reach the terminal,
FIFOs and devices never hang indexing, any locale prints, and --prune forgets what is gone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clasp_cli.display import printable
from clasp_cli.indexer import index_paths
from clasp_cli.store import Store

from conftest import drop_languages


ROOT = Path(__file__).parents[1]
EVIL = "evil\x1b[2J\x1b[31mred.wav"


def clasp(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", **(env or {})}
    return subprocess.run([sys.executable, "-m", "clasp_cli", *args], capture_output=True, text=True, env=e, cwd="/",
                          timeout=timeout, errors="replace")


def files(index: Path) -> dict[str, str]:
    with Store.open(index) as s:
        return {f.path: f.status for f in s.files()}


def test_control_characters_are_written_as_escapes():
    assert printable(EVIL) == "evil\\x1b[2J\\x1b[31mred.wav"
    assert printable("a\u202eb\x9bc\td") == "a\\u202eb\\x9bc\\x09d"
    assert printable("two\nlines", keep_newlines=True) == "two\nlines"


def test_a_name_with_escape_codes_is_shown_escaped_in_the_skip_line_and_the_results(tmp_path, archive, model_dir):
    (archive / EVIL).write_bytes(b"not audio at all")
    shutil.copy(archive / "weather.wav", archive / ("sun" + EVIL))
    idx = tmp_path / "idx"
    r = clasp("index", str(archive), "--index", str(idx), "--model", str(model_dir), "--no-transcribe", "--device", "cpu")
    assert "\x1b" not in r.stdout + r.stderr
    assert "evil\\x1b[2J\\x1b[31mred.wav" in r.stderr  # the skipped line names it, escaped
    s = clasp("search", "sunny in the morning with light rain", "--index", str(idx), "-k", "6")
    assert s.returncode == 0 and "\x1b" not in s.stdout + s.stderr and "\\x1b" in s.stdout


def test_a_name_holding_rich_markup_is_shown_as_written(tmp_path, model_dir):
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "[bold red]x.wav").write_bytes(b"not audio")
    r = clasp("index", str(folder), "--index", str(tmp_path / "idx"), "--model", str(model_dir), "--no-transcribe", "--device", "cpu")
    assert "Traceback" not in r.stderr and "[bold red]x.wav" in r.stderr


def test_fifos_and_links_to_devices_are_failed_files_not_hangs(tmp_path, archive, model):
    os.mkfifo(archive / "pipe.wav")
    os.symlink("/dev/zero", archive / "zero.wav")
    s = index_paths([archive], tmp_path / "idx", model=model)  # a hang here is the bug
    reasons = dict(s.failed)
    assert reasons[str(archive / "pipe.wav")] == "not a regular file (a FIFO)"
    assert reasons[str(archive / "zero.wav")] == "not a regular file (a character device)"
    assert s.added == 4


@pytest.mark.parametrize("command", [["search", "--help"], ["models"], ["index", "--help"]])
def test_a_latin1_terminal_gets_ascii_where_it_must_never_a_crash(command):
    r = clasp(*command, env={"PYTHONIOENCODING": "iso-8859-1"})
    assert r.returncode == 0 and "Traceback" not in r.stderr and "UnicodeEncodeError" not in r.stderr, r.stderr


def test_a_latin1_terminal_gets_the_results_table(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    r = clasp("search", "rain tomorrow", "--index", str(idx), env={"PYTHONIOENCODING": "iso-8859-1"})
    assert r.returncode == 0 and "Traceback" not in r.stderr and "weather.wav" in r.stdout, r.stderr


def test_a_recording_replaced_by_a_folder_of_its_name_is_pruned(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    (archive / "weather.wav").unlink()
    (archive / "weather.wav").mkdir()
    s = index_paths([archive], idx, model=model, prune=True)
    assert s.removed == 1 and str(archive / "weather.wav") not in files(idx)


def test_pruning_a_folder_that_is_gone_forgets_its_files_and_succeeds(tmp_path, archive, model, model_dir):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    shutil.rmtree(archive)
    r = clasp("index", str(archive), "--index", str(idx), "--prune", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert '"removed": 4' in r.stdout.replace("\n", " ").replace("  ", " ") or '"removed":4' in r.stdout
    assert files(idx) == {}


def test_a_cache_folder_that_cannot_be_written_is_one_line_naming_the_override(tmp_path, archive):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    idx = tmp_path / "idx"
    # The shipped model transcribes with whisper-base, whose weights are joined into the cache once.
    r = clasp("index", str(archive), "--index", str(idx), "--device", "cpu",
              env={"CLASP_CACHE": str(blocked / "cache")})
    assert "Traceback" not in r.stderr and r.returncode == 4, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "CLASP_CACHE" in errors[0] and "whisper-base cache" in errors[0]
    assert not idx.exists()  # no empty index folder left behind


@pytest.mark.parametrize("fmt, ext", [("WAV", "wav"), ("MP3", "mp3"), ("OGG", "ogg")])
def test_a_truncated_download_is_indexed_up_to_the_damage_with_a_warning(tmp_path, archive, model, fmt, ext):
    import numpy as np
    import soundfile as sf

    x, sr = sf.read(archive / "weather.wav", dtype="float32")
    full = np.concatenate([x, x])
    sf.write(tmp_path / f"full.{ext}", full, sr, format=fmt)
    data = (tmp_path / f"full.{ext}").read_bytes()
    for f in archive.iterdir():
        f.unlink()
    (archive / f"cut.{ext}").write_bytes(data[: len(data) // 2])
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert s.failed == [] and s.added == 1
    [(path, warning)] = s.warnings
    assert path.endswith(f"cut.{ext}") and "the file ends early" in warning
    seconds = float(warning.split()[3])
    assert 0.3 * len(full) / sr < seconds < 0.7 * len(full) / sr


@pytest.mark.parametrize("fmt, ext", [("WAV", "wav"), ("MP3", "mp3"), ("OGG", "ogg")])
def test_a_whole_file_gets_no_warning(tmp_path, archive, model, fmt, ext):
    import soundfile as sf

    x, sr = sf.read(archive / "weather.wav", dtype="float32")
    for f in archive.iterdir():
        f.unlink()
    sf.write(archive / f"whole.{ext}", x, sr, format=fmt)
    s = index_paths([archive], tmp_path / "idx", model=model)
    assert s.added == 1 and s.warnings == []


def test_a_name_that_is_not_utf8_and_its_escaped_spelling_are_two_recordings(tmp_path, archive, model):
    odd = os.fsencode(str(archive)) + b"/caf\xe9.wav"
    shutil.copy(archive / "weather.wav", odd)
    shutil.copy(archive / "budget.flac", archive / "caf\\xe9.wav")  # literally a backslash, x, e, 9
    idx = tmp_path / "idx"
    first = index_paths([archive], idx, model=model)
    assert first.added == 6 and first.failed == []
    again = index_paths([archive], idx, model=model)
    assert again.unchanged == 6 and again.updated == 0 and again.added == 0
    with Store.open(idx) as s:
        opened = {f.fs_path for f in s.files()}
    assert os.fsdecode(odd) in opened and str(archive / "caf\\xe9.wav") in opened


def test_an_index_keyed_the_old_way_is_migrated_without_re_embedding(tmp_path, archive, model):
    import sqlite3

    shutil.copy(archive / "weather.wav", archive / "back\\slash.wav")
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    db = sqlite3.connect(idx / "index.sqlite")
    db.execute("UPDATE files SET path = ?, path_bytes = NULL WHERE path LIKE '%slash.wav'", (str(archive / "back\\slash.wav"),))
    drop_languages(db)
    db.execute("PRAGMA user_version=4")
    db.commit()
    db.close()
    s = index_paths([archive], idx, model=model)
    assert s.unchanged == 5 and s.added == 0 and s.updated == 0
    with Store.open(idx) as st:
        [f] = [f for f in st.files() if "slash" in f.path]
        assert f.path.endswith("back\\\\slash.wav") and f.fs_path == str(archive / "back\\slash.wav")


def test_the_mp3_decoders_own_lines_never_reach_the_terminal(tmp_path, archive, model_dir):
    import numpy as np
    import soundfile as sf

    x, sr = sf.read(archive / "weather.wav", dtype="float32")
    sf.write(tmp_path / "full.mp3", np.concatenate([x, x]), sr, format="MP3")
    data = (tmp_path / "full.mp3").read_bytes()
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "cut.mp3").write_bytes(data[: len(data) // 2])
    r = clasp("index", str(folder), "--index", str(tmp_path / "idx"), "--model", str(model_dir), "--no-transcribe", "--device", "cpu")
    assert r.returncode == 0 and "Xing" not in r.stderr and "partly indexed" in r.stderr, r.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_min_score_that_is_not_a_finite_number_is_refused(tmp_path, archive, model, value):
    from clasp_cli.errors import UsageError
    from clasp_cli.search import search

    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    with pytest.raises(UsageError, match="must be a finite number"):
        search("rain tomorrow", idx, min_score=float(value), device="cpu")


def test_a_read_that_stalls_is_a_failed_file_and_the_rest_are_indexed(tmp_path, archive, model, monkeypatch):
    import threading

    import clasp_cli.pipeline as pipeline  # where a file is checked and hashed, for both engines

    release = threading.Event()
    real = pipeline.file_key

    def hung_mount(path, on_chunk=None):
        if str(path).endswith("garden.wav"):
            release.wait()  # a read that never returns, as on a hung network mount
        return real(path, on_chunk)

    monkeypatch.setattr(pipeline, "file_key", hung_mount)
    try:
        s = index_paths([archive], tmp_path / "idx", model=model, read_stall_s=0.3)
    finally:
        release.set()
    assert dict(s.failed) == {str(archive / "garden.wav"): "reading stalled for 0.3 s (a hung network mount?)"}
    assert s.added == 3
