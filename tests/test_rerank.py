"""The reading stage of --rerank: windows are transcribed once, and kept with their text vectors."""

from __future__ import annotations

import numpy as np
import pytest

from clasp_cli.audio import load_audio
from clasp_cli.encoders.text import build_text_encoder
from clasp_cli.rerank import Candidate, read
from clasp_cli.transcribe import Transcriber


class DictCache:
    def __init__(self):
        self.items: dict[int, str] = {}
        self.vectors: dict[int, np.ndarray] = {}
        self.e5_vectors: dict[int, np.ndarray] = {}

    def transcripts(self, ids):
        return {i: self.items[i] for i in ids if i in self.items}

    def put_transcripts(self, items, vectors=None, *, e5_vectors=None):
        self.items.update(items)
        self.vectors.update(vectors or {})
        self.e5_vectors.update(e5_vectors or {})
        return True


@pytest.fixture(scope="module")
def spoken(tmp_path_factory, say):
    d = tmp_path_factory.mktemp("rr")
    texts = ["The weather will be sunny tomorrow.", "The train to Berlin leaves at noon.", "Please close the window."]
    return [load_audio(say(t, d / f"{i}.wav")) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def asr():
    return Transcriber("whisper-tiny.en", threads=2)


def test_each_window_is_transcribed_once_and_kept_with_its_text_vector(spoken, asr):
    text = build_text_encoder("use-multilingual")
    calls = []

    def transcribe(cs):
        calls.append(len(cs))
        return dict(zip((c.id for c in cs), asr.transcribe([spoken[c.id] for c in cs])))

    cands = [Candidate(0, 0.5, "/a", 0, 1), Candidate(2, 0.45, "/a", 2, 3), Candidate(1, 0.4, "/a", 1, 2)]
    cache = DictCache()
    texts, vectors = read(cands, cache, transcribe, text.encode)
    assert "Berlin" in texts[1] and set(vectors) == {0, 1, 2} and set(cache.vectors) == {0, 1, 2}
    assert calls == [3]
    q = text.encode(["When does the train to Berlin leave?"])[0]
    assert max(vectors, key=lambda i: float(vectors[i] @ q)) == 1  # what was said points at the right window
    again, new = read(cands, cache, transcribe, text.encode)
    assert calls == [3] and again == texts and new == {}


def test_a_window_that_cannot_be_read_stays_without_a_transcript(spoken, asr):
    cands = [Candidate(0, 0.5, "/a", 0, 1), Candidate(1, 0.4, "/gone", 1, 2)]
    texts, _ = read(cands, DictCache(), lambda cs: {c.id: asr.transcribe([spoken[0]])[0] for c in cs if c.id == 0})
    assert set(texts) == {0}


def test_nothing_to_read_reads_nothing():
    assert read([], DictCache(), None) == ({}, {})


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
