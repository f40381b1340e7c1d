"""`clasp index --watch`: files that arrive, grow, change or go away reach searches within seconds.

No test sleeps on a guess: each waits for the watcher's own events (or its output lines), with a
timeout that only a failure reaches.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ctrl_c_reaches_it

from clasp_cli.names import display_path
from clasp_cli.search import Searcher
from clasp_cli.store import Store
from clasp_cli.watch import Watcher, WatchConfig

EXAMPLES = Path(__file__).parents[1] / "examples" / "archive"
WAV = EXAMPLES / "meetings" / "council-budget.wav"
TIMEOUT = 300.0  # reached only by a failure: a loaded machine can take a minute to start or stop a process


class Watching:
    """A Watcher on its own thread, its events in a queue."""

    def __init__(self, root: Path, index: Path, model, cfg: WatchConfig, speakers: bool | None = None) -> None:
        self.events: queue.Queue = queue.Queue()
        self.watcher = Watcher([root], index, model, str(model.path), transcribe=False, cfg=cfg,
                               on_event=lambda kind, **d: self.events.put((kind, d)), speakers=speakers)
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.wait("watching")

    def _run(self) -> None:
        self.result = self.watcher.run()

    def wait(self, kind: str, **match) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.thread.is_alive() and self.events.empty():
                raise AssertionError(f"no {kind} event {match} within {TIMEOUT} s")
            try:
                k, d = self.events.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if k == kind and all(d.get(key) == v for key, v in match.items()):
                return d

    def close(self):
        self.watcher.stop()
        self.thread.join(TIMEOUT)
        return self.result


def paths_found(index: Path, query: str = "the budget") -> set[str]:
    with Searcher(index) as s:
        return {r.path for r in s.search(query, top_k=100).results}


@pytest.fixture(params=[False, True], ids=["events", "polling"])
def watching(request, tmp_path, model):
    root = tmp_path / "incoming"
    root.mkdir()
    shutil.copy(EXAMPLES / "voice-notes" / "recipe.mp3", root / "recipe.mp3")
    w = Watching(root, tmp_path / "idx", model, WatchConfig(settle=0.5, tick=0.1, poll=request.param))
    yield w, root, tmp_path / "idx"
    w.close()


def test_a_file_copied_in_pieces_is_indexed_whole_once_its_writes_stop_and_is_then_searchable(watching):
    w, root, index = watching
    data = WAV.read_bytes()
    target = root / "council.wav"
    with open(target, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
        w.wait("waiting", path=str(target))  # seen while half there ...
        f.write(data[len(data) // 2 :])
    w.wait("file", path=display_path(target), status="added")
    w.wait("batch")  # the graphs are saved: a reader opened now sees the file
    assert display_path(target) in paths_found(index)
    with Store.open(index) as store:  # ... and indexed only once it was whole
        whole = store.file(display_path(WAV.resolve()))
        rec = store.file(display_path(target))
    assert rec.warning is None and rec.duration == pytest.approx(30.0, abs=15) and rec.status == "ok"
    assert whole is None  # only what is under the watched folder


def test_no_speakers_while_watching_finds_none_and_is_remembered(tmp_path, model):
    root = tmp_path / "incoming"
    root.mkdir()
    shutil.copy(EXAMPLES / "voice-notes" / "recipe.mp3", root / "recipe.mp3")
    w = Watching(root, tmp_path / "idx", model, WatchConfig(settle=0.5, tick=0.1, poll=True), speakers=False)
    shutil.copy(WAV, root / "budget.wav")
    w.wait("file", status="added")
    w.close()
    with Store.open(tmp_path / "idx") as st:
        assert st.meta("speakers") == "0" and len(st.files()) == 2
        assert st.db.execute("SELECT COUNT(*) FROM diarized").fetchone()[0] == 0


def test_a_deleted_file_is_gone_from_results_once_the_watcher_removes_it(watching):
    w, root, index = watching
    assert display_path(root / "recipe.mp3") in paths_found(index, "tomato soup")
    (root / "recipe.mp3").unlink()
    w.wait("removed", path=display_path(root / "recipe.mp3"))
    w.wait("batch")
    assert display_path(root / "recipe.mp3") not in paths_found(index, "tomato soup")


def test_a_folder_moved_in_is_indexed_file_by_file(watching, tmp_path):
    w, root, index = watching
    outside = tmp_path / "elsewhere" / "radio"
    shutil.copytree(EXAMPLES / "radio", outside)
    os.rename(outside, root / "radio")
    for name in sorted(p.name for p in (root / "radio").iterdir()):
        w.wait("file", path=display_path(root / "radio" / name), status="added")


def test_a_changed_file_is_embedded_again(watching):
    w, root, index = watching
    shutil.copy(EXAMPLES / "radio" / "weather-forecast.mp3", root / "recipe.mp3")
    w.wait("file", path=display_path(root / "recipe.mp3"), status="updated")


def test_a_link_to_a_watched_recording_is_not_indexed_as_a_second_one(watching):
    w, root, index = watching
    os.symlink("recipe.mp3", root / "link-to-recipe.mp3")
    (root / "sub").mkdir()
    os.symlink("../recipe.mp3", root / "sub" / "recipe-link.mp3")
    # A real recording after the links: once it is in, the links (settled first) have been seen.
    shutil.copy(EXAMPLES / "radio" / "weather-forecast.mp3", root / "forecast.mp3")
    w.wait("file", path=display_path(root / "forecast.mp3"), status="added")
    w.wait("batch")
    with Store.open(index) as st:
        assert sorted(f.path for f in st.files()) == [display_path(root / "forecast.mp3"), display_path(root / "recipe.mp3")]
        assert st.check() == []


def test_prune_forgets_a_second_name_of_a_recording_indexed_under_its_own(tmp_path, model):
    from clasp_cli.indexer import index_paths

    root = tmp_path / "w1"
    root.mkdir()
    shutil.copy(WAV, root / WAV.name)
    os.symlink(WAV.name, root / "link-to-budget.wav")
    index_paths([root / "link-to-budget.wav"], tmp_path / "idx", model=model)  # named alone, a link is indexed as itself
    index_paths([root], tmp_path / "idx", model=model, prune=True)
    with Store.open(tmp_path / "idx") as st:
        assert [f.path for f in st.files()] == [display_path(root / WAV.name)]
        assert st.check() == []


# -- the CLI, as a separate process --------------------------------------------------------------------


class Cli:
    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1"}
        self.p = subprocess.Popen([sys.executable, "-m", "clasp_cli", *args], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=env, preexec_fn=ctrl_c_reaches_it)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed; got {''.join(seen)!r}")


@pytest.fixture
def cli_watch(tmp_path, model_dir):
    root = tmp_path / "incoming"
    root.mkdir()
    shutil.copy(EXAMPLES / "voice-notes" / "recipe.mp3", root / "recipe.mp3")
    index = tmp_path / "idx"
    cli = Cli(["index", str(root), "--index", str(index), "--model", str(model_dir), "--device", "cpu", "--no-transcribe",
               "--watch", "--settle", "0.3"])
    cli.wait_for("watching")
    yield cli, root, index
    if cli.p.poll() is None:
        cli.p.kill()
    cli.p.wait()


def test_ctrl_c_exits_130_and_keeps_what_was_indexed(cli_watch):
    cli, root, index = cli_watch
    shutil.copy(WAV, root / "council.wav")
    cli.wait_for("added")
    cli.p.send_signal(signal.SIGINT)
    assert cli.p.wait(TIMEOUT) == 130
    with Store.open(index, check=True) as store:
        assert not store.check()
        assert {Path(f.path).name for f in store.files()} == {"recipe.mp3", "council.wav"}


def test_kill_9_while_watching_leaves_a_consistent_index(cli_watch):
    cli, root, index = cli_watch
    for name in ("weather-forecast.mp3", "football-report.ogg"):
        shutil.copy(EXAMPLES / "radio" / name, root / name)
    cli.wait_for("added")  # killed with the first of the batch done and the second perhaps under way
    cli.p.kill()
    cli.p.wait(TIMEOUT)
    # Readers search at once (a graph older than the database is completed in memory) ...
    with Store.open(index) as store:
        names = {Path(f.path).name for f in store.files() if f.status == "ok"}
    assert {"recipe.mp3"} < names
    assert paths_found(index) == {display_path(root / n) for n in names}
    # ... and the next writer finds the database whole and writes the graph back.
    with Store.open(index, write=True, check=True) as store:
        store.graph()
        assert not store.check()


def test_a_second_writer_is_refused_while_watching(cli_watch, model_dir):
    cli, root, index = cli_watch
    r = subprocess.run([sys.executable, "-m", "clasp_cli", "index", str(root), "--index", str(index), "--model", str(model_dir),
                        "--device", "cpu"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "being written by another clasp process" in r.stderr


def test_clasp_serve_finds_a_file_the_watch_just_indexed(tmp_path, model, start_server):
    import httpx

    root = tmp_path / "incoming"
    root.mkdir()
    shutil.copy(EXAMPLES / "voice-notes" / "recipe.mp3", root / "recipe.mp3")
    w = Watching(root, tmp_path / "idx", model, WatchConfig(settle=0.3, tick=0.1))
    try:
        base = start_server(tmp_path / "idx")
        shutil.copy(EXAMPLES / "radio" / "weather-forecast.mp3", root / "forecast.mp3")
        w.wait("file", path=display_path(root / "forecast.mp3"), status="added")
        indexed_at = time.monotonic()
        found = set()
        # The server reopens a changed index at most once a second (serve/live.py): ask until it
        # has; only a server that never notices reaches the timeout.
        while display_path(root / "forecast.mp3") not in found:
            assert time.monotonic() - indexed_at < TIMEOUT, found
            r = httpx.get(base + "api/search", params={"q": "rain", "top_k": 50}, timeout=60)
            found = {x["path"] for x in r.json()["results"]}
    finally:
        w.close()
