"""Retrieval metrics, defined once and used by training, benchmark and tests.

Rank of the right candidate = 1 + the number of candidates with a higher similarity + a fair
share of those with the same: a tie is broken at random (seeded, so a run repeats exactly),
which is what a person meets in a ranked list. Counting ties in the query's favour, as the CLASP
paper's evaluation does, would give a system that scores every candidate alike HITS@1 = 1, and
it flattered transcribe-then-embed wherever two recordings have the same transcript: on the
Asterisk English prompts, exact ties (prompts that differ only in "..." read alike) lifted
its HITS@1 from 0.856 to 0.876.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class RetrievalScores:
    n: int
    hits_at_1: float
    hits_at_5: float
    hits_at_10: float
    mrr: float
    mean_rank: float

    def as_dict(self) -> dict:
        d = asdict(self)
        return {"n": d["n"], "hits@1": d["hits_at_1"], "hits@5": d["hits_at_5"], "hits@10": d["hits_at_10"],
                "mrr": d["mrr"], "meanr": d["mean_rank"]}


def ranks(similarity: np.ndarray, targets: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Rank of each query's target among the candidates (columns), ties broken at random.

    similarity: [queries, candidates]. targets: the right column per query (default: the diagonal).
    seed: the tie-breaking draw; the same inputs and seed always give the same ranks.
    """
    s = np.asarray(similarity, dtype=np.float64)
    # NaN compares false with everything, which would put a broken model's every target first.
    s = np.where(np.isnan(s), -np.inf, s)
    q = s.shape[0]
    t = np.arange(q) if targets is None else np.asarray(targets)
    right = s[np.arange(q), t]
    above = (s > right[:, None]).sum(axis=1)
    tied = (s == right[:, None]).sum(axis=1) - 1  # the other candidates scored exactly alike
    # Uniform over the tied places: the target is 1st..(tied+1)th among its equals.
    r = 1 + above + np.floor(np.random.default_rng(seed).random(q) * (tied + 1)).astype(int)
    r[np.isneginf(right)] = s.shape[1]  # a target scored NaN was not found: last place
    return r


def retrieval_scores(similarity: np.ndarray, targets: np.ndarray | None = None) -> RetrievalScores:
    r = ranks(similarity, targets)
    return scores_from_ranks(r)


def scores_from_ranks(r: np.ndarray) -> RetrievalScores:
    r = np.asarray(r, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no queries to score")
    return RetrievalScores(
        n=int(r.size),
        hits_at_1=float((r <= 1).mean()),
        hits_at_5=float((r <= 5).mean()),
        hits_at_10=float((r <= 10).mean()),
        mrr=float((1.0 / r).mean()),
        mean_rank=float(r.mean()),
    )
