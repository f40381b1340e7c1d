"""Passage samples: utterances of one voice joined with pauses, as an index window would hold them."""

from __future__ import annotations

import json

import soundfile as sf

from clasp_cli.data.joined import JoinConfig, build_passages, plan_passages
from clasp_cli.manifest import Utterance, read_manifest


def _utts(n: int, voices=("a", "b"), duration=2.0) -> list[Utterance]:
    return [Utterance(id=f"u{i}", audio=f"u{i}.wav", text=f"Sentence {i}.", voice=voices[i % len(voices)], duration=duration)
            for i in range(n)]


def test_passages_join_only_one_voice_within_the_length_bounds():
    utts = _utts(40)
    cfg = JoinConfig(manifest="m.jsonl", out="o", n=50, min_seconds=3.0, max_seconds=9.0)
    plans = plan_passages(utts, cfg)
    assert len(plans) == 50
    for group in plans:
        assert 2 <= len(group) <= 4 and len({utts[i].voice for i in group}) == 1
        assert 3.0 <= sum(utts[i].duration for i in group) + 0.5 * (len(group) - 1) <= 9.0


def test_built_passages_hold_the_joined_audio_and_text_and_a_rerun_keeps_them(tmp_path, say):
    rows = []
    for i, text in enumerate(["The river is cold today.", "We walked along the shore.", "Then it began to rain."]):
        say(text, tmp_path / f"u{i}.wav")
        rows.append({"id": f"u{i}", "audio": f"u{i}.wav", "text": text, "voice": "espeak:en",
                     "duration": sf.info(str(tmp_path / f"u{i}.wav")).duration, "split": "train"})
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = JoinConfig(manifest=tmp_path / "train.jsonl", out=tmp_path / "p", n=3, min_seconds=1.0, max_seconds=30.0)
    target, skipped = build_passages(cfg)
    assert skipped == []
    items = read_manifest(target)
    assert len(items) == 3
    for item in items:
        parts = item.text.split(". ")
        assert len(parts) >= 2 and item.split == "train" and item.domain == "passage"
        assert abs(sf.info(str(tmp_path / "p" / item.audio)).duration - item.duration) < 0.01
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "p" / "audio").iterdir()}
    build_passages(cfg)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "p" / "audio").iterdir()} == mtimes


def test_a_corrupt_recording_costs_only_the_passages_it_is_in(tmp_path, say):
    rows = []
    for i, text in enumerate(["The river is cold today.", "We walked along the shore."]):
        say(text, tmp_path / f"u{i}.wav")
        rows.append({"id": f"u{i}", "audio": f"u{i}.wav", "text": text, "voice": "a", "duration": 2.0})
    (tmp_path / "bad.wav").write_bytes(b"RIFF" + bytes(300))
    rows.append({"id": "bad", "audio": "bad.wav", "text": "Broken.", "voice": "b", "duration": 2.0})
    rows.append({"id": "u2", "audio": "u0.wav", "text": "Again.", "voice": "b", "duration": 2.0})
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    target, skipped = build_passages(JoinConfig(manifest=tmp_path / "m.jsonl", out=tmp_path / "p", n=6, min_seconds=1.0))
    items = read_manifest(target)
    assert items and all(i.voice == "a" for i in items)
    assert skipped and all("bad.wav" in s for s in skipped)
