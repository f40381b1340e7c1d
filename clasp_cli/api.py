"""The Python API the CLI is a thin layer over. Import from here (or clasp_cli) in your own code."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .audio import load_audio
from .indexer import IndexSummary, index_paths
from .registry import DEFAULT_MODEL, ModelEntry, create_model, list_models, load_model
from .search import Searcher, SearchResponse, search

__all__ = [
    "DEFAULT_MODEL", "ModelEntry", "IndexSummary", "SearchResponse",
    "create_model", "list_models", "load_model", "index_paths", "search", "Searcher", "embed_files", "embed_texts",
]


def embed_files(paths: Sequence[str | Path], model=None, max_seconds: float | None = None) -> np.ndarray:
    """Embed whole audio files (each one vector). Use `clasp index` for long recordings."""
    model = model or load_model()
    waves = [load_audio(p, model.config.sample_rate, max_seconds=max_seconds) for p in paths]
    return model.embed_audio(waves)


def embed_texts(texts: Sequence[str], model=None) -> np.ndarray:
    model = model or load_model()
    return model.embed_text(texts)
