"""The shipped speaker models: where they are, that they are whole, and their sessions.

pyannote's segmentation-3.0 (MIT) and 3D-Speaker's CAM++ (Apache-2.0) as ONNX, converted once
by scripts/convert_speaker_models.py (NOTICE beside them). Each file is checked against its
sha256 before its first use in a process, so a damaged install fails with one line (ModelError,
exit 4) instead of a wrong speaker on every hit.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from ..errors import ModelError

SHA256 = {
    "segmentation-3.0.onnx": "b78fc48113bb46fd247ae6a9aea737079550c647638db961df7e0e1e9f4ba62e",
    "campplus-trunk.onnx": "bbbb9d0dd69aae7e93505626865dc6d20c8daa668229297716d98261bce71d52",
    "campplus-pool.safetensors": "0473fa2328662821b766f904d0f14049fc87032180bd8ffaa8015c4f4a296476",
}
_checked: set[Path] = set()
_lock = threading.Lock()


def model_dir() -> Path:
    """The folder holding the speaker models (CLASP_SPEAKER_MODELS overrides it, for tests and
    for installs that keep models elsewhere)."""
    env = os.environ.get("CLASP_SPEAKER_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "models" / "speakers"


def model_file(name: str) -> Path:
    """The path of a shipped speaker model file, checked once per process."""
    path = model_dir() / name
    with _lock:
        if path in _checked:
            return path
        try:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
        except OSError as e:
            raise ModelError(f"{path}: speaker model missing ({e.strerror or e}); reinstall clasp, "
                             "or index with --no-speakers") from None
        if h.hexdigest() != SHA256[name]:
            raise ModelError(f"{path}: speaker model damaged (sha256 {h.hexdigest()[:12]}..., expected "
                             f"{SHA256[name][:12]}...); reinstall clasp, or index with --no-speakers")
        _checked.add(path)
    return path


def onnx_session(name: str, threads: int | None = None):
    """An onnxruntime session of a shipped model (ModelError when it will not load)."""
    import onnxruntime as ort

    path = model_file(name)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or min(4, os.cpu_count() or 1))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # Its threads sleep between calls instead of spinning: the models run beside Whisper while it reads.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
        raise ModelError(f"{path}: speaker model will not load ({str(e).splitlines()[0][:160]})") from None
