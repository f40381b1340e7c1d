"""Can a score threshold tell a match from noise? Nonsense queries, and choosing `--min-score`.

A user's `--min-score` only helps if real matches score above it and queries that mean nothing
(a stray emoji, punctuation, a keyboard mash) do not. `nonsense_queries` makes such queries
reproducibly; `choose_min_score` picks the lowest threshold that keeps nonsense out, on the
validation split only.
"""

from __future__ import annotations

import numpy as np

_EMOJI = "😀😂🥲😍🤔🙄😴🤖👻💩🎉🔥✨🌈🍕🍺⚽🚀🌍💡📎🧩🎲🐙🦄🌵"
_PUNCT = "!?.,;:-_()[]{}'\"/\\|@#$%^&*+=~`<>…—"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def nonsense_queries(n: int = 300, seed: int = 0) -> list[str]:
    """n queries that say nothing: emoji runs, punctuation runs, random letters (a third each)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append("".join(rng.choice(list(_EMOJI), size=int(rng.integers(1, 6)))))
        elif kind == 1:
            out.append("".join(rng.choice(list(_PUNCT), size=int(rng.integers(1, 8)))))
        else:
            words = ["".join(rng.choice(list(_LETTERS), size=int(rng.integers(2, 9)))) for _ in range(int(rng.integers(1, 4)))]
            out.append(" ".join(words))
    return out


def threshold_report(true_scores: np.ndarray, nonsense_best: np.ndarray, threshold: float) -> dict:
    """Share of true matches at or above the threshold, and of nonsense queries whose best hit is."""
    return {
        "threshold": round(float(threshold), 4),
        "true_above": round(float(np.mean(true_scores >= threshold)), 4),
        "nonsense_above": round(float(np.mean(nonsense_best >= threshold)), 4),
    }


def choose_min_score(nonsense_best: np.ndarray, max_false: float = 0.05) -> float:
    """The lowest threshold at which at most `max_false` of nonsense queries still get a hit."""
    return float(np.quantile(np.asarray(nonsense_best, dtype=np.float64), 1.0 - max_false, method="higher")) + 1e-4
