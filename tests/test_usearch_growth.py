"""An index on usearch grows like any other: every writing path, each in a fresh `clasp` process.

A fresh process matters: usearch's extension, imported before onnxruntime, crashed the next
C++ library to load (SIGSEGV in the VAD's onnxruntime, std::regex_error in Ray). A run on an
existing usearch index maps its shards before the VAD loads, so only a new process on an
existing index shows it; inside pytest, earlier tests have long imported onnxruntime.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ctrl_c_reaches_it

from clasp_cli.names import display_path
from clasp_cli.store import Store

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "archive"
FIRST = EXAMPLES / "voice-notes" / "directions.wav"
SECOND = EXAMPLES / "radio" / "weather-forecast.mp3"


def clasp(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "clasp_cli", *args, "--device", "cpu"], capture_output=True, text=True)
    if check:
        assert r.returncode == 0, f"rc {r.returncode}: {r.stderr[-2000:]}"
    return r


@pytest.fixture
def usearch_index(tmp_path) -> tuple[Path, Path]:
    """A folder of one recording, indexed on usearch without transcripts."""
    root = tmp_path / "rec"
    root.mkdir()
    shutil.copy(FIRST, root / FIRST.name)
    clasp("index", str(root), "--index", str(tmp_path / "idx"), "--ann", "usearch", "--no-transcribe")
    return root, tmp_path / "idx"


def consistent(index: Path) -> dict[str, int]:
    """Passages per file, after `clasp index --repair` (a fresh process) finds nothing to mend."""
    r = clasp("index", "--repair", "--index", str(index))
    assert "the index is consistent" in r.stdout and "found " not in r.stderr, r.stderr
    with Store.open(index) as st:
        assert st.ann_engine() == "usearch"
        assert st.check() == []
        return {f.path: st.db.execute(
            "SELECT COUNT(*) FROM passages WHERE file_id=?", (f.id,)).fetchone()[0] for f in st.files()}


def test_usearch_is_only_ever_imported_after_onnxruntime():
    code = "from clasp_cli.ann_usearch import index_class; index_class(); import onnxruntime, ctranslate2; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok"


def test_no_module_imports_usearch_but_through_index_class():
    root = Path(__file__).resolve().parent.parent
    offenders = []
    for py in [*root.joinpath("clasp_cli").rglob("*.py"), *root.joinpath("benchmarks").rglob("*.py")]:
        for n, line in enumerate(py.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if ("import usearch" in code or "from usearch" in code) and py.name != "ann_usearch.py":
                offenders.append(f"{py.relative_to(root)}:{n}")
    assert offenders == []


def test_a_file_added_to_an_existing_usearch_index_is_indexed(usearch_index):
    root, index = usearch_index
    shutil.copy(SECOND, root / SECOND.name)
    clasp("index", str(root), "--index", str(index), "--no-transcribe")
    files = consistent(index)
    assert set(files) == {display_path(root / FIRST.name), display_path(root / SECOND.name)}
    assert all(n > 0 for n in files.values())


def test_transcripts_are_filled_into_an_existing_usearch_index(usearch_index):
    root, index = usearch_index
    before = consistent(index)
    clasp("index", "--transcribe", str(root), "--index", str(index))
    assert consistent(index) == before
    with Store.open(index) as st:
        (f,) = st.files()
        assert len(st.spoken(f.id)) == consistent(index)[f.path]  # every window read
        assert any(t.strip() for _, _, t in st.spoken(f.id))


def test_a_watched_usearch_index_takes_in_a_new_file(usearch_index):
    root, index = usearch_index
    proc = subprocess.Popen([sys.executable, "-m", "clasp_cli", "index", str(root), "--index", str(index), "--watch",
                             "--no-transcribe", "--settle", "0.3", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "300"}, preexec_fn=ctrl_c_reaches_it)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("watching "):
                shutil.copy(SECOND, root / SECOND.name)
            elif line.startswith("added ") and SECOND.name in line:
                break
        assert any(line.startswith("added ") for line in seen), "".join(seen)[-2000:]
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=300)  # reached only by a failure
    assert proc.returncode == 130, "".join(seen) + rest  # Ctrl-C: stopped watching, never a crash
    assert set(consistent(index)) == {display_path(root / FIRST.name), display_path(root / SECOND.name)}


def test_a_searcher_kept_open_answers_after_another_process_prunes(tmp_path, shipped_model):
    from clasp_cli.indexer import index_paths
    from clasp_cli.search import Searcher

    root = tmp_path / "rec"
    for folder in ("voice-notes", "radio"):
        shutil.copytree(EXAMPLES / folder, root / folder)
    index_paths([root], tmp_path / "idx", model=shipped_model, transcribe=True, ann="usearch")
    s = Searcher(tmp_path / "idx", model=shipped_model, device="cpu")
    try:
        assert "radio" in s.search("rain at the weekend", mode="vector").results[0].path
        shutil.rmtree(root / "radio")
        clasp("index", str(root), "--index", str(tmp_path / "idx"), "--prune")
        for mode in ("vector", "hybrid"):
            for q in ("rain at the weekend", "the goal in the second half", "turn left at the station"):
                found = s.search(q, mode=mode, top_k=10).results
                assert found and all("radio" not in r.path for r in found)
    finally:
        s.store.close()
    assert set(consistent(tmp_path / "idx")) == {display_path(root / "voice-notes" / n) for n in ("directions.wav", "recipe.mp3")}
