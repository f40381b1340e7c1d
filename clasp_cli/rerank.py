"""The reading stage of `--rerank`: transcribe the best windows of the vector list, once each.

The first stage (one vector lookup) finds candidates; this stage makes sure the best N of them
have transcripts. Each window is transcribed at most once over the index's life: transcripts
(with their text vectors) are kept in the index by passage id, so the first query pays for ASR
and later ones for nothing. The ranking itself is the same fusion every mode uses
(clasp_cli.fusion): a reranked window simply has one more piece of evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np


class TranscriptCache(Protocol):
    def transcripts(self, ids: Sequence[int]) -> dict[int, str]: ...

    def put_transcripts(self, items: dict[int, str], vectors: dict[int, np.ndarray] | None = None, *,
                        e5_vectors: dict[int, np.ndarray] | None = None) -> bool: ...


@dataclass
class Candidate:
    id: int  # passage id in the index
    score: float  # first-stage score
    path: str
    start: float
    end: float


def read(
    candidates: Sequence[Candidate],
    cache: TranscriptCache,
    transcribe: Callable[[list[Candidate]], dict[int, str]],
    embed_text: Callable[[list[str]], np.ndarray] | None = None,
    embed_e5: Callable[[list[str]], np.ndarray | None] | None = None,
) -> tuple[dict[int, str], dict[int, np.ndarray]]:
    """(transcript of every candidate that has or now gets one, text vectors of the new ones).

    `transcribe` gets every candidate not yet transcribed, at once, so a caller can read each
    file in one pass (with its context and language), and returns their transcripts by id; a
    window it cannot read (its file changed or went away since indexing) is left out and stays
    without a transcript. New transcripts are committed (with their vectors, from `embed_text`)
    before they are used, so a kill after this never transcribes them again. `embed_e5` gives their
    e5 vectors too (None where e5 cannot load: the next writer fills them in)."""
    if not candidates:
        return {}, {}
    known = cache.transcripts([c.id for c in candidates])
    todo = [c for c in candidates if c.id not in known]
    vectors: dict[int, np.ndarray] = {}
    if todo:
        new = transcribe(todo)
        if new:
            spoken = [i for i, t in new.items() if t.strip()]
            e5 = None
            if embed_text is not None and spoken:
                vectors = dict(zip(spoken, embed_text([new[i] for i in spoken])))
                got = embed_e5([new[i] for i in spoken]) if embed_e5 is not None else None
                e5 = None if got is None else dict(zip(spoken, got))
            cache.put_transcripts(new, vectors if embed_text is not None else None, e5_vectors=e5)
        known.update(new)
    return known, vectors
