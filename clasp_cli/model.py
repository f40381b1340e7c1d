"""A CLASP model: frozen speech and text encoders plus the trained fusion head.

On the CPU a trained head runs in numpy (clasp_cli.head_numpy), so indexing and search need no
torch; the torch head is built for training and on a GPU.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import __version__
from .config import ModelConfig
from .errors import ModelError
from .features import log_mel
from .fsutil import atomic_path, atomic_write_text

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


@dataclass
class AudioFeatures:
    """What the frozen encoders make of one utterance: all the head needs, and what training caches."""

    frames: np.ndarray  # [T, speech_dim]
    mel: np.ndarray | None  # [mel_bins, Tm], padded to a multiple of 8 frames
    encoded: list[np.ndarray] | None = None  # Whisper's whole encoder output per 30 s piece (keep_encoded)


def downsample_frames(frames: np.ndarray, k: int) -> np.ndarray:
    """[T, D] -> [ceil(T/k), D]: the mean of every k frames (the last group may be shorter)."""
    if k <= 1 or frames.shape[0] == 0:
        return frames
    t = frames.shape[0]
    full = (t // k) * k
    out = frames[:full].reshape(-1, k, frames.shape[1]).mean(axis=1, dtype=np.float32)
    if full < t:
        out = np.concatenate([out, frames[full:].mean(axis=0, dtype=np.float32, keepdims=True)])
    return out.astype(frames.dtype, copy=False)


def head_inputs(feats: Sequence["AudioFeatures"], frame_downsample: int) -> list["AudioFeatures"]:
    """What the head takes: the encoder's features with frames averaged as the config says."""
    if frame_downsample <= 1:
        return list(feats)
    return [AudioFeatures(downsample_frames(f.frames, frame_downsample), f.mel) for f in feats]


class ClaspModel:
    def __init__(self, config: ModelConfig, device: str = "auto", weights: Path | None = None, path: Path | None = None):
        # Own copy: save() records provenance in the config, which must not leak into other models.
        self.config = copy.deepcopy(config)
        self._device_request = device
        self._device: str | None = None
        self.path = path
        self._weights = weights
        self._head = None
        self._numpy_head = None
        self._speech = None
        self._text = None
        self._calibrator = None

    @property
    def device(self) -> str:
        """Resolved on first use: probing for CUDA imports ctranslate2, which text search never needs."""
        if self._device is None:
            from .devices import resolve_device

            self._device = resolve_device(self._device_request)
        return self._device

    # -- parts, built lazily -------------------------------------------------------------
    @property
    def head(self):
        if self._head is None:
            from .head import ClaspHead

            head = ClaspHead(self.config.head)
            if self._weights is not None:
                load_head_weights(head, self._weights)
            self._head = head.to(self.device).eval()
        return self._head

    @head.setter
    def head(self, module) -> None:
        self._head = module

    @property
    def speech(self):
        if self._speech is None:
            from .encoders.speech import build_speech_encoder

            enc = build_speech_encoder(self.config.speech_encoder, device=self.device)
            if enc.dim != self.config.head.speech_dim:
                raise ModelError(
                    f"speech encoder {enc.id} gives {enc.dim}-d frames but the head expects {self.config.head.speech_dim}"
                )
            self._speech = enc
        return self._speech

    @property
    def text(self):
        if self._text is None:
            from .encoders.text import build_text_encoder

            # The requested device, unresolved: USE runs in numpy and must not pay for probing CUDA.
            enc = build_text_encoder(self.config.text_encoder, device=self._device_request)
            if enc.dim != self.config.head.out_dim:
                raise ModelError(f"text encoder {enc.id} gives {enc.dim}-d vectors but the head outputs {self.config.head.out_dim}")
            self._text = enc
        return self._text

    @property
    def dim(self) -> int:
        return self.config.head.out_dim

    @property
    def id(self) -> str:
        """Identity recorded by indexes: same id means embeddings are comparable."""
        return f"{self.config.name}@{self.config.training.get('weights_sha256', 'untrained')[:12]}"

    # -- embedding ------------------------------------------------------------------------
    def audio_features(self, waves: Sequence[np.ndarray], keep_encoded: bool = False) -> list[AudioFeatures]:
        """keep_encoded: also keep Whisper's encoder output, so the same pass can be transcribed
        (only for a Whisper speech encoder; see can_share_encoder)."""
        sf = self.speech.encode(waves, keep_outputs=True) if keep_encoded else self.speech.encode(waves)
        frames = sf.unpad()
        out = []
        for i, (w, f) in enumerate(zip(waves, frames)):
            mel = None
            if self.config.head.use_spectrogram:
                mel = log_mel(w, self.config.sample_rate, self.config.head.mel_bins)
                pad = (-mel.shape[1]) % self.config.head.mel_multiple
                mel = np.pad(mel, ((0, 0), (0, pad)))
            out.append(AudioFeatures(f, mel, sf.outputs[i] if sf.outputs is not None else None))
        return out

    def can_share_encoder(self, whisper: str) -> bool:
        """Whether Whisper `whisper`'s decoder can read this model's speech-encoder output as is."""
        from .encoders.speech import WhisperCT2Encoder

        return self.config.speech_encoder == whisper and isinstance(self.speech, WhisperCT2Encoder)

    def _inference_head(self):
        """The numpy head, for a trained model on the CPU with no torch head in use (training
        assigns one): the same vectors as torch's, and indexing needs no torch. None: use torch."""
        if self._numpy_head is None and self._head is None and self._weights is not None and self.device == "cpu":
            from .head_numpy import NumpyHead, load_state, supports

            if supports(self.config.head):
                self._numpy_head = NumpyHead(self.config.head, load_state(self._weights))
        return self._numpy_head if self._head is None else None

    def ready(self) -> None:
        """Load the head inference will use now (numpy or torch), outside any timed region."""
        if self._inference_head() is None:
            self.head  # noqa: B018

    def embed_features(self, feats: Sequence[AudioFeatures], batch_size: int = 32) -> np.ndarray:
        feats = head_inputs(feats, self.config.head.frame_downsample)
        fast = self._inference_head()
        if fast is not None:
            outs = [fast(*collate_numpy(feats[s : s + batch_size], self.config.head.mel_multiple))
                    for s in range(0, len(feats), batch_size)]
            return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0, self.dim), dtype=np.float32)
        import torch

        head = self.head
        outs = []
        # On a GPU the head runs in float16 like the encoder and decoder (CTranslate2's float16).
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.device == "cuda"):
            for s in range(0, len(feats), batch_size):
                batch = feats[s : s + batch_size]
                args = collate(batch, self.device, self.config.head.mel_multiple)
                outs.append(head(*args).float().cpu().numpy())
        if not outs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(outs).astype(np.float32)

    def embed_audio(self, waves: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Mono 16 kHz float32 waveforms -> L2-normalised [n, dim]."""
        return self.embed_features(self.audio_features(waves), batch_size)

    def match_score(self, cosine: np.ndarray | float, query: np.ndarray | None = None) -> np.ndarray:
        """What a text query's hits read as. With a fitted calibration and the query's vector: the
        probability that the passage says the query (clasp_cli.calibration). Else, for a head
        trained with the sigmoid loss, sigmoid(scale * cosine + bias); else the cosine."""
        cosine = np.asarray(cosine, dtype=np.float64)
        calibrator = self.calibrator
        if calibrator is not None and query is not None:
            return calibrator.probability(query, cosine)
        if self.config.head.score != "sigmoid":
            return cosine
        scale, bias = self._sigmoid_head_map()
        return 1.0 / (1.0 + np.exp(-(scale * cosine + bias)))

    @property
    def calibrator(self):
        """The fitted score calibration, or None when the model has none."""
        if self._calibrator is None and self.config.calibration and self.path is not None:
            from .calibration import ScoreCalibration

            self._calibrator = ScoreCalibration.load(self.path, self.config.calibration)
        return self._calibrator

    @calibrator.setter
    def calibrator(self, cal) -> None:
        self._calibrator = cal
        self.config.calibration = cal.to_config() if cal is not None else {}

    @property
    def default_min_score(self) -> float | None:
        """The threshold documented for `clasp search --min-score`, when the model was calibrated."""
        return float(self.config.calibration["min_score"]) if self.config.calibration else None

    def _sigmoid_head_map(self) -> tuple[float, float]:
        if self._head is not None:
            return float(self._head.logit_scale.detach().exp().clamp(max=100.0)), float(self._head.logit_bias.detach())
        if self._weights is None:
            raise ModelError(f"model {self.config.name!r} has no trained weights, so no score calibration")
        # Read the two scalars with numpy: text search must not import torch just for this.
        from safetensors import safe_open

        with safe_open(str(self._weights), framework="numpy") as f:
            scale = float(np.exp(f.get_tensor("logit_scale")))
            bias = float(f.get_tensor("logit_bias"))
        return min(scale, 100.0), bias

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Texts in any language the text encoder knows -> L2-normalised [n, dim]."""
        return self.text.encode(list(texts))

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write config.json + model.safetensors; each file is replaced atomically."""
        import hashlib

        import safetensors
        import torch
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        with atomic_path(directory / WEIGHTS) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "clasp_version": __version__})
            digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        if self.calibrator is not None:
            self.config.calibration = self.calibrator.save(directory)
        self.config.versions = {"clasp": __version__, "torch": torch.__version__, "safetensors": safetensors.__version__}
        self.config.training = {**self.config.training, "weights_sha256": digest}
        atomic_write_text(directory / CONFIG, json.dumps(self.config.to_dict(), indent=2) + "\n")
        self._weights, self.path = directory / WEIGHTS, directory
        return directory


def collate_numpy(batch: Sequence[AudioFeatures], mel_multiple: int = 1):
    """Pad a list of features into the head's arrays (frames, lengths, mel, mel lengths).

    Mel lengths are rounded up to `mel_multiple` (zero frames), exactly as audio_features pads
    at inference, so training sees what search sees.
    """
    from .encoders.speech import SpeechFeatures

    sf = SpeechFeatures.pad([f.frames for f in batch])
    if batch[0].mel is None:
        return sf.frames, sf.lengths, None, None
    lens = [-(-f.mel.shape[1] // mel_multiple) * mel_multiple for f in batch]
    mel = np.zeros((len(batch), batch[0].mel.shape[0], max(lens)), dtype=np.float32)
    for i, f in enumerate(batch):
        mel[i, :, : f.mel.shape[1]] = f.mel
    return sf.frames, sf.lengths, mel, np.asarray(lens, dtype=np.int64)


def collate(batch: Sequence[AudioFeatures], device: str, mel_multiple: int = 1):
    """collate_numpy as torch tensors on `device` (training and the torch head)."""
    import torch

    frames, lengths, mel, mel_lengths = collate_numpy(batch, mel_multiple)
    out = [torch.from_numpy(frames).to(device), torch.from_numpy(np.asarray(lengths)).to(device)]
    if mel is None:
        return (*out, None, None)
    return (*out, torch.from_numpy(mel).to(device), torch.from_numpy(mel_lengths).to(device))


def load_head_weights(head, path: Path) -> None:
    """Load safetensors into the head, naming missing or unexpected tensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise ModelError(f"{path}: unreadable weights ({e})") from None
    missing, unexpected = head.load_state_dict(state, strict=False)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
        raise ModelError(f"{path}: weights do not match the config ({'; '.join(parts)})")
