"""The CLASP head's forward pass in numpy, for inference without torch.

Indexing and search need only this: the head is small (attention pooling and an MLP, plus the
spectrogram CNN of `clasp-tiny`), so numpy runs it as fast as torch does on a CPU, and a plain
install needs no torch. It reads the same safetensors weights and gives the same vectors as
`clasp_cli.head.ClaspHead` in eval mode (tests/test_head_numpy.py compares them); training
stays in torch. Heads this module cannot run (transformer pooling, attention fusion) report so
through `supports`, and the model falls back to torch for them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .calibration import sigmoid  # one logistic function for the whole package
from .config import HeadConfig
from .errors import ModelError

_LN_EPS = 1e-5  # torch's LayerNorm and BatchNorm defaults
_BN_EPS = 1e-5


def supports(cfg: HeadConfig) -> bool:
    """Whether this module can run a head of this configuration."""
    return cfg.pooling in ("mean", "attention") and cfg.fusion in ("concat", "gating")


def load_state(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return {k: v.astype(np.float32) for k, v in load_file(str(path)).items() if not k.endswith("num_batches_tracked")}
    except (SafetensorError, OSError) as e:
        raise ModelError(f"{path}: unreadable weights ({e})") from None


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


class NumpyHead:
    def __init__(self, cfg: HeadConfig, state: dict[str, np.ndarray]):
        if not supports(cfg):
            raise ModelError(f"the numpy head runs mean or attention pooling with concat or gating fusion, "
                             f"not {cfg.pooling} pooling with {cfg.fusion} fusion")
        self.cfg = cfg
        self.w = state
        need = ["speech_branch.0.weight"] + (["cnn.stem.weight"] if cfg.use_spectrogram else [])
        missing = [k for k in need if k not in state]
        if missing:
            raise ModelError(f"weights do not match the config (missing {', '.join(missing)})")

    # -- layers -------------------------------------------------------------------------------
    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        w = self.w[f"{name}.weight"]
        # One 2-D product: numpy runs a 3-D one as many small ones, several times slower.
        y = x.reshape(-1, x.shape[-1]) @ w.T + self.w[f"{name}.bias"]
        return y.reshape(*x.shape[:-1], w.shape[0])

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        """LayerNorm or eval-mode BatchNorm1d over the last axis, as the config says."""
        g, b = self.w[f"{name}.weight"], self.w[f"{name}.bias"]
        if self.cfg.norm == "batch":
            return (x - self.w[f"{name}.running_mean"]) / np.sqrt(self.w[f"{name}.running_var"] + _BN_EPS) * g + b
        mu = x.mean(-1, keepdims=True)
        var = x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + _LN_EPS) * g + b

    def _branch(self, x: np.ndarray, name: str) -> np.ndarray:
        """branch_mlp: Linear, norm, ReLU, (dropout), Linear, norm, LeakyReLU, (dropout), Linear."""
        h = np.maximum(self._norm(self._linear(x, f"{name}.0"), f"{name}.1"), 0.0)
        h = self._norm(self._linear(h, f"{name}.4"), f"{name}.5")
        h = np.where(h > 0, h, 0.01 * h)
        return self._linear(h, f"{name}.8")

    def _pool(self, x: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
        """Masked mean, or a softmax over learned per-frame scores; x [B,T,D], mask [B,T]."""
        if self.cfg.pooling == "mean":
            m = mask.astype(np.float32)
            return np.matmul(m[:, None, :], x)[:, 0] / np.maximum(m.sum(1, keepdims=True), 1.0)
        s = self._linear(np.tanh(self._linear(x, f"{name}.score.0")), f"{name}.score.2")[..., 0]
        s = np.where(mask, s, -np.inf)
        return np.matmul(_softmax(s, 1)[:, None, :].astype(np.float32), x)[:, 0]

    def _conv_bn_relu(self, x: np.ndarray, conv: str, bn: str, stride: int) -> np.ndarray:
        """A 3x3 convolution (padding 1), eval BatchNorm2d and ReLU; x [B,C,H,W]."""
        wt, bias = self.w[f"{conv}.weight"], self.w[f"{conv}.bias"]
        b, c, h, w = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
        # im2col: [B, C*9, Ho, Wo], then one matrix product with the [out, C*9] kernel.
        cols = np.stack([xp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
                         for i in range(3) for j in range(3)], axis=2).reshape(b, c * 9, ho, wo)
        k = wt.reshape(wt.shape[0], c * 9)
        y = np.einsum("ok,bkhw->bohw", k, cols, optimize=True) + bias[None, :, None, None]
        scale = self.w[f"{bn}.weight"] / np.sqrt(self.w[f"{bn}.running_var"] + _BN_EPS)
        y = (y - self.w[f"{bn}.running_mean"][None, :, None, None]) * scale[None, :, None, None] + self.w[f"{bn}.bias"][None, :, None, None]
        return np.maximum(y, 0.0)

    def _cnn(self, mel: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.cfg.mel_time_pool
        if p > 1:  # lengths are multiples of p, so average pooling over time is exact
            b, m, t = mel.shape
            mel = mel[:, :, : (t // p) * p].reshape(b, m, t // p, p).mean(-1)
            mask = mask[:, ::p]
        x = self._conv_bn_relu(mel[:, None], "cnn.stem", "cnn.stem_bn", 2)
        mask = mask[:, ::2]
        x = x * mask[:, None, None, :]
        i = 0
        while f"cnn.blocks.{i}.conv.weight" in self.w:
            x = self._conv_bn_relu(x, f"cnn.blocks.{i}.conv", f"cnn.blocks.{i}.bn", 1)
            b, c, h, w = x.shape
            x = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(b, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
            mask = mask[:, ::2][:, : x.shape[3]]
            x = x * mask[:, None, None, :]
            i += 1
        b, c, f, t = x.shape
        return x.reshape(b, c * f, t).transpose(0, 2, 1), mask

    # -- forward --------------------------------------------------------------------------------
    def __call__(self, frames: np.ndarray, lengths: np.ndarray, mel: np.ndarray | None = None,
                 mel_lengths: np.ndarray | None = None) -> np.ndarray:
        """frames [B,T,D] + lengths, mel [B,M,Tm] + lengths -> L2-normalised [B, out_dim] float32."""
        frames = np.asarray(frames, dtype=np.float32)
        mask = np.arange(frames.shape[1])[None, :] < np.asarray(lengths)[:, None]
        branches = [self._branch(self._pool(frames, mask, "speech_pool"), "speech_branch")]
        if self.cfg.use_spectrogram:
            if mel is None or mel_lengths is None:
                raise ValueError("this head has a spectrogram branch: pass mel and mel_lengths")
            mel = np.asarray(mel, dtype=np.float32)
            mmask = np.arange(mel.shape[2])[None, :] < np.asarray(mel_lengths)[:, None]
            seq, smask = self._cnn(mel * mmask[:, None, :], mmask.astype(np.float32))
            branches.append(self._branch(self._pool(seq, smask > 0, "mel_pool"), "mel_branch"))
        out = self._fuse(branches)
        return (out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)).astype(np.float32)

    def _fuse(self, branches: list[np.ndarray]) -> np.ndarray:
        if self.cfg.fusion == "concat":
            h = np.concatenate(branches, axis=-1)
            n = len(self.cfg.fusion_hidden)
            for i in range(0, 4 * n, 4):  # each hidden layer: Linear, norm, ReLU, dropout
                h = np.maximum(self._norm(self._linear(h, f"fuse.{i}"), f"fuse.{i + 1}"), 0.0)
            return self._linear(h, f"fuse.{4 * n}")
        gated = []
        for k, h in enumerate(branches):
            g = self._linear(h, f"gates.{k}")
            i, f, c = np.split(g, 3, axis=-1)
            gated.append(sigmoid(i) * np.tanh(c) + sigmoid(f) * h)
        g = np.stack(gated, axis=1)  # [B, n, bd]
        w = _softmax(self._linear(g, "branch_score"), 1)
        return self._linear((w * g).sum(1), "out")
