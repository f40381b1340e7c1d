"""Who speaks: turns and voices found at index time, speakers across recordings, and what a
person does with them (list, name, merge, re-cluster, filter, find by voice), on the shipped
speaker models and the example archive's recordings (six voices in eight recordings)."""

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
from clasp_cli.speakers.cluster import ahc
from clasp_cli.speakers.diarize import Diarization, Voice
from clasp_cli.speakers.index import list_speakers, name_speaker, save_diarization
from clasp_cli.store import Store

runner = CliRunner()
EXAMPLES = Path(__file__).parents[1] / "examples" / "archive"
ROOT = Path(__file__).parents[1]


def clasp(*args: str):
    return runner.invoke(app, [*args])


@pytest.fixture
def index_copy(examples_transcribed, tmp_path) -> Path:
    """A copy of the transcribed example index this test may change."""
    d = tmp_path / "index"
    shutil.copytree(examples_transcribed, d, ignore=shutil.ignore_patterns("*.lock"))
    return d


def speakers_json(index: Path) -> list[dict]:
    r = clasp("speakers", "--index", str(index), "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def speaker_of(index: Path, recording: str) -> int:
    """The speaker with the most speech in one recording of the example archive."""
    with Store.open(index) as st:
        return st.db.execute("SELECT v.speaker_id FROM voices v JOIN files f ON f.id=v.file_id WHERE f.path LIKE ? "
                             "ORDER BY v.seconds DESC LIMIT 1", (f"%{recording}",)).fetchone()[0]


def test_a_default_index_gives_nearly_every_window_a_speaker(examples_transcribed):
    with Store.open(examples_transcribed) as st:
        windows = st.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        voiced = st.db.execute("SELECT COUNT(*) FROM passage_voices WHERE voice_id IS NOT NULL").fetchone()[0]
        diarized = st.db.execute("SELECT COUNT(*) FROM diarized").fetchone()[0]
    assert diarized == 8 and voiced >= 0.9 * windows


def test_speakers_json_lists_id_name_seconds_files_and_a_sample(examples_transcribed):
    got = speakers_json(examples_transcribed)
    assert 2 <= len(got) <= 10
    for s in got:
        assert {"id", "name", "seconds", "files"} <= set(s) and s["name"] is None and s["seconds"] > 0
        assert s["sample"]["end"] > s["sample"]["start"]
    assert sum(s["seconds"] for s in got) > 100  # the archive holds about 150 s of speech


def test_one_recording_is_mostly_one_voice(examples_transcribed):
    with Store.open(examples_transcribed) as st:
        for f in st.files():
            secs = [r[0] for r in st.db.execute("SELECT seconds FROM voices WHERE file_id=? ORDER BY seconds DESC", (f.id,))]
            assert secs and secs[0] >= 0.8 * sum(secs), f.path


def test_naming_a_speaker_shows_in_the_list_and_in_search_results(index_copy):
    sid = speaker_of(index_copy, "council-budget.wav")
    r = clasp("speakers", "name", str(sid), "Council Clerk", "--index", str(index_copy))
    assert r.exit_code == 0, r.output
    assert any(s["id"] == sid and s["name"] == "Council Clerk" for s in speakers_json(index_copy))
    r = clasp("search", "the city council voted on the budget", "--index", str(index_copy), "--device", "cpu", "--json", "-k", "1")
    hit = json.loads(r.stdout)["results"][0]
    assert hit["path"].endswith("council-budget.wav") and hit["speaker"] == {"id": sid, "name": "Council Clerk"}


def test_a_name_is_unique_and_an_unknown_speaker_is_a_one_line_usage_error(index_copy):
    a, b = (s["id"] for s in speakers_json(index_copy)[:2])
    assert clasp("speakers", "name", str(a), "Ann", "--index", str(index_copy)).exit_code == 0
    r = clasp("speakers", "name", str(b), "ann", "--index", str(index_copy))
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "merge" in r.output
    r = clasp("search", "rain", "--speaker", "Nobody", "--index", str(index_copy), "--device", "cpu")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "Nobody" in r.output


def test_merging_two_speakers_leaves_one_with_the_recordings_of_both(index_copy):
    a, b = speaker_of(index_copy, "weather-forecast.mp3"), speaker_of(index_copy, "astronomy.flac")
    assert a != b
    files = {s["id"]: s["files"] for s in speakers_json(index_copy)}
    r = clasp("speakers", "merge", str(a), str(b), "--index", str(index_copy))
    assert r.exit_code == 0, r.output
    after = {s["id"]: s for s in speakers_json(index_copy)}
    assert b not in after and after[a]["files"] == files[a] + files[b]


def test_recluster_keeps_names_and_merges(index_copy):
    a, b = speaker_of(index_copy, "weather-forecast.mp3"), speaker_of(index_copy, "astronomy.flac")
    c = speaker_of(index_copy, "recipe.mp3")
    assert clasp("speakers", "merge", str(a), str(b), "--index", str(index_copy)).exit_code == 0
    assert clasp("speakers", "name", str(c), "Grandmother", "--index", str(index_copy)).exit_code == 0
    r = clasp("speakers", "recluster", "--index", str(index_copy), "--json")
    assert r.exit_code == 0, r.output
    assert speaker_of(index_copy, "weather-forecast.mp3") == speaker_of(index_copy, "astronomy.flac") == a
    assert speaker_of(index_copy, "recipe.mp3") == c
    assert {s["id"]: s["name"] for s in speakers_json(index_copy)}[c] == "Grandmother"


def test_speaker_filter_keeps_only_that_speakers_windows(index_copy):
    sid = speaker_of(index_copy, "football-report.ogg")
    r = clasp("search", "the weather this weekend", "--speaker", str(sid), "--index", str(index_copy), "--device", "cpu",
              "--json", "-k", "5")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)["results"]
    assert hits and all(h["speaker"]["id"] == sid for h in hits)


def test_a_voice_finds_its_own_recordings_first(examples_transcribed, tmp_path):
    wave, sr = sf.read(EXAMPLES / "meetings" / "council-budget.wav", dtype="float32")
    clip = tmp_path / "clerk.wav"
    sf.write(clip, wave[sr: 7 * sr], sr)
    r = clasp("search", "--voice", str(clip), "--index", str(examples_transcribed), "--device", "cpu", "--json", "-k", "4")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)["results"]
    assert [Path(h["path"]).parent.name for h in hits[:2]] == ["meetings", "meetings"]
    assert hits[0]["score"] > hits[-1]["score"]


def test_a_voice_with_a_query_finds_what_that_voice_said(examples_transcribed, tmp_path):
    wave, sr = sf.read(EXAMPLES / "meetings" / "council-budget.wav", dtype="float32")
    clip = tmp_path / "clerk.wav"
    sf.write(clip, wave[sr: 7 * sr], sr)
    r = clasp("search", "a bug that drains the battery", "--voice", str(clip), "--index", str(examples_transcribed),
              "--device", "cpu", "--json", "-k", "1")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"][0]["path"].endswith("product-launch.flac")  # the same voice, another meeting


def test_a_silent_voice_clip_is_a_one_line_error(examples_transcribed, tmp_path):
    clip = tmp_path / "silence.wav"
    sf.write(clip, np.zeros(16000 * 2, dtype=np.float32), 16000)
    r = clasp("search", "--voice", str(clip), "--index", str(examples_transcribed), "--device", "cpu")
    assert r.exit_code == 3 and len(r.output.strip().splitlines()) == 1 and "silence.wav" in r.output


def test_vtt_export_names_the_voice_of_each_cue(index_copy, tmp_path):
    sid = speaker_of(index_copy, "council-budget.wav")
    clasp("speakers", "name", str(sid), "Council Clerk", "--index", str(index_copy))
    r = clasp("export", "--format", "vtt", "--path", "*council-budget.wav", "--out", "-", "--index", str(index_copy))
    assert r.exit_code == 0, r.output
    assert "<v Council Clerk>" in r.stdout
    r = clasp("export", "--format", "srt", "--path", "*council-budget.wav", "--out", "-", "--index", str(index_copy))
    assert "[Council Clerk] " in r.stdout


def test_no_speakers_is_remembered_and_speakers_later_fills_them_in(shipped_model, tmp_path):
    from clasp_cli.indexer import index_paths

    d = tmp_path / "index"
    src = EXAMPLES / "meetings"
    index_paths([src], d, model=shipped_model, transcribe=False, speakers=False)
    with Store.open(d) as st:
        assert not list_speakers(st)
    index_paths([src], d, model=shipped_model)  # a default run keeps it off
    with Store.open(d) as st:
        assert not list_speakers(st) and st.meta("speakers") == "0"
    summary = index_paths([src], d, model=shipped_model, speakers=True)
    assert summary.diarized == 2
    with Store.open(d) as st:
        assert list_speakers(st)


def test_a_recording_whose_speakers_were_not_committed_is_done_by_the_next_run(shipped_model, tmp_path):
    from clasp_cli.indexer import index_paths

    d = tmp_path / "index"
    index_paths([EXAMPLES / "meetings"], d, model=shipped_model, transcribe=False)
    with Store.open(d, write=True) as st, st.transaction() as db:  # as if killed before its commit
        fid = db.execute("SELECT file_id FROM diarized LIMIT 1").fetchone()[0]
        db.execute("DELETE FROM diarized WHERE file_id=?", (fid,))
        db.execute("DELETE FROM voices WHERE file_id=?", (fid,))
    assert index_paths([EXAMPLES / "meetings"], d, model=shipped_model).diarized == 1
    with Store.open(d) as st:
        assert st.db.execute("SELECT COUNT(*) FROM voices WHERE file_id=?", (fid,)).fetchone()[0] >= 1


def test_a_damaged_speaker_model_is_one_line_and_exit_4(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(ROOT / "clasp_cli" / "models" / "speakers", models)
    bad = models / "campplus-trunk.onnx"
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    env = dict(os.environ, CLASP_SPEAKER_MODELS=str(models), PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "clasp_cli", "index", str(EXAMPLES / "meetings"), "--index", str(tmp_path / "i"),
                        "--device", "cpu", "--no-transcribe"], env=env, capture_output=True, text=True)
    assert r.returncode == 4, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "campplus-trunk.onnx" in lines[0] and "damaged" in lines[0]


def test_alike_vectors_group_and_a_different_one_stays_alone():
    v = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert list(ahc(v, 0.5)) == [0, 0, 1]


def _at(degrees: float) -> np.ndarray:
    """A unit speaker vector at this angle from the first axis (the angle between two is their likeness)."""
    v = np.zeros(192, dtype=np.float32)
    v[0], v[1] = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return v


def _hear_one_voice(st: Store, name: str, degrees: float, seconds: float) -> int:
    """Index a recording of one window in which one voice speaks; returns its voice's speaker."""
    st.replace_file(f"/r/{name}.wav", 1, 1.0, name, seconds, [(0.0, seconds)], np.ones((1, 8), np.float32) / np.sqrt(8))
    fid, pid = st.db.execute("SELECT f.id, p.id FROM files f JOIN passages p ON p.file_id=f.id WHERE f.path=?", (f"/r/{name}.wav",)).fetchone()
    return save_diarization(st, fid, [pid], Diarization([Voice(_at(degrees), seconds)], [], [0], _at(degrees)[None]))[0]


def test_a_voice_under_a_second_joins_the_nearest_speaker_instead_of_starting_one(tmp_path):
    with Store.open(tmp_path / "i", write=True, model_id="m", dim=8) as st:
        first = _hear_one_voice(st, "a", 0, 30.0)
        assert _hear_one_voice(st, "blip", 80, 0.8) == first  # too short to say it is someone new
        assert _hear_one_voice(st, "b", 80, 3.0) != first
        assert len(list_speakers(st)) == 2


def test_a_speaker_that_drifts_within_reach_of_another_becomes_one_with_it(tmp_path):
    with Store.open(tmp_path / "i", write=True, model_id="m", dim=8) as st:
        a = _hear_one_voice(st, "a", 0, 60.0)
        b = _hear_one_voice(st, "b", 53, 20.0)  # cosine 0.6: a new speaker
        assert a != b and _hear_one_voice(st, "c1", 30, 9.0) == b  # nearer b, pulling it towards a
        assert len(list_speakers(st)) == 2
        _hear_one_voice(st, "c2", 30, 9.0)
        _hear_one_voice(st, "c3", 30, 9.0)
        assert [s.id for s in list_speakers(st)] == [a]  # the larger keeps its id; every voice is a's


def test_two_named_speakers_never_become_one_by_drifting(tmp_path):
    with Store.open(tmp_path / "i", write=True, model_id="m", dim=8) as st:
        a = _hear_one_voice(st, "a", 0, 20.0)
        b = _hear_one_voice(st, "b", 53, 20.0)
        name_speaker(st, a, "Ann")
        name_speaker(st, b, "Bo")
        for i in range(4):
            _hear_one_voice(st, f"c{i}", 30, 9.0)
        assert sorted(s.name for s in list_speakers(st)) == ["Ann", "Bo"]


def _speaker_vector(st: Store, sid: int) -> np.ndarray:
    return np.frombuffer(st.db.execute("SELECT vector FROM speakers WHERE id=?", (sid,)).fetchone()[0], dtype=np.float32)


def _mean(*voices: tuple[float, float]) -> np.ndarray:
    total = sum(seconds * _at(degrees).astype(np.float64) for degrees, seconds in voices)
    return total / np.linalg.norm(total)


def test_a_speaker_vector_kept_while_voices_join_is_the_seconds_weighted_mean_of_its_voices(tmp_path):
    with Store.open(tmp_path / "i", write=True, model_id="m", dim=8) as st:
        heard = [(0, 30.0), (10, 12.0), (-8, 20.0), (5, 4.0), (12, 40.0)]
        sid = {_hear_one_voice(st, f"r{i}", d, s) for i, (d, s) in enumerate(heard)}
        assert len(sid) == 1
        assert np.allclose(_speaker_vector(st, sid.pop()), _mean(*heard), atol=1e-5)


def test_a_recording_indexed_again_leaves_its_old_voice_out_of_the_speaker_vector(tmp_path):
    with Store.open(tmp_path / "i", write=True, model_id="m", dim=8) as st:
        sid = _hear_one_voice(st, "a", 0, 30.0)
        assert _hear_one_voice(st, "b", 30, 30.0) == sid
        assert _hear_one_voice(st, "b", -20, 30.0) == sid  # b changed on disk: its old voice is gone
        assert np.allclose(_speaker_vector(st, sid), _mean((0, 30.0), (-20, 30.0)), atol=1e-5)



def test_a_lower_overlap_level_hears_two_voices_in_more_frames_and_zero_in_all():
    from clasp_cli.speakers.segment import CHUNK_SAMPLES, FRAMES, Segmenter

    chunk = np.random.default_rng(0).standard_normal((1, CHUNK_SAMPLES)).astype(np.float32) * 0.1
    seg = Segmenter(threads=1)
    two = {level: int((seg.activity(chunk, overlap_at=level).sum(axis=-1) == 2).sum()) for level in (1.0, 0.3, 0.0)}
    assert two[1.0] <= two[0.3] <= two[0.0] == FRAMES


def test_a_window_whose_stored_speaker_vector_is_damaged_is_left_out_of_query_by_voice(tmp_path):
    from clasp_cli.speakers.index import voice_vectors

    with Store.open(tmp_path / "i", write=True, model_id="m", dim=8) as st:
        for name, degrees in (("a", 0), ("b", 40), ("c", 80)):
            _hear_one_voice(st, name, degrees, 20.0)
        ids, own, _, _ = voice_vectors(st)
        assert len(ids) == 3 and np.allclose(own[:, :2].astype(np.float32), [_at(d)[:2] for d in (0, 40, 80)], atol=1e-3)
        with st.transaction() as db:
            db.execute("UPDATE passage_voices SET vector=? WHERE passage_id=?", (b"\0" * 10, int(ids[1])))
        kept, own, voice_of, voices = voice_vectors(st)
        assert list(kept) == [ids[0], ids[2]] and own.shape == (2, 192) and len(voices) == 3 and list(voice_of) == [0, 2]
