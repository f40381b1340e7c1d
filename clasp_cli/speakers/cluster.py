"""Grouping the speaker vectors of one recording into its voices.

Average-linkage agglomerative clustering on cosine similarity: the two groups closest on
average merge until no pair is at least `threshold` alike.
"""

from __future__ import annotations

import numpy as np


def ahc(vectors: np.ndarray, threshold: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Cluster labels (0..k-1, in order of first appearance) of unit `vectors`.

    weights: how much each vector counts in its group's average (seconds of speech; default 1)."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    v = np.asarray(vectors, dtype=np.float64)
    sim = v @ v.T
    size = np.ones(n) if weights is None else np.maximum(np.asarray(weights, dtype=np.float64), 1e-6)
    np.fill_diagonal(sim, -np.inf)
    parent = np.arange(n)
    while True:
        flat = int(np.argmax(sim))
        i, j = divmod(flat, n)
        if not np.isfinite(sim[i, j]) or sim[i, j] < threshold:
            break
        # Lance-Williams for average linkage; -inf (a group merged away) stays -inf.
        merged = (size[i] * sim[i] + size[j] * sim[j]) / (size[i] + size[j])
        merged[np.isneginf(sim[i]) | np.isneginf(sim[j])] = -np.inf
        sim[i], sim[:, i] = merged, merged
        sim[i, i] = -np.inf
        sim[j, :], sim[:, j] = -np.inf, -np.inf
        size[i] += size[j]
        parent[parent == j] = i
    _, labels = np.unique(parent, return_inverse=True)
    order = {}
    return np.array([order.setdefault(int(x), len(order)) for x in labels], dtype=np.int64)


def centroids(vectors: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The unit mean vector of each label (weighted)."""
    k = int(labels.max()) + 1 if len(labels) else 0
    w = np.ones(len(vectors)) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.zeros((k, vectors.shape[1]))
    np.add.at(out, labels, vectors * w[:, None])
    return unit(out)


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
