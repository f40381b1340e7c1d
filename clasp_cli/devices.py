"""Resolve `--device auto|cpu|cuda` once, the same way for torch and CTranslate2."""

from __future__ import annotations

from .errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    # torch decides: every path that resolves a device runs the torch head, so a GPU that only
    # CTranslate2 can see (CPU-only torch build) must not be chosen.
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def check_device(device: str = "auto") -> str:
    """The device name, lower-cased; an unknown one is a usage error, and so is cuda without a
    GPU, as in every command. Probes nothing for auto or cpu (text search stays fast)."""
    device = (device or "auto").lower()
    if device not in DEVICES:
        raise UsageError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "cuda" and not cuda_available():
        raise UsageError("--device cuda was asked for, but no CUDA device is available")
    return device


def resolve_device(device: str = "auto") -> str:
    """'auto' becomes 'cuda' when a GPU is usable, else 'cpu'. Asking for an absent GPU is an error."""
    device = check_device(device)
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    return device
