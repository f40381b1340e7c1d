"""The reading second stage of search: transcribe the top windows once, then rank by what was said.

The first stage (one vector lookup) finds candidates; this stage reads them. Each candidate
window is transcribed at most once over the index's life: transcripts are cached by passage
id, so the first query pays for ASR and later ones only for a text embedding. The final score
fuses the CLASP score with the text encoder's similarity of query and transcript.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

# Weight of the transcript's similarity in the fused score, for a model whose config names none.
# Chosen for clasp-tiny on the validation archives (benchmarks/rerank_tuning.py: 0.3-0.5 are
# within a point of each other at N=20), never on test.
TEXT_WEIGHT = 0.4


class TranscriptCache(Protocol):
    def transcripts(self, ids: Sequence[int]) -> dict[int, str]: ...

    def put_transcripts(self, items: dict[int, str]) -> None: ...


@dataclass
class Candidate:
    id: int  # passage id in the index
    score: float  # first-stage score
    path: str
    start: float
    end: float


def fuse(clasp_score: np.ndarray, text_cosine: np.ndarray, text_weight: float = TEXT_WEIGHT) -> np.ndarray:
    return (1.0 - text_weight) * clasp_score + text_weight * text_cosine


def rerank(
    query_vec: np.ndarray,
    candidates: Sequence[Candidate],
    cache: TranscriptCache,
    load_audio: Callable[[list[Candidate]], list[np.ndarray]],
    transcribe: Callable[[list[np.ndarray]], list[str]],
    embed_text: Callable[[list[str]], np.ndarray],
    text_weight: float = TEXT_WEIGHT,
) -> tuple[list[Candidate], dict[int, str]]:
    """Candidates re-ordered by the fused score (which replaces `score`), and every transcript.

    `load_audio` gets every candidate not yet transcribed, at once, and returns their waves in
    that order, so a caller can read each file in one pass; None for a window it cannot read (its
    file changed or went away since indexing). Those are not read: they follow the reranked
    ones with their first-stage score, as candidates past N do."""
    if not candidates:
        return [], {}
    ids = [c.id for c in candidates]
    known = cache.transcripts(ids)
    todo = [c for c in candidates if c.id not in known]
    if todo:
        waves = load_audio(todo)
        readable = [(c, w) for c, w in zip(todo, waves) if w is not None]
        new = dict(zip((c.id for c, _ in readable), transcribe([w for _, w in readable]))) if readable else {}
        if new:
            cache.put_transcripts(new)  # committed before use: a kill after this never re-transcribes
        known.update(new)
    unread = [c for c in candidates if c.id not in known]
    candidates = [c for c in candidates if c.id in known]
    texts = [known[c.id] for c in candidates]
    text_cos = np.zeros(len(candidates))
    spoken = [i for i, t in enumerate(texts) if t.strip()]
    if spoken:
        vecs = embed_text([texts[i] for i in spoken])
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
        text_cos[spoken] = vecs @ query_vec
    fused = fuse(np.array([c.score for c in candidates]), text_cos, text_weight)
    order = np.argsort(-fused, kind="stable")
    out = [Candidate(candidates[i].id, round(float(fused[i]), 4), candidates[i].path, candidates[i].start, candidates[i].end)
           for i in order]
    return out + unread, known
