"""The reading second stage: windows are transcribed once, and what was said decides the order."""

from __future__ import annotations

import numpy as np
import pytest

from clasp_cli.audio import load_audio
from clasp_cli.encoders.text import build_text_encoder
from clasp_cli.rerank import Candidate, rerank
from clasp_cli.transcribe import Transcriber


class DictCache:
    def __init__(self):
        self.items: dict[int, str] = {}

    def transcripts(self, ids):
        return {i: self.items[i] for i in ids if i in self.items}

    def put_transcripts(self, items):
        self.items.update(items)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory, say):
    d = tmp_path_factory.mktemp("rr")
    texts = ["The weather will be sunny tomorrow.", "The train to Berlin leaves at noon.", "Please close the window."]
    return [load_audio(say(t, d / f"{i}.wav")) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def asr():
    return Transcriber("whisper-tiny.en", threads=2)


def test_the_spoken_match_rises_to_the_top_and_each_window_is_read_once(spoken, asr):
    text = build_text_encoder("use-multilingual")
    calls = []

    def transcribe(waves):
        calls.append(len(waves))
        return asr.transcribe(waves)

    # The first stage got it wrong: the right window (id 1) is last.
    cands = [Candidate(0, 0.5, "/a", 0, 1), Candidate(2, 0.45, "/a", 2, 3), Candidate(1, 0.4, "/a", 1, 2)]
    q = text.encode(["When does the train to Berlin leave?"])[0]
    cache = DictCache()
    ranked, transcripts = rerank(q, cands, cache, lambda cs: [spoken[c.id] for c in cs], transcribe, text.encode)
    assert ranked[0].id == 1 and "Berlin" in transcripts[1]
    assert calls == [3]
    again, _ = rerank(q, cands, cache, lambda cs: [spoken[c.id] for c in cs], transcribe, text.encode)
    assert calls == [3] and [c.id for c in again] == [c.id for c in ranked]


def test_nothing_to_rerank_reads_nothing():
    assert rerank(np.zeros(512), [], DictCache(), None, None, None) == ([], {})


def test_batched_reading_hears_the_same_words_as_one_clip_at_a_time(spoken, asr):
    one_by_one = asr.transcribe(spoken)
    batched = asr.transcribe_batch(spoken, batch_size=2)  # two batches of different lengths
    assert "Berlin" in batched[1] and "window" in batched[2].lower()
    for a, b in zip(one_by_one, batched):
        assert set(a.lower().split()) & set(b.lower().split())


def test_batched_reading_keeps_the_order_and_reads_a_clip_past_30_s_in_pieces(spoken, asr):
    gap = np.zeros(16000 * 14, dtype=np.float32)
    long = np.concatenate([spoken[1], gap, gap, spoken[2]])  # over 30 s: the window starts again
    out = asr.transcribe_batch([spoken[2], long, np.zeros(0, dtype=np.float32), spoken[0]])
    assert "window" in out[0].lower() and "weather" in out[3].lower()
    assert "Berlin" in out[1] and "window" in out[1].lower()
    assert out[2] == ""
