"""A full disk is not damage, and --rebuild never loses an index: it builds the new one beside the
old, which keeps answering searches until the new one takes its place."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clasp_cli.indexer import index_paths
from clasp_cli.repair import STAGING, rebuild_index
from clasp_cli.search import search
from clasp_cli.store import DB, Store

ROOT = Path(__file__).parents[1]


def clasp(*args: str) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "clasp_cli", *args], capture_output=True, text=True, env=e, cwd="/", timeout=300)


def top(index: Path, query: str = "sunny morning with light rain") -> list[tuple[str, float]]:
    return [(r.path, round(r.score, 5)) for r in search(query, index, top_k=4, device="cpu").results]


def test_searches_during_a_rebuild_answer_from_the_whole_old_index(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    before = top(idx)
    during: list = []

    def on_event(kind: str, **d) -> None:
        if kind == "file":  # the new index is part-built now
            during.append(top(idx))

    summary, aside = rebuild_index(idx, [], model=model, on_event=on_event)
    assert len(during) == 4 and all(d == before for d in during)
    assert summary.added == 4 and top(idx) == before


def test_a_healthy_index_rebuilt_is_kept_as_previous_and_nothing_is_left_staged(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    _, aside = rebuild_index(idx, [], model=model)
    assert aside is not None and aside.name.startswith("previous-") and (aside / DB).is_file()
    assert not (idx / STAGING).exists()
    with Store.open(aside) as old, Store.open(idx) as new:
        assert len(old.files()) == len(new.files()) == 4


def test_a_stopped_rebuild_leaves_the_old_index_and_the_next_one_resumes(tmp_path, archive, model):
    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model)
    before = top(idx)
    seen = []

    def stop_after_two(kind: str, **d) -> None:
        if kind == "file":
            seen.append(d["path"])
            if len(seen) == 2:
                raise KeyboardInterrupt

    summary, aside = rebuild_index(idx, [], model=model, on_event=stop_after_two)
    assert summary.interrupted and aside is None and top(idx) == before
    summary, aside = rebuild_index(idx, [], model=model)
    assert summary.unchanged == 2 and summary.added == 2 and aside is not None and top(idx) == before


def test_rebuild_refuses_when_it_cannot_read_which_files_the_index_holds(tmp_path):
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / DB).write_bytes(b"\0" * 8192)  # nothing SQLite can read
    r = clasp("index", "--rebuild", "--index", str(idx))
    assert r.returncode == 2 and "nothing was changed" in r.stderr and "Traceback" not in r.stderr
    assert (idx / DB).read_bytes() == b"\0" * 8192


@pytest.fixture
def small_disk(tmp_path):
    """A 40 MB filesystem of its own (tmpfs), to fill up; root only."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("filling a disk needs a tmpfs mount (root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(disk: Path) -> Path:
    ballast = disk / "ballast"
    with open(ballast, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 2**20)
                fh.flush()
        except OSError:
            pass
    return ballast


def test_on_a_full_disk_search_info_and_rerank_answer_and_rebuild_loses_nothing(small_disk, archive, model):
    idx = small_disk / "idx"
    index_paths([archive], idx, model=model)
    before = top(idx)
    files_before = sorted(p.name for p in idx.iterdir())
    ballast = fill(small_disk)
    r = clasp("search", "sunny morning with light rain", "--index", str(idx), "--json")
    assert r.returncode == 0, r.stderr
    assert clasp("info", "--index", str(idx)).returncode == 0
    rr = clasp("search", "sunny morning with light rain", "--index", str(idx), "--rerank", "2", "--device", "cpu")
    assert rr.returncode == 0 and "Traceback" not in rr.stderr, rr.stderr
    reb = clasp("index", "--rebuild", "--index", str(idx), "--device", "cpu")
    assert reb.returncode == 7 and "disk" in reb.stderr and "full" in reb.stderr and "Traceback" not in reb.stderr
    assert "damaged" not in reb.stderr.replace("not damaged", "")
    assert sorted(p.name for p in idx.iterdir() if p.name != STAGING) == files_before
    ballast.unlink()
    assert top(idx) == before
    with Store.open(idx, write=True, check=True) as s:
        assert s.check() == []
