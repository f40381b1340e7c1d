"""`clasp index --engine ray`: the same index as the local engine, with per-file failures and restarts.

Every test here shares one local Ray cluster (2 CPUs), started once for the module."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from clasp_cli.indexer import index_paths  # noqa: E402
from clasp_cli.store import Store  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "archive"
ACTOR = "MapBatches(Embedder)"


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def windows(index: Path) -> dict[tuple[str, float, float], np.ndarray]:
    db = sqlite3.connect(index / "index.sqlite")
    try:
        return {(f, round(s, 3), round(e, 3)): np.frombuffer(v, dtype=np.float16).astype(np.float32)
                for f, s, e, v in db.execute("SELECT f.path, p.start, p.end, p.vector FROM passages p JOIN files f ON f.id=p.file_id")}
    finally:
        db.close()


def min_cosine(a: dict, b: dict) -> float:
    return min(float(a[k] @ b[k] / np.linalg.norm(a[k]) / np.linalg.norm(b[k])) for k in a)


@pytest.fixture(scope="module")
def local_index(tmp_path_factory, shipped_model) -> Path:
    d = tmp_path_factory.mktemp("local") / "index"
    index_paths([EXAMPLES], d, model=shipped_model, transcribe=False)
    return d


def test_the_ray_engine_makes_the_index_the_local_engine_makes(tmp_path, cluster, shipped_model, local_index):
    summary = index_paths([EXAMPLES], tmp_path / "ray", model=shipped_model, transcribe=False, engine="ray")
    assert not summary.failed and summary.indexed == len(list(EXAMPLES.rglob("*.*")))
    a, b = windows(local_index), windows(tmp_path / "ray")
    assert set(a) == set(b)  # the same files and windows
    assert min_cosine(a, b) >= 0.999
    with Store.open(tmp_path / "ray") as st:
        assert st.check() == []


def test_a_second_ray_run_skips_what_is_unchanged(tmp_path, cluster, shipped_model):
    index_paths([EXAMPLES / "radio"], tmp_path / "idx", model=shipped_model, transcribe=False, engine="ray")
    again = index_paths([EXAMPLES / "radio"], tmp_path / "idx", model=shipped_model, transcribe=False, engine="ray")
    assert again.indexed == 0 and again.unchanged == len(list((EXAMPLES / "radio").iterdir()))


def test_a_corrupt_file_is_recorded_and_the_others_are_indexed(tmp_path, cluster, shipped_model):
    src = tmp_path / "in"
    shutil.copytree(EXAMPLES / "voice-notes", src)
    (src / "broken.mp3").write_bytes(b"ID3" + os.urandom(5000))
    (src / "empty.wav").write_bytes(b"")
    good = len(list((EXAMPLES / "voice-notes").iterdir()))
    summary = index_paths([src], tmp_path / "idx", model=shipped_model, transcribe=False, engine="ray")
    assert summary.indexed == good
    assert sorted(Path(p).name for p, _ in summary.failed) == ["broken.mp3", "empty.wav"]
    assert all(reason for _, reason in summary.failed)
    with Store.open(tmp_path / "idx") as st:
        assert {f.status for f in st.files() if f.path.endswith(("broken.mp3", "empty.wav"))} == {"failed"}


def test_a_transcribing_ray_run_stores_what_was_said(tmp_path, cluster, shipped_model):
    index_paths([EXAMPLES / "radio"], tmp_path / "idx", model=shipped_model, transcribe=True, engine="ray")
    with Store.open(tmp_path / "idx") as st:
        n = st.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        said = st.db.execute("SELECT COUNT(*) FROM transcripts WHERE length(text) > 0").fetchone()[0]
        vectors = st.db.execute("SELECT COUNT(*) FROM transcript_vectors").fetchone()[0]
    assert n and said == n and vectors == n


def _actor_pids() -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if ACTOR in (p / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def test_an_actor_killed_mid_run_is_replaced_and_nothing_is_lost_or_doubled(tmp_path, cluster, shipped_model, local_index):
    killed = []

    def on_event(kind: str, **d) -> None:
        if kind == "file" and d["status"] == "added" and not killed:
            for pid in _actor_pids():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    # Batches of 4 windows: many batches are still to come when the first file is committed.
    index_paths([EXAMPLES], tmp_path / "idx", model=shipped_model, transcribe=False, engine="ray", batch_size=4,
                on_event=on_event)
    assert killed
    a, b = windows(local_index), windows(tmp_path / "idx")
    assert set(a) == set(b) and min_cosine(a, b) >= 0.999
    with Store.open(tmp_path / "idx") as st:
        assert st.check() == []


@pytest.mark.slow
def test_a_killed_driver_leaves_finished_files_and_a_rerun_completes(tmp_path, cluster, local_index):
    cmd = [sys.executable, "-m", "clasp_cli", "index", str(EXAMPLES), "--index", str(tmp_path / "idx"), "--no-transcribe",
           "--engine", "ray", "--ray-address", cluster, "--batch-size", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            db = sqlite3.connect(f"file:{tmp_path / 'idx' / 'index.sqlite'}?mode=ro", uri=True)
            done = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            db.close()
        except sqlite3.Error:
            done = 0
        if done:
            proc.kill()
            break
        time.sleep(0.05)
    proc.wait()
    subprocess.run(cmd, check=True, capture_output=True)
    a, b = windows(local_index), windows(tmp_path / "idx")
    assert set(a) == set(b) and min_cosine(a, b) >= 0.999


def test_the_ray_engine_adds_a_file_to_an_existing_usearch_index(tmp_path, cluster, shipped_model):
    # In a fresh driver process: one that maps usearch shards before Ray loads used to abort in
    # ray.init (std::regex_error), because usearch's libstdc++ took over the locale ids.
    root = tmp_path / "rec"
    root.mkdir()
    shutil.copy(EXAMPLES / "voice-notes" / "directions.wav", root)
    index_paths([root], tmp_path / "idx", model=shipped_model, transcribe=False, ann="usearch")
    shutil.copy(EXAMPLES / "radio" / "weather-forecast.mp3", root)
    r = subprocess.run([sys.executable, "-m", "clasp_cli", "index", str(root), "--index", str(tmp_path / "idx"),
                        "--no-transcribe", "--engine", "ray", "--ray-address", cluster, "--device", "cpu"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    with Store.open(tmp_path / "idx") as st:
        assert st.ann_engine() == "usearch" and st.check() == []
        assert sorted(Path(f.path).name for f in st.files()) == ["directions.wav", "weather-forecast.mp3"]


def test_the_ray_engine_finds_each_recordings_voices_on_the_cluster_as_the_local_engine_does(tmp_path, cluster, shipped_model,
                                                                                               local_index):
    events = []
    summary = index_paths([EXAMPLES], tmp_path / "ray", model=shipped_model, transcribe=False, engine="ray",
                          on_event=lambda kind, **kw: events.append(kind))
    assert "speakers_start" not in events  # nothing was left for the driver to hear after the run
    assert summary.diarized == summary.indexed

    def voices(index: Path) -> dict[str, list]:
        """Per recording: its windows' voices, numbered in order of first appearance."""
        db = sqlite3.connect(index / "index.sqlite")
        try:
            out: dict[str, list] = {}
            for path, voice in db.execute("SELECT f.path, pv.voice_id FROM passages p JOIN files f ON f.id=p.file_id "
                                          "LEFT JOIN passage_voices pv ON pv.passage_id=p.id ORDER BY f.path, p.start"):
                out.setdefault(path, []).append(voice)
            return {p: [{v: i for i, v in enumerate(dict.fromkeys(vs))}[v] for v in vs] for p, vs in out.items()}
        finally:
            db.close()

    assert voices(tmp_path / "ray") == voices(local_index)
