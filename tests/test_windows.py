"""Sentence-scale windows: one per sentence, long speech split with overlap, fragments joined; an
index records how it was cut and keeps cutting that way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clasp_cli.errors import AudioError
from clasp_cli.passages import Span, WindowConfig, find_windows, plan_windows, vad_regions


def test_pauses_split_speech_and_short_gaps_are_bridged():
    p = np.array([0, 0.9, 0.9, 0.4, 0.9, 0, 0, 0, 0, 0, 0.9, 0.9, 0.9, 0.1])
    regions = vad_regions(p, 0.1, WindowConfig(min_pause=0.25, min_speech=0.1))
    assert [(round(r.start, 2), round(r.end, 2)) for r in regions] == [(0.1, 0.5), (1.0, 1.3)]


def test_each_sentence_gets_its_own_window_padded_with_context():
    cfg = WindowConfig(pad=0.1)
    w = plan_windows([Span(1.0, 3.5), Span(4.0, 7.0)], 10.0, cfg)
    assert w == [Span(0.9, 3.6), Span(3.9, 7.1)]


def test_long_speech_without_a_pause_is_covered_by_overlapping_windows():
    cfg = WindowConfig(max_seconds=6.0, overlap=2.0, pad=0.0)
    w = plan_windows([Span(0.0, 20.0)], 20.0, cfg)
    assert all(abs(x.duration - 6.0) < 1e-6 for x in w)
    assert w[0].start == 0.0 and w[-1].end == 20.0
    assert all(b.start < a.end - 1.9 for a, b in zip(w, w[1:]))  # at least the overlap


def test_a_fragment_joins_its_neighbour():
    cfg = WindowConfig(min_seconds=1.0, max_seconds=6.0, pad=0.0)
    w = plan_windows([Span(0.0, 3.0), Span(3.4, 3.8), Span(6.0, 9.0)], 10.0, cfg)
    assert w == [Span(0.0, 3.8), Span(6.0, 9.0)]


def test_windows_of_a_real_recording_follow_its_sentences(tmp_path, say):
    import soundfile as sf

    from clasp_cli.audio import load_audio

    a = load_audio(say("The budget was approved on Tuesday.", tmp_path / "a.wav"))
    b = load_audio(say("Everyone went home early for the weekend.", tmp_path / "b.wav"))
    gap = np.zeros(16000, np.float32)
    sf.write(tmp_path / "two.wav", np.concatenate([gap, a, gap, b, gap]), 16000)
    windows, duration = find_windows(tmp_path / "two.wav")
    assert len(windows) == 2
    first_end = (16000 + a.size) / 16000
    assert windows[0].start < 1.0 + 0.3 and abs(windows[0].end - first_end) < 0.5
    assert windows[1].start > first_end + 0.3


def test_silence_has_no_windows(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "quiet.wav", np.zeros(48000, np.float32), 16000)
    with pytest.raises(AudioError, match="no speech"):
        find_windows(tmp_path / "quiet.wav")


# -- an index cuts every recording one way ---------------------------------------------------------

def _recorded_cut(index: Path) -> str:
    from clasp_cli.store import Store

    with Store.open(index) as s:
        return json.loads(s.meta("segmentation"))["kind"]


def test_a_new_index_is_cut_into_sentence_windows(tmp_path, archive, model):
    from clasp_cli.indexer import index_paths

    index_paths([archive], tmp_path / "idx", model=model)
    assert _recorded_cut(tmp_path / "idx") == "windows"


def test_a_rerun_keeps_the_cut_the_index_was_built_with(tmp_path, archive, model, say):
    from clasp_cli.indexer import index_paths
    from clasp_cli.passages import PassageConfig

    idx = tmp_path / "idx"
    index_paths([archive / "weather.wav"], idx, model=model, passages=PassageConfig(min_seconds=2.0))
    say("A new recording arrives later.", archive / "later.wav")
    index_paths([archive], idx, model=model)  # no segmentation given
    assert _recorded_cut(idx) == "passages"
    from clasp_cli.store import Store

    with Store.open(idx) as s:
        assert json.loads(s.meta("segmentation"))["min_seconds"] == 2.0


def test_asking_for_the_other_cut_on_an_existing_index_is_refused(tmp_path, archive, model):
    from clasp_cli.errors import UsageError
    from clasp_cli.indexer import index_paths
    from clasp_cli.passages import PassageConfig

    idx = tmp_path / "idx"
    index_paths([archive / "weather.wav"], idx, model=model)
    with pytest.raises(UsageError, match=r"cut into windows, not passages.*--rebuild --segmentation passages"):
        index_paths([archive], idx, model=model, passages=PassageConfig())


def test_an_index_from_before_the_cut_was_recorded_stays_in_passages(tmp_path, archive, model):
    from clasp_cli.indexer import index_paths
    from clasp_cli.passages import PassageConfig
    from clasp_cli.store import Store

    idx = tmp_path / "idx"
    index_paths([archive / "weather.wav"], idx, model=model, passages=PassageConfig())
    with Store.open(idx, write=True) as s, s.transaction():
        s.db.execute("DELETE FROM meta WHERE key='segmentation'")
    index_paths([archive], idx, model=model)
    assert _recorded_cut(idx) == "passages"


def test_rebuild_recuts_the_way_the_old_index_was_cut(tmp_path, archive, model):
    from clasp_cli.indexer import index_paths
    from clasp_cli.passages import PassageConfig
    from clasp_cli.repair import rebuild_index

    idx = tmp_path / "idx"
    index_paths([archive], idx, model=model, passages=PassageConfig())
    rebuild_index(idx, [], model=model)
    assert _recorded_cut(idx) == "passages"


def test_cli_segmentation_lengths_apply_to_the_recorded_cut(tmp_path, archive, model_dir):
    from typer.testing import CliRunner

    from clasp_cli.cli import app

    idx = tmp_path / "idx"
    r = CliRunner().invoke(app, ["index", str(archive / "weather.wav"), "--index", str(idx), "--model", str(model_dir),
                                 "--segmentation", "passages"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["index", str(archive), "--index", str(idx), "--max-seconds", "8"])
    assert r.exit_code == 0, r.output
    assert _recorded_cut(idx) == "passages"
    r = CliRunner().invoke(app, ["index", str(archive), "--index", str(idx), "--segmentation", "windows"])
    assert r.exit_code == 2 and "cut into passages" in r.output
