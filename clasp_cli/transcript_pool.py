"""Windows embedded but not yet transcribed, pooled across files so Whisper's decoder reads full batches.

The CLASP pass already ran the Whisper encoder on every window (padded to whole seconds), so a
window's transcript needs only the decoder. Greedy decoding on a CPU is mostly fixed cost per
step, so it pays to decode many windows at once: 64 five-second windows took 23.2 s one at a
time, 9.5 s eight at a time and 2.9 s 32 at a time on 2 cores (whisper-base, int8). One file
rarely has 32 windows of one padded length, so the pool gathers them across files, grouped by
encoder length, and decodes a group once it is full (or when the run ends).

Each file is still committed in its own transaction, with its vectors; its transcripts follow in
their own transactions when its group is decoded. A run killed in between leaves those windows
without transcripts, which search handles (the CLASP vector alone scores them) and the next run
fills in (`transcribe_missing`), as for any index transcribed after it was embedded.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Event = Callable[..., None]


def _noop(*_a, **_k) -> None:
    pass


class TranscriptPool:
    def __init__(self, store, model, transcriber, on_event: Event = _noop, batch: int = 32, cap: int = 192) -> None:
        self.store, self.model, self.transcriber, self.on_event = store, model, transcriber, on_event
        self.batch, self.cap = batch, cap
        self._groups: dict[int, list[tuple[int, np.ndarray]]] = {}  # encoder frames -> (passage id, output)
        self._pending = 0
        self.transcribed = 0

    def add(self, ids: Sequence[int], encoded: Sequence[Sequence[np.ndarray]]) -> None:
        """Windows just committed (their passage ids) and their encoder output (one array per 30 s piece)."""
        long = [(pid, e) for pid, e in zip(ids, encoded) if len(e) != 1]
        if long:  # a window over 30 s (long passages): its pieces are joined, so it is decoded on its own
            self._store([pid for pid, _ in long], self.transcriber.transcribe_encoded([e for _, e in long]))
        for pid, e in zip(ids, encoded):
            if len(e) == 1:
                out = np.asarray(e[0], dtype=np.float32)
                group = self._groups.setdefault(out.shape[0], [])
                group.append((pid, out))
                self._pending += 1
                if len(group) >= self.batch:
                    self._decode(out.shape[0])
        while self._pending > self.cap:  # bound the memory: the fullest group goes first
            self._decode(max(self._groups, key=lambda k: len(self._groups[k])))

    def flush(self) -> int:
        """Decode everything still pooled; returns how many windows were transcribed since the last flush."""
        for frames in sorted(self._groups):
            self._decode(frames)
        done, self.transcribed = self.transcribed, 0
        return done

    def _decode(self, frames: int) -> None:
        group = self._groups.pop(frames, [])
        self._pending -= len(group)
        for s in range(0, len(group), self.batch):
            part = group[s : s + self.batch]
            texts = self.transcriber.transcribe_encoded([[out] for _, out in part], batch_size=self.batch)
            self._store([pid for pid, _ in part], texts)

    def _store(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        from .indexer import _text_vectors

        vecs = _text_vectors(self.model, texts)
        self.store.put_transcripts(dict(zip(ids, texts)), dict(zip(ids, vecs)))
        self.transcribed += len(ids)
