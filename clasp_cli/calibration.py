"""Can a score threshold tell a match from noise? Nonsense queries, and choosing `--min-score`.

A user's `--min-score` only helps if real matches score above it and queries that mean nothing
(a stray emoji, punctuation, a keyboard mash) do not. `nonsense_queries` makes such queries
reproducibly; `choose_min_score` picks the lowest threshold that keeps nonsense out, on the
validation split only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


# -- background-normalised match probabilities ------------------------------------------------------
#
# A raw cosine means different things for different queries: a vague query (an emoji, "the") sits
# near the middle of the speech embeddings and is close to everything, a specific sentence is close
# to one recording and far from the rest. So a query's cosine with a hit is measured against how the
# same query scores on a fixed bank of speech embeddings (held-out recordings, shipped with the
# model): z = (cosine - mean) / std over the bank. A logistic fit on validation turns z into the
# probability that the hit says the query. Within one query this is monotone in the cosine, so it
# never changes a ranking; it only makes scores comparable across queries, and thresholds usable.

BANK_FILE = "background.safetensors"


@dataclass
class ScoreCalibration:
    """z-normalisation of a query's cosines against a background bank, then a logistic map."""

    bank: np.ndarray  # [n, dim] unit speech embeddings of recordings the fit did not score
    a: float
    b: float
    min_score: float  # the documented default threshold for `clasp search --min-score`

    def z(self, query: np.ndarray, cosine: np.ndarray | float) -> np.ndarray:
        background = self.bank @ np.asarray(query, dtype=np.float32)
        return (np.asarray(cosine, dtype=np.float64) - float(background.mean())) / max(float(background.std()), 1e-6)

    def probability(self, query: np.ndarray, cosine: np.ndarray | float) -> np.ndarray:
        return _sigmoid(self.a * self.z(query, cosine) + self.b)

    def to_config(self) -> dict:
        return {"method": "background-z", "bank": BANK_FILE, "bank_size": int(len(self.bank)), "a": round(self.a, 6),
                "b": round(self.b, 6), "min_score": round(self.min_score, 4)}

    def save(self, directory: str | Path) -> dict:
        """Write the bank beside the model (float16, numpy safetensors: no torch to read it)."""
        from safetensors.numpy import save_file

        from .fsutil import atomic_path

        with atomic_path(Path(directory) / BANK_FILE) as tmp:
            save_file({"bank": self.bank.astype(np.float16)}, str(tmp))
        return self.to_config()

    @classmethod
    def load(cls, directory: str | Path, cfg: dict) -> "ScoreCalibration":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        from .errors import ModelError

        path = Path(directory) / cfg.get("bank", BANK_FILE)
        try:
            bank = load_file(str(path))["bank"].astype(np.float32)
        except (SafetensorError, OSError, KeyError) as e:
            raise ModelError(f"{path}: unreadable score calibration bank ({e})") from None
        return cls(bank, float(cfg["a"]), float(cfg["b"]), float(cfg["min_score"]))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _logistic_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, iters: int = 200) -> tuple[float, float]:
    """Weighted 1-D logistic regression: damped Newton on standardised x, with a ridge that keeps
    perfectly separable data (a good model on easy data) at a finite slope."""
    mean, std = float(np.average(x, weights=w)), float(np.sqrt(np.cov(x, aweights=w))) or 1.0
    X = np.stack([(x - mean) / std, np.ones_like(x)], axis=1)
    theta = np.zeros(2)
    ridge = np.diag([1.0, 1e-3])
    for _ in range(iters):
        p = _sigmoid(X @ theta)
        g = X.T @ (w * (p - y)) + ridge @ theta
        H = (X * (w * p * (1 - p))[:, None]).T @ X + ridge
        step = np.linalg.solve(H, g)
        step *= min(1.0, 2.0 / max(float(np.abs(step).max()), 1e-12))  # at most 2 units a step
        theta = theta - step
        if np.abs(step).max() < 1e-9:
            break
    a = theta[0] / std
    return float(a), float(theta[1] - a * mean)


def fit_calibration(
    speech: np.ndarray, text: np.ndarray, nonsense: np.ndarray, bank_size: int = 1000, max_false: float = 0.02, seed: int = 0,
    negatives_per_query: int = 20,
) -> tuple[ScoreCalibration, dict]:
    """Fit on validation: speech[i] is the recording of text[i]; `nonsense` are embedded nonsense queries.

    Recordings are split into the bank and the fit candidates, so no bank vector is ever scored.
    The logistic map is fitted on each query's own recording (a match) against random other
    recordings (not a match), weighted equally, so p = 0.5 is where a hit is as likely a match as
    not. The default threshold is the lowest score that the best hit of all but `max_false` of
    the nonsense queries stays under. Returns the calibration and what it achieves on the fit set.
    """
    rng = np.random.default_rng(seed)
    n = len(speech)
    bank_size = min(bank_size, n // 2)
    order = rng.permutation(n)
    bank, fit = order[:bank_size], order[bank_size:]
    cal = ScoreCalibration(speech[bank].astype(np.float32), 1.0, 0.0, 0.5)
    cand = speech[fit]
    z = np.stack([cal.z(q, cand @ q) for q in text[fit]])
    m = len(fit)
    pos = np.diag(z).copy()
    rows = np.repeat(np.arange(m), negatives_per_query)
    cols = (rows + rng.integers(1, m, size=len(rows))) % m  # never the query's own recording
    neg = z[rows, cols]
    np.fill_diagonal(z, -np.inf)
    hardest = z.max(axis=1)
    junk = np.array([cal.z(q, cand @ q).max() for q in nonsense])
    x = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    w = np.concatenate([np.ones(len(pos)), np.full(len(neg), len(pos) / len(neg))])
    cal.a, cal.b = _logistic_fit(x, y, w)
    p_pos, p_junk = _sigmoid(cal.a * pos + cal.b), _sigmoid(cal.a * junk + cal.b)
    cal.min_score = min(choose_min_score(p_junk, max_false), 1.0)
    report = {"fit_candidates": int(m), "bank": int(bank_size), "n_nonsense": int(len(junk)),
              "best_wrong_above": round(float(np.mean(_sigmoid(cal.a * hardest + cal.b) >= cal.min_score)), 4),
              **threshold_report(p_pos, p_junk, cal.min_score)}
    return cal, report
