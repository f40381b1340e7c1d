"""Named models and the one factory: `load_model(name_or_path)`.

A model is a directory holding config.json and model.safetensors. Named models live under
clasp_cli/models/<name>/; a name may ship its config before its trained weights exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import ModelConfig
from .defaults import DEFAULT_MODEL
from .errors import ModelError, PickleRefusedError
from .model import CONFIG, WEIGHTS, ClaspModel

MODELS_DIR = Path(__file__).parent / "models"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    config: ModelConfig

    @property
    def has_weights(self) -> bool:
        return (self.path / WEIGHTS).is_file()


def list_models() -> list[ModelEntry]:
    entries = []
    for cfg in sorted(MODELS_DIR.glob(f"*/{CONFIG}")):
        entries.append(ModelEntry(cfg.parent.name, cfg.parent, ModelConfig.load(cfg)))
    return entries


def _refuse_pickles(path: Path) -> None:
    if path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES:
        raise PickleRefusedError(
            f"{path}: refusing to load a pickled checkpoint (loading pickles can run arbitrary code); "
            "clasp loads model.safetensors + config.json only"
        )
    if path.is_dir() and not (path / WEIGHTS).exists():
        pickles = [p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
        if pickles:
            raise PickleRefusedError(
                f"{path}: holds only pickled weights ({', '.join(sorted(pickles))}); "
                "clasp loads model.safetensors + config.json only"
            )


def resolve_model_dir(name_or_path: str | Path | None = None) -> Path:
    """A directory path as given, else a registry name; unknown names list the valid ones."""
    name_or_path = name_or_path or DEFAULT_MODEL
    p = Path(name_or_path).expanduser()
    if p.exists():
        _refuse_pickles(p)
        if p.is_file():
            raise ModelError(f"{p}: a model is a directory with {CONFIG} and {WEIGHTS}, not a single file")
        if not (p / CONFIG).is_file():
            raise ModelError(f"{p}: no {CONFIG} in this directory")
        return p
    named = MODELS_DIR / str(name_or_path)
    if (named / CONFIG).is_file():
        return named
    valid = ", ".join(e.name for e in list_models()) or "(none)"
    raise ModelError(f"unknown model {str(name_or_path)!r}: use a model directory or one of: {valid}")


def load_model(name_or_path: str | Path | None = None, device: str = "auto", require_weights: bool = True) -> ClaspModel:
    """Load a trained model by registry name or directory. `device`: auto, cpu or cuda."""
    directory = resolve_model_dir(name_or_path)
    config = ModelConfig.load(directory / CONFIG)
    weights = directory / WEIGHTS
    if not weights.is_file():
        if require_weights:
            raise ModelError(
                f"model {config.name!r} ({directory}) has no trained weights yet: "
                "train them with `clasp train` (or `make train-default` for the shipped model)"
            )
        weights = None
    return ClaspModel(config, device=device, weights=weights, path=directory)


def create_model(config: ModelConfig, device: str = "auto", seed: int = 0) -> ClaspModel:
    """A fresh, randomly initialised head on the config's frozen encoders (for training)."""
    import torch

    torch.manual_seed(seed)
    model = ClaspModel(config, device=device)
    model.head  # noqa: B018 - build now, under the seed
    return model


def write_fusion(model_dir: str | Path, fusion: dict) -> Path:
    """Store fitted fusion weights in a model directory's config.json (the tuning benchmarks'
    --write-config); the rest of the config is kept as it is. Returns the file written."""
    import json

    path = Path(model_dir) / CONFIG
    cfg = json.loads(path.read_text())
    cfg["fusion"] = fusion
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return path
