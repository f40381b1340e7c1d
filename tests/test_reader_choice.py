"""`clasp index --reader`: which Whisper reads what was said is a choice, recorded in the index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clasp_cli.errors import UsageError
from clasp_cli.indexer import index_paths
from clasp_cli.search import Searcher
from clasp_cli.store import Store


def _texts(store: Store) -> list[str]:
    return [t for (t,) in store.db.execute("SELECT text FROM transcripts")]


@pytest.fixture(scope="module")
def spoken(tmp_path_factory, say) -> Path:
    d = tmp_path_factory.mktemp("spoken")
    say("The library opens at nine on Saturday morning.", d / "library.wav")
    return d


@pytest.fixture(scope="module")
def tiny_read(tmp_path_factory, spoken, shipped_model) -> Path:
    """The shipped model (whose own Whisper is whisper-base) with whisper-tiny.en reading."""
    index = tmp_path_factory.mktemp("tiny-read") / "idx"
    index_paths([spoken], index, model=shipped_model, transcribe=True, reader="whisper-tiny.en")
    return index


def test_the_chosen_reader_reads_and_is_recorded(tiny_read):
    with Store.open(tiny_read) as store:
        assert store.stats()["reader"] == "whisper-tiny.en"
        texts = [t for t in _texts(store) if t.strip()]
        assert texts and any("library" in t.lower() for t in texts)
        assert store.languages() == {"en": 1}  # an English-only reader reads English


def test_a_later_run_keeps_the_recorded_reader(tiny_read, spoken, shipped_model, say, tmp_path):
    extra = spoken / "second.wav"
    say("Trains to the coast leave every hour.", extra)
    try:
        index_paths([spoken], tiny_read, model=shipped_model)
        with Store.open(tiny_read) as store:
            assert store.stats()["reader"] == "whisper-tiny.en"
            assert any("coast" in t.lower() for t in _texts(store))
    finally:
        extra.unlink()
        index_paths([spoken], tiny_read, model=shipped_model, prune=True)


def test_rerank_reads_with_the_recorded_reader(tiny_read, shipped_model):
    with Searcher(tiny_read, model=shipped_model) as s:
        assert s.transcriber().model == "whisper-tiny.en"


def test_another_reader_for_a_transcribed_index_is_a_usage_error(tiny_read, spoken, shipped_model):
    with pytest.raises(UsageError, match="was read by whisper-tiny.en"):
        index_paths([spoken], tiny_read, model=shipped_model, reader="whisper-base")


def test_a_ctranslate2_directory_reads_and_is_recorded_by_its_full_path(tmp_path, spoken, model_dir):
    from clasp_cli.encoders.whisper_weights import resolve_whisper_path

    tiny = resolve_whisper_path("whisper-tiny.en")
    from clasp_cli.registry import load_model

    index = tmp_path / "idx"
    index_paths([spoken], index, model=load_model(str(model_dir), device="cpu"), transcribe=True, reader=str(tiny))
    with Store.open(index) as store:
        assert store.stats()["reader"] == str(tiny.resolve())
        assert any(t.strip() for t in _texts(store))


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clasp_cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_a_hub_reader_offline_and_not_cached_is_one_clear_error(tmp_path, spoken, model_dir):
    index = tmp_path / "idx"
    r = _cli("index", str(spoken), "--index", str(index), "--model", str(model_dir), "--device", "cpu", "--reader",
             "large-v3-turbo", env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert r.returncode not in (0, 2) and "Traceback" not in r.stderr
    assert "large-v3-turbo" in r.stderr and "CTranslate2 Whisper directory" in r.stderr
    assert not index.exists()  # nothing half-made is left behind


def test_an_unknown_reader_names_the_choices(tmp_path, spoken, model_dir):
    r = _cli("index", str(spoken), "--index", str(tmp_path / "idx"), "--model", str(model_dir), "--device", "cpu",
             "--reader", str(tmp_path / "no-such-whisper"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "whisper-base" in r.stderr and "faster-whisper model name" in r.stderr


def test_reader_without_transcripts_is_a_usage_error(tmp_path, spoken, model_dir):
    r = _cli("index", str(spoken), "--index", str(tmp_path / "idx"), "--model", str(model_dir), "--device", "cpu",
             "--no-transcribe", "--reader", "whisper-base")
    assert r.returncode == 2 and "--reader" in r.stderr


def test_info_json_names_the_reader(tiny_read):
    r = _cli("info", "--index", str(tiny_read), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["reader"] == "whisper-tiny.en"
