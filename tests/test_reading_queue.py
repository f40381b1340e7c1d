"""Recordings read together (reading.queue): full decoder batches across recordings, the same
words as reading each alone, and a recording that fails leaves the others whole."""

from __future__ import annotations

import numpy as np
import pytest

from clasp_cli.audio import load_audio
from clasp_cli.errors import AudioError
from clasp_cli.passages import WindowConfig
from clasp_cli.pipeline import cut_windows
from clasp_cli.reading.queue import ReadingQueue
from clasp_cli.reading.reader import ChunkReader
from clasp_cli.reading.recording import read_recording, wave_audio
from clasp_cli.transcribe import shared_transcriber

LINES = ["The ferry leaves the harbour at seven.", "Please close the window before it rains.",
         "Our meeting moved to the second floor.", "Fresh bread arrives every morning at six."]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory, say) -> list[tuple[list[tuple[float, float]], np.ndarray]]:
    d = tmp_path_factory.mktemp("queue")
    out = []
    for n, line in enumerate(LINES):
        path = say(line, d / f"r{n}.wav")
        _, windows = cut_windows(path, WindowConfig(), 16_000)
        out.append(([(s.start, s.end) for s, _ in windows], load_audio(path, 16_000)))
    return out


class Spy(ChunkReader):
    """The real reader, noting which recordings each decoder call held."""

    def __init__(self, transcriber, batch_size: int):
        super().__init__(transcriber, batch_size=batch_size)
        self.calls: list[int] = []

    def read(self, encoded, langs, seconds=None):
        self.calls.append(len(encoded))
        return super().read(encoded, langs, seconds)


@pytest.fixture(scope="module")
def transcriber():
    return shared_transcriber("whisper-tiny.en")


def test_recordings_queued_together_read_as_each_alone(recordings, transcriber):
    alone = [read_recording(ChunkReader(transcriber), spans, wave_audio(w)).texts for spans, w in recordings]
    got: dict[int, list[str]] = {}
    reader = Spy(transcriber, batch_size=16)
    queue = ReadingQueue(reader, lambda key, r: got.__setitem__(key, r.texts), max_wait_s=None)
    for n, (spans, w) in enumerate(recordings):
        queue.add(n, spans, wave_audio(w))
    assert not got  # nothing decoded while batches are not full ...
    queue.flush()
    assert [got[n] for n in range(len(recordings))] == alone
    assert "window before it rains" in got[1][0].lower()
    assert max(reader.calls) > 1  # ... and then chunks of several recordings share a decoder call


def test_a_full_batch_is_decoded_without_waiting_for_the_flush(recordings, transcriber):
    got: list[int] = []
    queue = ReadingQueue(ChunkReader(transcriber, batch_size=2), lambda key, r: got.append(key))
    same_length = [r for r in recordings if len(r[0]) == 1][:2]
    assert len(same_length) == 2
    for n, (spans, w) in enumerate(same_length):
        queue.add(n, spans, wave_audio(w))
    assert sorted(got) == [0, 1]


def test_a_recording_whose_audio_fails_leaves_nothing_queued_and_the_others_whole(recordings, transcriber):
    got: dict[int, list[str]] = {}
    queue = ReadingQueue(ChunkReader(transcriber), lambda key, r: got.__setitem__(key, r.texts))
    spans, wave = recordings[0]

    def broken(sp):
        raise AudioError("gone.wav", "file changed while reading")
        yield  # a generator, as a streamed file is

    queue.add(0, spans, wave_audio(wave))
    with pytest.raises(AudioError):
        queue.add(1, recordings[1][0], broken)
    queue.flush()
    assert list(got) == [0] and any(got[0])


def test_a_recording_of_a_rare_length_is_not_kept_waiting_for_the_end_of_the_run(recordings, transcriber):
    # Chunks padding to 10, 5, 5 and 15 s, with room for three: when the fourth arrives, the
    # oldest (the 10 s one) is read, not the length with most chunks queued.
    _, wave = recordings[1]
    got: list[int] = []
    queue = ReadingQueue(ChunkReader(transcriber, batch_size=3), lambda key, r: got.append(key), max_queued=3,
                         max_wait_s=None)
    for n, extra in enumerate([6.0, 0.0, 0.0, 11.0]):
        w = np.concatenate([wave, np.zeros(int(extra * 16_000), np.float32)])
        queue.add(n, [(0.0, w.size / 16_000)], wave_audio(w))
    assert got == [0]
    queue.flush()
    assert sorted(got) == [0, 1, 2, 3]


def test_no_chunk_waits_past_the_longest_wait(recordings, transcriber):
    got: list[int] = []
    queue = ReadingQueue(ChunkReader(transcriber), lambda key, r: got.append(key), max_wait_s=0.0)
    for n, (spans, w) in enumerate(recordings[:2]):
        queue.add(n, spans, wave_audio(w))
        assert got == list(range(n + 1))  # read as it came, with no full batch and no flush
