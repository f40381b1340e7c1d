"""The test archive: programs joined from utterances, sentence spans recorded, passage-level scoring."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from clasp_cli.archive import ArchiveConfig, Query, build_archive, hit_rank, load_archive, passage_scores, queries, spread


def test_programs_hold_one_voice_and_record_where_each_sentence_lies(tmp_path, say):
    rows = []
    texts = ["The river is cold today.", "We walked along the shore.", "Then it began to rain.", "The bus was late again."]
    for i, text in enumerate(texts):
        say(text, tmp_path / f"u{i}.wav", voice="en" if i % 2 else "en+f3")
        rows.append({"id": f"u{i}", "audio": f"u{i}.wav", "text": text, "voice": "en" if i % 2 else "en+f3",
                     "translations": {"de": f"Satz {i}."}})
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    programs = build_archive(ArchiveConfig(manifest=tmp_path / "test.jsonl", out=tmp_path / "arch", per_program=10))
    assert len(programs) == 2 and {p.voice for p in programs} == {"en", "en+f3"}
    assert load_archive(tmp_path / "arch") == programs
    for p in programs:
        wave, sr = sf.read(tmp_path / "arch" / p.path)
        assert abs(len(wave) / sr - p.duration) < 0.01
        for s in p.sentences:
            seg = wave[int(s.start * sr) : int(s.end * sr)]
            assert np.abs(seg).max() > 0.05  # speech inside the span ...
        gaps = [wave[int(a.end * sr) + 800 : int(b.start * sr) - 800] for a, b in zip(p.sentences, p.sentences[1:])]
        assert all(np.abs(g).max() < 0.01 for g in gaps)  # ... and only room tone between
    qs = queries(programs, tmp_path / "arch")
    assert len(qs) == 8 and {q.lang for q in qs} == {"en", "de"}


def test_a_hit_counts_when_it_is_in_the_right_program_and_covers_half_the_sentence():
    q = Query("x", "en", "/a.flac", 10.0, 14.0)
    assert hit_rank(q, [("/b.flac", 10.0, 14.0), ("/a.flac", 0.0, 9.0), ("/a.flac", 11.0, 20.0)]) == 3
    assert hit_rank(q, [("/a.flac", 12.5, 20.0)]) is None  # covers only 1.5 of 4 s
    assert passage_scores([1, 3, None, 2]) == {"n": 4, "hits@1": 0.25, "hits@5": 0.75, "mrr": round((1 + 1 / 3 + 0.5) / 4, 4)}


def test_spread_takes_programs_evenly_through_the_list():
    assert spread(list(range(10)), 3) == [0, 3, 6]
    assert spread(list(range(4)), 10) == [0, 1, 2, 3]  # asking for more keeps them all
