"""The model config schema (one definition), stored as config.json beside model.safetensors."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import ModelError

FORMAT_VERSION = 1
FUSIONS = ("concat", "gating", "attention")
POOLINGS = ("mean", "attention", "transformer")
NORMS = ("batch", "layer")
SCORES = ("cosine", "sigmoid")


@dataclass
class HeadConfig:
    """The trainable part. Branch MLP sizes follow the paper (768 -> 576 -> 768)."""

    speech_dim: int = 384
    out_dim: int = 512  # always the text encoder's dimension
    fusion: str = "concat"
    pooling: str = "mean"
    use_spectrogram: bool = True
    mel_bins: int = 64
    # The CNN sees the log-mel averaged over mel_time_pool frames (100 fps -> 25 fps), then halves
    # time once per channel stage: sized so training fits 2 CPU cores.
    mel_time_pool: int = 4
    cnn_channels: tuple[int, ...] = (8, 16, 32)
    branch_hidden: tuple[int, int] = (768, 576)
    branch_dim: int = 768
    fusion_hidden: tuple[int, ...] = (1024, 800)
    dropout: tuple[float, float] = (0.15, 0.1)
    attention_heads: int = 4
    temperature: float = 0.07
    learnable_temperature: bool = False
    # "batch": the paper's BatchNorm MLPs; "layer": LayerNorm, which does not depend on what else
    # is in a (length-bucketed) batch.
    norm: str = "batch"
    # Speech frames are averaged over this many steps before the head sees them (Whisper's 50 per
    # second -> 25 with 2): half the pooling cost, most of a CPU training step, and half the memory
    # of a training set held in RAM. Applied once per utterance (ClaspModel.embed_features, and
    # once on load in training), never inside the head, so a batch pays nothing for it.
    frame_downsample: int = 1
    # pooling="transformer": frames averaged over seq_downsample steps, projected to seq_dim, a
    # small pre-norm transformer over time, then attention pooling.
    seq_downsample: int = 2
    seq_dim: int = 384
    seq_layers: int = 2
    seq_heads: int = 6
    # "cosine": scores are cosine similarities. "sigmoid": trained with a sigmoid loss and a
    # learned bias (SigLIP), so sigmoid(scale * cosine + bias) reads as a match probability.
    score: str = "cosine"

    @property
    def mel_multiple(self) -> int:
        """Mel lengths are padded to this so every time-halving in the CNN is exact."""
        return self.mel_time_pool * 2 ** len(self.cnn_channels)

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ModelError(f"unknown fusion {self.fusion!r}; choose one of {', '.join(FUSIONS)}")
        if self.pooling not in POOLINGS:
            raise ModelError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if self.norm not in NORMS:
            raise ModelError(f"unknown norm {self.norm!r}; choose one of {', '.join(NORMS)}")
        if self.score not in SCORES:
            raise ModelError(f"unknown score {self.score!r}; choose one of {', '.join(SCORES)}")
        if self.frame_downsample < 1:
            raise ModelError(f"frame_downsample must be at least 1 (got {self.frame_downsample})")
        if self.seq_dim % self.seq_heads:
            raise ModelError(f"seq_dim ({self.seq_dim}) must be divisible by seq_heads ({self.seq_heads})")
        if self.mel_bins % 2 ** len(self.cnn_channels):
            raise ModelError(f"mel_bins ({self.mel_bins}) must be divisible by {2 ** len(self.cnn_channels)}")
        for name in ("cnn_channels", "branch_hidden", "fusion_hidden", "dropout"):
            setattr(self, name, tuple(getattr(self, name)))


@dataclass
class ModelConfig:
    name: str
    speech_encoder: str = "whisper-tiny.en"
    text_encoder: str = "use-multilingual"
    sample_rate: int = 16_000
    head: HeadConfig = field(default_factory=HeadConfig)
    description: str = ""
    format_version: int = FORMAT_VERSION
    # Filled in on save: library versions that wrote the weights, and training provenance.
    versions: dict[str, str] = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    # Written by training: how text-query scores become match probabilities (clasp_cli.calibration),
    # and the default `--min-score`. Empty: scores are what the head's `score` says.
    calibration: dict = field(default_factory=dict)
    # Read for older configs and ignored: `--rerank` now feeds the same fusion as every mode (`fusion`).
    rerank_text_weight: float | None = None
    # Windows a bare `--rerank` reads: as many as this model's Whisper transcribes in about 3 s on
    # 2 CPU cores, where more stops paying (benchmarks/rerank_tuning.py). None: search.DEFAULT_RERANK.
    rerank_windows: int | None = None
    # How the CLASP vector, the transcript vector and the transcript's words fuse into one match
    # probability (clasp_cli.fusion.FusionWeights), fitted for this model on the validation
    # archives (benchmarks/fusion_tuning.py). Empty: FusionWeights' defaults.
    fusion: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config.json") -> "ModelConfig":
        d = dict(d)
        version = d.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ModelError(f"{where}: format_version {version} is newer than this clasp understands ({FORMAT_VERSION}); upgrade clasp")
        head = d.pop("head", {}) or {}
        known_head = {f.name for f in fields(HeadConfig)}
        unknown = set(head) - known_head
        if unknown:
            raise ModelError(f"{where}: unknown head settings {', '.join(sorted(unknown))}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ModelError(f"{where}: unknown settings {', '.join(sorted(unknown))}")
        if "name" not in d:
            raise ModelError(f"{where}: missing 'name'")
        return cls(head=HeadConfig(**head), **d)

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{path}: model config not found") from None
        except (OSError, json.JSONDecodeError) as e:
            raise ModelError(f"{path}: unreadable model config ({e})") from None
        return cls.from_dict(d, where=str(path))
