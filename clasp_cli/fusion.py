"""One ranking from the three things an index knows about a window: its CLASP vector, the text
vector of what was said in it, and the words of that transcript.

Every score a text query shows is a match probability: the chance that the window says what
was asked. With p_clasp the CLASP vector's calibrated probability (clasp_cli.calibration), a
window with a transcript scores

    p = sigmoid(w_clasp * logit(p_clasp) + w_text * cos(query, transcript vector)
                + w_keyword * share of the query's words in the transcript
                + w_agree * cos(CLASP vector, transcript vector) + bias)

and a window without one (not transcribed yet, or `--mode vector`)

    p = sigmoid(v_clasp * logit(p_clasp) + v_bias).

The last term needs no query: it is how close the window's speech vector lies to the vector of
what Whisper heard in it. Its weight comes out negative on every validation set: a window whose
two vectors agree closely is typically a generic one (short, or a common phrase) that is near
many queries at once, and the term discounts such hubs; a window with a wrong or partial
transcript is not helped by it, because its own text cosine is low.

Both maps are fitted on the same candidates of the validation archives (benchmarks/
fusion_tuning.py), never on test: the order of the first by a listwise fit (which window of
each query's candidates answers it), then its scale and that of the second by logistic fits
(does this window answer?). So the two kinds of window rank against each other fairly, a
threshold (`--min-score`) means the same in every mode, and a transcript that lands later
(fill-in, `--rerank`) only sharpens a window's score. The weights live in the model's config
(`fusion`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .calibration import sigmoid  # one logistic function for both probability maps

_EPS = 1e-6
_TERM = re.compile(r"\w+")


@dataclass(frozen=True)
class FusionWeights:
    clasp: float = 1.0
    text: float = 12.0
    keyword: float = 1.0
    agree: float = 0.0  # 0 for weights fitted before the agreement term existed
    bias: float = -8.0
    # Windows without a transcript: None leaves the CLASP probability as it is.
    vector_clasp: float | None = None
    vector_bias: float | None = None
    # The `--min-score auto` thresholds, fused and vector-only: the lowest at which at most 5%
    # of nonsense queries keep a hit (validation archives). None: no calibrated threshold.
    min_score: float | None = None
    vector_min_score: float | None = None
    # Windows whose transcript also has an e5 vector (None: weights fitted before e5; such windows
    # are then fused as above).
    e5: "E5Weights | None" = None

    @classmethod
    def from_config(cls, d: dict | None) -> "FusionWeights":
        if not d:
            return cls()
        flat = {k: (None if v is None else float(v)) for k, v in d.items() if k in cls.__dataclass_fields__ and k != "e5"}
        return cls(**flat, e5=E5Weights.from_config(d["e5"]) if d.get("e5") else None)

    def to_config(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "e5"}
        if self.e5 is not None:
            out["e5"] = self.e5.to_config()
        return out

    def vector_only(self, clasp_prob: np.ndarray) -> np.ndarray:
        """The score of windows scored by their CLASP vector alone, on the fused scale."""
        clasp_prob = np.asarray(clasp_prob, dtype=np.float64)
        if self.vector_clasp is None or self.vector_bias is None:
            return clasp_prob
        return sigmoid(self.vector_clasp * logit(clasp_prob) + self.vector_bias)


# The columns of the two e5 maps (E5Weights), for configs and reports.
COVERED_COLUMNS = ("clasp", "text", "e5", "keyword", "agree", "bias")
UNCOVERED_COLUMNS = ("e5", "keyword", "agree", "bias")


@dataclass(frozen=True)
class E5Weights:
    """The fusion of a window whose transcript has both a USE and an e5 vector.

    USE covers 16 languages, and the CLASP head is trained into USE's space, so where either side
    is in another language, the query or what was said in the window, both the CLASP cosine and
    the USE cosine are noise. g in [0, 1] is how familiar USE's own tokenizer finds the query
    (coverage_gate), times whether USE covers the language the window was read in (Whisper's
    code; 1 where unknown), and the score blends two maps:

        z = g * covered . [logit(p_clasp), cos_use, e5, word share, agreement, 1]
            + (1 - g) * uncovered . [e5, (1 - g_query) * word share, agreement, 1]

    e5 is the e5 cosine less its median over the query's candidates (centre_e5).

    g_query is the query's part of g alone: a query USE knows is in another language than a
    window USE does not know, so the words they share there are chance (German "na" in Czech).

    Both are fitted on validation archives (benchmarks/fusion_tuning.py --e5), covered-language
    queries teaching the first and the others the second."""

    covered: tuple[float, ...]
    uncovered: tuple[float, ...]
    low: float  # the USE familiarity (mean piece log-probability per character) at which g = 0
    high: float  # and at which g = 1
    min_score: float | None = None  # `--min-score auto` where e5 fuses (validation archives)

    @classmethod
    def from_config(cls, d: dict) -> "E5Weights":
        return cls(covered=tuple(float(d["covered"][k]) for k in COVERED_COLUMNS),
                   uncovered=tuple(float(d["uncovered"][k]) for k in UNCOVERED_COLUMNS),
                   low=float(d["low"]), high=float(d["high"]),
                   min_score=None if d.get("min_score") is None else float(d["min_score"]))

    def to_config(self) -> dict:
        return {"covered": dict(zip(COVERED_COLUMNS, self.covered)), "uncovered": dict(zip(UNCOVERED_COLUMNS, self.uncovered)),
                "low": self.low, "high": self.high, "min_score": self.min_score}

    def gate(self, familiarity: float | None) -> float:
        """g: 1 where USE knows the query's language, 0 where it does not (1 when unmeasured)."""
        return coverage_gate(familiarity, self.low, self.high)

    def logits(self, x: np.ndarray, gate, query_gate: float = 0.0) -> np.ndarray:
        """z of each row of e5_features; `gate` one g for all rows or one per row, `query_gate` the
        query's part of it."""
        x = np.asarray(x, dtype=np.float64)
        gate = np.asarray(gate, dtype=np.float64)
        cov = x @ np.asarray(self.covered)
        unc = uncovered_features(x, query_gate) @ np.asarray(self.uncovered)
        return gate * cov + (1.0 - gate) * unc


def uncovered_features(x: np.ndarray, query_gate: float) -> np.ndarray:
    """The uncovered map's columns from e5_features rows: e5 cosine, word share (only where the
    query may be in the window's language), agreement, 1."""
    x = np.asarray(x, dtype=np.float64)
    return np.column_stack([x[:, 2], (1.0 - query_gate) * x[:, 3], x[:, 4], x[:, 5]])


def centre_e5(e5_cos: np.ndarray, has_e5: np.ndarray) -> np.ndarray:
    """A query's e5 cosines less their median over the windows it is weighed against. e5 puts
    every text near every other (a query of emoji lies at 0.85 from the best transcript of
    examples/archive, a Swedish question at 0.84 from its answer), so only how far a window
    stands out from the query's other candidates says something."""
    e5_cos = np.asarray(e5_cos, dtype=np.float64)
    has_e5 = np.asarray(has_e5, dtype=bool)
    return e5_cos - (float(np.median(e5_cos[has_e5])) if has_e5.any() else 0.0)


def window_gate(languages: Sequence[str | None]) -> np.ndarray:
    """Per window, 1 where USE covers the language it was read in (or it is not known), else 0."""
    from .encoders.languages import USE_LANGUAGES

    return np.array([1.0 if code is None or code in USE_LANGUAGES else 0.0 for code in languages])


def coverage_gate(familiarity: float | None, low: float, high: float) -> float:
    """A linear ramp from `low` (0) to `high` (1), clipped; None (not measured) is 1."""
    if familiarity is None or not np.isfinite(familiarity):
        return 1.0
    return float(np.clip((familiarity - low) / max(high - low, 1e-9), 0.0, 1.0))


def e5_features(clasp_prob: np.ndarray, text_cos: np.ndarray, e5_cos: np.ndarray, share: np.ndarray,
                agree: np.ndarray) -> np.ndarray:
    """[n, 6]: logit of the CLASP probability, USE cosine, e5 cosine (centred: centre_e5), word
    share, agreement, 1."""
    n = len(clasp_prob)
    return np.column_stack([logit(clasp_prob), np.asarray(text_cos, dtype=np.float64), np.asarray(e5_cos, dtype=np.float64),
                            np.asarray(share, dtype=np.float64), np.asarray(agree, dtype=np.float64), np.ones(n)])


def query_terms(text: str) -> set[str]:
    """The distinct words of a query or transcript, case-folded (as FTS5's tokenizer compares them)."""
    return set(_TERM.findall(text.casefold()))


def word_share(asked: set[str], transcript: str) -> float:
    """The share of the query's words that the transcript holds (0 when the query has none)."""
    return float(shares(asked, [query_terms(transcript)])[0])


def shares(asked: set[str], said: Sequence[set[str]]) -> np.ndarray:
    """word_share of the query against each transcript, given as its set of words (query_terms),
    so many queries can meet the same transcripts without splitting them again."""
    if not asked:
        return np.zeros(len(said))
    return np.array([len(asked & words) / len(asked) for words in said], dtype=np.float64)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def agreement(speech: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Row by row, the cosine of a window's CLASP vector and its transcript's vector."""
    speech = np.asarray(speech, dtype=np.float64).reshape(len(speech), -1)
    text = np.asarray(text, dtype=np.float64).reshape(len(text), -1)
    norms = np.linalg.norm(speech, axis=1) * np.linalg.norm(text, axis=1)
    return np.sum(speech * text, axis=1) / np.maximum(norms, 1e-9)


def features(clasp_prob: np.ndarray, text_cos: np.ndarray, share: np.ndarray, agree: np.ndarray) -> np.ndarray:
    """[n, 5]: logit of the CLASP probability, transcript cosine, word share, speech-transcript
    agreement, 1 (the bias)."""
    n = len(clasp_prob)
    return np.column_stack([logit(clasp_prob), np.asarray(text_cos, dtype=np.float64),
                            np.asarray(share, dtype=np.float64), np.asarray(agree, dtype=np.float64), np.ones(n)])


def fuse(clasp_prob: np.ndarray, text_cos: np.ndarray, share: np.ndarray, agree: np.ndarray, has_text: np.ndarray,
         weights: FusionWeights, e5_cos: np.ndarray | None = None, has_e5: np.ndarray | None = None,
         gate=1.0, query_gate: float = 0.0) -> np.ndarray:
    """Match probabilities: fused with e5 where a window's transcript has an e5 vector too (and the
    weights know e5), fused with USE alone where it has a USE vector, CLASP's alone elsewhere.
    `gate` is USE's coverage (E5Weights), one for all windows or one per window; `query_gate` the
    query's part of it."""
    clasp_prob = np.asarray(clasp_prob, dtype=np.float64)
    out = weights.vector_only(clasp_prob)
    has_text = np.asarray(has_text, dtype=bool)
    with_e5 = np.zeros(len(out), dtype=bool)
    if weights.e5 is not None and e5_cos is not None and has_e5 is not None:
        with_e5 = np.asarray(has_e5, dtype=bool) & has_text
    use_only = has_text & ~with_e5
    if use_only.any():
        w = np.array([weights.clasp, weights.text, weights.keyword, weights.agree, weights.bias])
        x = features(clasp_prob[use_only], np.asarray(text_cos)[use_only], np.asarray(share)[use_only],
                     np.asarray(agree)[use_only])
        out[use_only] = sigmoid(x @ w)
    if with_e5.any():
        x = e5_features(clasp_prob[with_e5], np.asarray(text_cos)[with_e5], np.asarray(e5_cos)[with_e5],
                        np.asarray(share)[with_e5], np.asarray(agree)[with_e5])
        g = np.asarray(gate, dtype=np.float64)
        out[with_e5] = sigmoid(weights.e5.logits(x, g if g.ndim == 0 else g[with_e5], query_gate))
    return out


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """Logistic regression by Newton's method: weights for `features` columns from labelled rows
    (y = 1 where the window answers the query). A small ridge keeps separable data finite."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.zeros(x.shape[1])
    reg = l2 * np.eye(x.shape[1])
    reg[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(iters):
        p = sigmoid(x @ w)
        grad = x.T @ (p - y) + reg @ w
        hess = (x * (p * (1 - p))[:, None]).T @ x + reg
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def fit_ranking(groups: list[tuple[np.ndarray, np.ndarray]], l2: float = 1e-3, iters: int = 500) -> np.ndarray:
    """Weights that rank: per query, a softmax over its candidates ([n, k] feature rows, no bias
    column), maximising the probability mass on the windows that answer it (y = 1). Queries with
    no answering candidate teach nothing about the order and are left out. Gradient ascent with
    backtracking; the loss is smooth and the weights few."""
    groups = [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=bool)) for x, y in groups if np.any(y)]
    k = groups[0][0].shape[1]
    # Every query's candidates padded into one [queries, most candidates, k] block, so a step costs
    # a few array operations rather than a Python loop over ten thousand queries.
    width = max(len(y) for _, y in groups)
    xs = np.zeros((len(groups), width, k))
    real = np.zeros((len(groups), width), dtype=bool)
    ys = np.zeros((len(groups), width), dtype=bool)
    for j, (x, y) in enumerate(groups):
        xs[j, : len(y)], real[j, : len(y)], ys[j, : len(y)] = x, True, y

    def loss_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = np.where(real, xs @ w, -np.inf)
        s -= s.max(axis=1, keepdims=True)
        e = np.exp(s)
        z = e.sum(axis=1)
        zy = np.where(ys, e, 0.0).sum(axis=1)
        p = e / z[:, None]
        q = np.where(ys, e, 0.0) / zy[:, None]
        total = 0.5 * l2 * float(w @ w) + float(np.sum(np.log(z) - np.log(zy)))
        grad = l2 * w + np.einsum("gm,gmk->k", p - q, xs)
        return total / len(groups), grad / len(groups)

    w = np.zeros(k)
    w[0] = 1.0
    f, g = loss_grad(w)
    step = 1.0
    for _ in range(iters):
        while step > 1e-8:
            cand = w - step * g
            fc, gc = loss_grad(cand)
            if fc < f:
                w, f, g = cand, fc, gc
                step *= 2.0
                break
            step /= 2.0
        else:
            break
        if np.max(np.abs(g)) < 1e-6:
            break
    return w
