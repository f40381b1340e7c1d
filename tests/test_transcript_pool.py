"""Transcripts of an indexing run are decoded in batches pooled across files, and a run stopped
with windows still pooled leaves them for the next run to transcribe."""

from __future__ import annotations

import shutil
from pathlib import Path

from clasp_cli.indexer import index_paths
from clasp_cli.store import Store
from clasp_cli.transcribe import Transcriber

CLIP = Path(__file__).parents[1] / "examples" / "archive" / "voice-notes" / "directions.wav"


def copies(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        shutil.copy(CLIP, folder / f"note-{i}.wav")
    return folder


def counts(index: Path) -> tuple[int, int]:
    with Store.open(index) as s:
        return (s.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0],
                s.db.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0])


def test_windows_of_several_files_share_one_decoder_batch(tmp_path, model, monkeypatch):
    calls = []
    real = Transcriber.transcribe_encoded

    def counting(self, encoded, langs=None, batch_size=8):
        calls.append(len(encoded))
        return real(self, encoded, langs, batch_size)

    monkeypatch.setattr(Transcriber, "transcribe_encoded", counting)
    s = index_paths([copies(tmp_path / "in", 3)], tmp_path / "idx", model=model, transcribe=True)
    passages, transcripts = counts(tmp_path / "idx")
    assert s.added == 3 and transcripts == passages == s.transcribed
    per_file = passages // 3
    assert max(calls) >= 3 and sum(calls) == passages  # each length's windows of all 3 files in one call
    assert len(calls) <= per_file


def test_windows_still_pooled_when_a_run_stops_are_transcribed_by_the_next(tmp_path, model):
    folder = copies(tmp_path / "in", 3)
    seen = []

    def stop_after_two(kind, **d):
        if kind == "file":
            seen.append(d["path"])
            if len(seen) == 2:
                raise KeyboardInterrupt

    first = index_paths([folder], tmp_path / "idx", model=model, transcribe=True, on_event=stop_after_two)
    passages, transcripts = counts(tmp_path / "idx")
    assert first.interrupted and passages > 0 and transcripts < passages  # committed, not yet transcribed
    again = index_paths([folder], tmp_path / "idx", model=model, transcribe=True)
    passages, transcripts = counts(tmp_path / "idx")
    assert again.added == 1 and transcripts == passages
