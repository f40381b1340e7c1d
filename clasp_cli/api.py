"""The Python API the CLI is a thin layer over. Import from here (or clasp_cli) in your own code."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .audio import load_audio
from .indexer import IndexSummary, index_paths
from .registry import DEFAULT_MODEL, ModelEntry, create_model, list_models, load_model
from .search import Result, Searcher, SearchResponse, search
from .store import Store

__all__ = [
    "DEFAULT_MODEL", "ModelEntry", "IndexSummary", "SearchResponse",
    "create_model", "list_models", "load_model", "index_paths", "search", "Searcher", "embed_files", "embed_texts",
    "search_json", "info_json",
]


def embed_files(paths: Sequence[str | Path], model=None, max_seconds: float | None = None) -> np.ndarray:
    """Embed whole audio files (each one vector). Use `clasp index` for long recordings."""
    model = model or load_model()
    waves = [load_audio(p, model.config.sample_rate, max_seconds=max_seconds) for p in paths]
    return model.embed_audio(waves)


def embed_texts(texts: Sequence[str], model=None) -> np.ndarray:
    model = model or load_model()
    return model.embed_text(texts)


def search_json(
    searcher: Searcher,
    query: str | None,
    *,
    per_result: Callable[[Result, SearchResponse], dict] | None = None,
    **options,
) -> dict:
    """What `clasp search --json` prints; `clasp serve`'s /api/search is this plus `per_result`'s keys
    (given each result and the whole response).

    `options` are Searcher.search's keywords (audio, top_k, min_score, path_glob).
    """
    resp = searcher.search(query, **options)
    payload = resp.to_json()
    if per_result is not None:
        for row, result in zip(payload["results"], resp.results):
            row.update(per_result(result, resp))
    return payload


def info_json(index_dir: str | Path) -> dict:
    """What `clasp info --json` prints and /api/info returns."""
    with Store.open(index_dir) as s:
        return s.stats()
