"""Frozen self-supervised speech encoders: a batch of waveforms -> frame features and lengths.

Two families:
- `whisper-tiny.en` (English) and `whisper-base` (multilingual): the Whisper encoder through
  CTranslate2, on weights that ship as packages (see whisper_weights.py). Any CTranslate2
  Whisper directory works too.
- `hf:<hub id or directory>`: a Hugging Face HuBERT / wav2vec2 / WavLM model (the paper used
  `facebook/hubert-large-ls960-ft`). Weights load from safetensors only.

Each utterance is encoded independently of its batch mates (equal-length buckets), so the same
recording always yields the same features whether it is indexed alone or in a batch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..errors import ModelError, PickleRefusedError
from .whisper_weights import WHISPER_MODELS, resolve_whisper_path

SAMPLE_RATE = 16_000
WHISPER_MAX_SECONDS = 30  # the encoder's positional table covers 30 s


@dataclass
class SpeechFeatures:
    frames: np.ndarray  # [B, T, D] float32, zero beyond each length
    lengths: np.ndarray  # [B] int64, valid frames per utterance
    # With encode(keep_outputs=True): per utterance, the whole encoder output of each 30 s piece
    # (padding frames included), which Whisper's decoder can read without encoding again.
    outputs: list[list[np.ndarray]] | None = None

    def unpad(self) -> list[np.ndarray]:
        return [self.frames[i, : int(n)] for i, n in enumerate(self.lengths)]

    @staticmethod
    def pad(items: Sequence[np.ndarray]) -> "SpeechFeatures":
        n = max(1, max(x.shape[0] for x in items))
        d = items[0].shape[1]
        frames = np.zeros((len(items), n, d), dtype=np.float32)
        for i, x in enumerate(items):
            frames[i, : x.shape[0]] = x
        return SpeechFeatures(frames, np.array([x.shape[0] for x in items], dtype=np.int64))


class SpeechEncoder(Protocol):
    id: str  # stable identity, used as a cache key
    dim: int
    frames_per_second: float

    def encode(self, waves: Sequence[np.ndarray]) -> SpeechFeatures: ...


def _check_waves(waves: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = []
    for w in waves:
        w = np.asarray(w, dtype=np.float32).reshape(-1)
        if w.size == 0:
            raise ValueError("cannot encode an empty waveform")
        out.append(w)
    return out


class WhisperCT2Encoder:
    """Whisper's encoder via CTranslate2, with inputs shorter than 30 s (no padding to 30 s)."""

    frames_per_second = 50.0

    def __init__(self, model: str = "whisper-tiny.en", device: str = "cpu", compute_type: str = "auto", threads: int = 0,
                 pad_seconds: float = 1.0):
        import ctranslate2

        if not 0.02 <= pad_seconds <= WHISPER_MAX_SECONDS or abs(pad_seconds * 50 - round(pad_seconds * 50)) > 1e-6:
            raise ModelError(f"pad_seconds must be a whole number of 20 ms encoder frames, 0.02-30 s (got {pad_seconds})")
        self.pad_seconds = pad_seconds

        self.path = resolve_whisper_path(model)
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        try:
            self._model = ctranslate2.models.Whisper(
                str(self.path), device=device, compute_type=compute_type, intra_threads=threads or (os.cpu_count() or 1)
            )
        except Exception as e:  # ctranslate2 raises RuntimeError/ValueError with the reason
            raise ModelError(f"{self.path}: cannot load CTranslate2 Whisper model ({e})") from None
        from faster_whisper.feature_extractor import FeatureExtractor

        self._fe = FeatureExtractor(feature_size=self._model.n_mels)
        self.device = device
        self.compute_type = compute_type
        self.id = model if model in WHISPER_MODELS else f"whisper-ct2:{self.path}"
        # CTranslate2 does not expose the encoder width; one second of silence tells it.
        self.dim = int(self.encode([np.zeros(SAMPLE_RATE, dtype=np.float32)]).frames.shape[2])

    def _chunks(self, w: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """Split at 30 s and pad each piece up to a multiple of pad_seconds, keeping its true frame count.

        Padding to a fixed grid, not to the longest clip in a batch, keeps a clip's features
        independent of whatever it is batched with; clips of one padded length share a batch."""
        step = WHISPER_MAX_SECONDS * SAMPLE_RATE
        quantum = round(self.pad_seconds * SAMPLE_RATE)
        out = []
        for start in range(0, w.size, step):
            piece = w[start : start + step]
            padded = min(step, max(1, math.ceil(piece.size / quantum)) * quantum)
            valid = max(1, math.ceil(piece.size / 320))  # 2 mel hops per encoder frame
            out.append((np.pad(piece, (0, padded - piece.size)), valid))
        return out

    def encode(self, waves: Sequence[np.ndarray], batch_size: int = 8, keep_outputs: bool = False) -> SpeechFeatures:
        """batch_size: clips per encoder call (clips of one padded length only). On 2 cores calls of
        4-16 clips ran at 46-74x real time and single clips at 43-48x (benchmarks/encoder_batch.py);
        no size won at every length, and 8 did best on average. keep_outputs: also return each
        piece's whole encoder output, for transcribing from the same pass (Transcriber.transcribe_encoded)."""
        import ctranslate2

        waves = _check_waves(waves)
        pieces: list[tuple[int, np.ndarray, int]] = []  # (utterance, padded audio, valid frames)
        for i, w in enumerate(waves):
            pieces += [(i, p, v) for p, v in self._chunks(w)]
        outputs: list[np.ndarray | None] = [None] * len(pieces)
        whole: list[np.ndarray | None] = [None] * len(pieces)
        by_len: dict[int, list[int]] = {}
        for k, (_, p, _) in enumerate(pieces):
            by_len.setdefault(p.size, []).append(k)
        for size, ks in by_len.items():
            n_mel = size // 160
            for s in range(0, len(ks), batch_size):
                group = ks[s : s + batch_size]
                mel = np.stack([self._fe(pieces[k][1], padding=0)[:, :n_mel] for k in group]).astype(np.float32)
                enc = np.asarray(self._model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)), to_cpu=True))
                for j, k in enumerate(group):
                    outputs[k] = enc[j, : pieces[k][2]].astype(np.float32)
                    if keep_outputs:
                        whole[k] = enc[j]
        per_utt: list[list[np.ndarray]] = [[] for _ in waves]
        kept: list[list[np.ndarray]] = [[] for _ in waves]
        for k, (i, _, _) in enumerate(pieces):
            per_utt[i].append(outputs[k])  # type: ignore[arg-type]
            kept[i].append(whole[k])  # type: ignore[arg-type]
        feats = SpeechFeatures.pad([np.concatenate(x) for x in per_utt])
        if keep_outputs:
            feats.outputs = kept
        return feats


class HFSpeechEncoder:
    """A Hugging Face HuBERT / wav2vec2 / WavLM model (CTC heads are dropped), last hidden state."""

    frames_per_second = 50.0
    MAX_SECONDS = 30  # bound memory on long inputs: encode in 30 s pieces

    def __init__(self, name_or_path: str, device: str = "cpu"):
        from ..extras import require

        require("hf", f"the speech encoder hf:{name_or_path}")
        import torch
        from transformers import AutoConfig, AutoModel

        self.name = name_or_path
        try:
            config = AutoConfig.from_pretrained(name_or_path)
        except Exception as e:
            raise ModelError(f"cannot load speech model {name_or_path!r}: {str(e).splitlines()[0]}") from None
        if config.model_type not in ("hubert", "wav2vec2", "wavlm", "data2vec-audio"):
            raise ModelError(f"{name_or_path}: model type {config.model_type!r} is not a supported speech encoder")
        local = Path(name_or_path)
        if local.is_dir() and not any(local.glob("*.safetensors")):
            if any(local.glob("*.bin")) or any(local.glob("*.pt")):
                raise PickleRefusedError(f"{local}: only pickled weights found; convert them to safetensors first")
        try:
            # use_safetensors=True: never fall back to torch.load on a pickle.
            self._model = AutoModel.from_pretrained(name_or_path, use_safetensors=True).to(device).eval()
        except Exception as e:
            raise ModelError(f"cannot load speech model {name_or_path!r}: {str(e).splitlines()[0]}") from None
        self._torch = torch
        self.device = device
        self.dim = int(config.hidden_size)
        self.id = f"hf:{name_or_path}"
        # wav2vec2-style models trained with layer-norm feature extractors expect normalised input.
        self.normalize = bool(getattr(config, "feat_extract_norm", "group") == "layer" or _do_normalize(name_or_path))

    def encode(self, waves: Sequence[np.ndarray]) -> SpeechFeatures:
        torch = self._torch
        out = []
        step = self.MAX_SECONDS * SAMPLE_RATE
        with torch.inference_mode():
            for w in _check_waves(waves):
                parts = []
                for s in range(0, w.size, step):
                    x = w[s : s + step]
                    if x.size < 400:  # the conv front end needs at least one 25 ms window
                        x = np.pad(x, (0, 400 - x.size))
                    if self.normalize:
                        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
                    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].to(self.device)
                    parts.append(self._model(t).last_hidden_state[0].float().cpu().numpy())
                out.append(np.concatenate(parts))
        return SpeechFeatures.pad(out)


def _do_normalize(name_or_path: str) -> bool:
    try:
        from transformers import AutoFeatureExtractor

        return bool(getattr(AutoFeatureExtractor.from_pretrained(name_or_path), "do_normalize", False))
    except Exception:
        return False


def build_speech_encoder(spec: str, device: str = "cpu") -> SpeechEncoder:
    """`whisper-tiny.en`, `whisper-ct2:<dir>` or `hf:<hub id or dir>`."""
    if spec in WHISPER_MODELS:
        return WhisperCT2Encoder(spec, device=device)
    if spec.startswith("whisper-ct2:"):
        return WhisperCT2Encoder(spec.split(":", 1)[1], device=device)
    if spec.startswith("hf:"):
        return HFSpeechEncoder(spec[3:], device=device)
    raise ModelError(
        f"unknown speech encoder {spec!r}: use {', '.join(WHISPER_MODELS)}, whisper-ct2:<dir> or hf:<hub id or dir>"
    )
