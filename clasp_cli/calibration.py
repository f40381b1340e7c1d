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


# -- match probabilities ------------------------------------------------------------------------------
#
# A raw cosine means different things for different queries: some queries (an emoji, punctuation)
# land where they are fairly close to every recording, a specific sentence is close to one and far
# from the rest. So each query is also scored against a fixed bank of speech embeddings (held-out
# recordings, shipped with the model): the mean and spread of its cosines there say how close it
# is to speech in general. A logistic fit on validation maps (cosine, mean, spread) to the
# probability that the hit says the query. The cosine's weight is positive, so within one query
# the map is monotone and never changes a ranking; it only makes scores comparable across queries.

BANK_FILE = "background.safetensors"


@dataclass
class ScoreCalibration:
    """p(match) = sigmoid(w . [cosine, bank mean, bank std] + bias) for one query's cosines."""

    bank: np.ndarray  # [n, dim] unit speech embeddings of recordings the fit did not score
    weights: tuple[float, float, float]
    bias: float
    min_score: float  # the documented default threshold for `clasp search --min-score`

    def background(self, query: np.ndarray) -> tuple[float, float]:
        cos = self.bank @ np.asarray(query, dtype=np.float32)
        return float(cos.mean()), float(cos.std())

    def probability(self, query: np.ndarray, cosine: np.ndarray | float) -> np.ndarray:
        mean, std = self.background(query)
        w = self.weights
        return sigmoid(w[0] * np.asarray(cosine, dtype=np.float64) + w[1] * mean + w[2] * std + self.bias)

    def to_config(self) -> dict:
        return {"method": "background-logistic", "bank": BANK_FILE, "bank_size": int(len(self.bank)),
                "weights": [round(float(x), 6) for x in self.weights], "bias": round(float(self.bias), 6),
                "min_score": round(float(self.min_score), 4)}

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
        try:
            return cls(bank, tuple(float(x) for x in cfg["weights"]), float(cfg["bias"]), float(cfg["min_score"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{path.parent}: malformed score calibration in config.json ({e})") from None


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _logistic_fit(X: np.ndarray, y: np.ndarray, w: np.ndarray, iters: int = 200) -> tuple[np.ndarray, float]:
    """Weighted logistic regression: damped Newton on standardised features, with a ridge that
    keeps perfectly separable data (a good model on easy data) at finite weights."""
    mean = np.average(X, axis=0, weights=w)
    std = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=w))
    std[std == 0] = 1.0
    Z = np.hstack([(X - mean) / std, np.ones((len(X), 1))])
    theta = np.zeros(Z.shape[1])
    ridge = np.diag([1.0] * X.shape[1] + [1e-3])
    for _ in range(iters):
        p = sigmoid(Z @ theta)
        g = Z.T @ (w * (p - y)) + ridge @ theta
        H = (Z * (w * p * (1 - p))[:, None]).T @ Z + ridge
        step = np.linalg.solve(H, g)
        step *= min(1.0, 2.0 / max(float(np.abs(step).max()), 1e-12))  # at most 2 units a step
        theta = theta - step
        if np.abs(step).max() < 1e-9:
            break
    coef = theta[:-1] / std
    return coef, float(theta[-1] - coef @ mean)


def fit_calibration(
    speech: np.ndarray, text: np.ndarray, nonsense: np.ndarray, bank_size: int = 1000, max_false: float = 0.03, seed: int = 0,
    negatives_per_query: int = 20, targets: np.ndarray | None = None,
) -> tuple[ScoreCalibration, dict]:
    """Fit on validation: text[k] is said in speech[targets[k]] (default: speech[k]), so a recording
    can have several queries (its text and translations); `nonsense` are embedded nonsense queries.

    Recordings are split into the bank and the fit candidates, so no bank vector is ever scored.
    First the separating score s = cosine - alpha * bank mean - beta * bank std: the (alpha, beta)
    of a small grid under which the most true matches clear the level that all but `max_false`
    of the nonsense queries' best hits stay under. Then p = sigmoid(a * s + c), fitted on the
    matches against random other recordings and the nonsense queries' best hits (the two weighted
    equally, so p = 0.5 is where a hit is as likely a match as not). The default threshold is that
    nonsense level in p. Returns the calibration and what it achieves on the fit candidates.
    """
    rng = np.random.default_rng(seed)
    n = len(speech)
    bank_size = min(bank_size, n // 2)
    order = rng.permutation(n)
    bank, fit = order[:bank_size], order[bank_size:]
    cal = ScoreCalibration(speech[bank].astype(np.float32), (1.0, 0.0, 0.0), 0.0, 0.5)
    cand = speech[fit]
    m = len(fit)
    column = np.full(n, -1)
    column[fit] = np.arange(m)
    targets = np.arange(len(text)) if targets is None else np.asarray(targets)
    keep = column[targets] >= 0  # queries whose recording went into the bank are not scored
    queries, own = text[keep], column[targets[keep]]

    def features(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (q @ cand.T).astype(np.float64), np.array([cal.background(v) for v in q])

    sims, stats = features(queries)
    junk_sims, junk_stats = features(nonsense)
    pos_cos = sims[np.arange(len(own)), own]

    def separated(alpha: float, beta: float) -> tuple[float, float]:
        shift, junk_shift = alpha * stats[:, 0] + beta * stats[:, 1], alpha * junk_stats[:, 0] + beta * junk_stats[:, 1]
        level = choose_min_score((junk_sims - junk_shift[:, None]).max(axis=1), max_false)
        return float(np.mean(pos_cos - shift >= level)), -abs(alpha) - abs(beta)  # ties: the plainer score

    grid = [(a, b) for a in np.linspace(0.0, 3.0, 16) for b in np.linspace(-12.0, 3.0, 61)]
    alpha, beta = max(grid, key=lambda ab: separated(*ab))

    def score(cos: np.ndarray, st: np.ndarray) -> np.ndarray:
        return cos - alpha * st[:, 0] - beta * st[:, 1]

    rows = np.repeat(np.arange(len(own)), negatives_per_query)
    cols = (own[rows] + rng.integers(1, m, size=len(rows))) % m  # never the query's own recording
    junk_best = (junk_sims - (alpha * junk_stats[:, 0] + beta * junk_stats[:, 1])[:, None]).max(axis=1)
    pos = score(pos_cos, stats)
    neg = np.concatenate([score(sims[rows, cols], stats[rows]), junk_best])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    w = np.concatenate([np.ones(len(pos)), np.full(len(neg), len(pos) / len(neg))])
    coef, bias = _logistic_fit(np.concatenate([pos, neg])[:, None], y, w)
    if coef[0] <= 0:  # a map that is not increasing in the cosine would reorder results
        from .errors import ModelError

        raise ModelError("score calibration failed: on validation, matches do not score above non-matches")
    a = float(coef[0])
    cal.weights, cal.bias = (a, -a * alpha, -a * beta), bias
    sims[np.arange(len(own)), own] = -np.inf
    p_pos, p_junk = sigmoid(a * pos + bias), sigmoid(a * junk_best + bias)
    p_wrong = sigmoid(a * score(sims.max(axis=1), stats) + bias)
    cal.min_score = min(choose_min_score(p_junk, max_false), 1.0)
    report = {"fit_candidates": int(m), "fit_queries": int(len(own)), "bank": int(bank_size), "n_nonsense": int(len(nonsense)),
              "alpha": round(float(alpha), 3), "beta": round(float(beta), 3),
              "best_wrong_above": round(float(np.mean(p_wrong >= cal.min_score)), 4),
              **threshold_report(p_pos, p_junk, cal.min_score)}
    return cal, report
