"""The CLASP fusion head: the only trained part. Frozen-encoder features in, unit vector out.

Branches:
- speech: frame features of a frozen encoder, pooled over time (mean as in the paper, or
  learned attention pooling), then the paper's branch MLP.
- spectrogram: log-mel frames through a small CNN (our stand-in for the paper's ImageNet
  EfficientNet-B7, whose weights are not available offline), pooled the same way.
Fusion: `concat` and `gating` as the paper defines them, and `attention` (ours): a learned
query attends over the branch vectors.

Padding never changes an utterance's embedding: masks are applied after every layer that
could leak padded positions, so batch composition does not matter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import HeadConfig

def length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def downsample(x: torch.Tensor, mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average every k frames (masked, so padding never leaks in); [B,T,D] -> [B,ceil(T/k),D]."""
    if k <= 1:
        return x, mask
    b, t, d = x.shape
    pad = (-t) % k
    n = F.pad(mask, (0, pad)).to(x.dtype).reshape(b, -1, k).sum(2, keepdim=True)
    x = F.pad(x.masked_fill(~mask.unsqueeze(-1), 0.0), (0, 0, 0, pad)).reshape(b, -1, k, d)
    return x.sum(2) / n.clamp(min=1.0), n.squeeze(-1) > 0


class Pool(nn.Module):
    """Masked pooling over time: mean, or a softmax over learned per-frame scores."""

    def __init__(self, dim: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "attention":
            self.score = nn.Sequential(nn.Linear(dim, 128), nn.Tanh(), nn.Linear(128, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # x [B,T,D], mask [B,T]
        # Weighted sums as batched matrix products: no [B,T,D] temporary (the largest cost on a CPU).
        if self.kind == "mean":
            m = mask.to(x.dtype)
            return torch.bmm(m.unsqueeze(1), x).squeeze(1) / m.sum(1, keepdim=True).clamp(min=1.0)
        s = self.score(x).squeeze(-1).masked_fill(~mask, float("-inf"))
        w = torch.softmax(s, dim=1)
        return torch.bmm(w.unsqueeze(1), x).squeeze(1)


class SequencePool(nn.Module):
    """Frames -> a small transformer over time -> attention pooling: words can see their context.

    Frames are first averaged over `seq_downsample` steps (masked, so padding never leaks in).
    Positions are sinusoidal, so there is no maximum length.
    """

    def __init__(self, dim: int, cfg: HeadConfig):
        super().__init__()
        self.down = cfg.seq_downsample
        self.proj = nn.Sequential(nn.Linear(dim, cfg.seq_dim), nn.LayerNorm(cfg.seq_dim))
        layer = nn.TransformerEncoderLayer(
            cfg.seq_dim, cfg.seq_heads, 2 * cfg.seq_dim, dropout=cfg.dropout[1], batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.seq_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.seq_dim)
        self.pool = Pool(cfg.seq_dim, "attention")
        self.out_dim = cfg.seq_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x, mask = downsample(x, mask, self.down)
        h = self.proj(x)
        h = h + _sinusoid(h.shape[1], h.shape[2], h.device, h.dtype)[None]
        h = self.encoder(h, src_key_padding_mask=~mask)
        return self.pool(self.norm(h), mask)


def _sinusoid(n: int, d: int, device, dtype) -> torch.Tensor:
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe.to(dtype)


def _norm(dim: int, cfg: HeadConfig) -> nn.Module:
    return nn.BatchNorm1d(dim) if cfg.norm == "batch" else nn.LayerNorm(dim)


def branch_mlp(in_dim: int, cfg: HeadConfig) -> nn.Sequential:
    h1, h2 = cfg.branch_hidden
    d1, d2 = cfg.dropout
    return nn.Sequential(
        nn.Linear(in_dim, h1), _norm(h1, cfg), nn.ReLU(), nn.Dropout(d1),
        nn.Linear(h1, h2), _norm(h2, cfg), nn.LeakyReLU(), nn.Dropout(d2),
        nn.Linear(h2, cfg.branch_dim),
    )


def make_pool(dim: int, cfg: HeadConfig) -> tuple[nn.Module, int]:
    """The time pooling a config asks for, and the width of what it returns."""
    if cfg.pooling == "transformer":
        pool = SequencePool(dim, cfg)
        return pool, pool.out_dim
    return Pool(dim, cfg.pooling), dim


class SpectrogramCNN(nn.Module):
    """[B, mel, T] -> [B, T/8, C * mel/8]: a strided conv, then conv + max-pool blocks.

    Sized for 2 CPU cores (about 16 M multiply-adds per 4 s utterance). Frequency is flattened
    into the feature vector rather than averaged, so the branch keeps spectral shape.
    """

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        c1, *rest = cfg.cnn_channels
        self.stem = nn.Conv2d(1, c1, 3, stride=2, padding=1)
        self.stem_bn = nn.BatchNorm2d(c1)
        blocks, c_in = [], c1
        for c in rest:
            blocks.append(nn.ModuleDict({"conv": nn.Conv2d(c_in, c, 3, padding=1), "bn": nn.BatchNorm2d(c)}))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.out_dim = c_in * (cfg.mel_bins // 2 ** len(cfg.cnn_channels))
        self.time_pool = cfg.mel_time_pool

    def forward(self, mel: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.time_pool
        if p > 1:  # padded frames are zero, and lengths are multiples of p: pooling stays exact
            mel = F.avg_pool1d(mel, p)
            mask = mask[:, ::p]
        x = F.relu(self.stem_bn(self.stem(mel.unsqueeze(1))))  # [B, c1, M/2, T/2]
        mask = mask[:, ::2]
        # Zero padded frames so the next conv sees exactly what it sees at a tensor edge.
        x = x * mask[:, None, None, :].to(x.dtype)
        for b in self.blocks:
            x = F.max_pool2d(F.relu(b["bn"](b["conv"](x))), 2)
            mask = mask[:, ::2]
            x = x * mask[:, None, None, :].to(x.dtype)
        b_, c, f, t = x.shape
        return x.reshape(b_, c * f, t).transpose(1, 2), mask  # [B, T', C*F]


class ClaspHead(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        self.speech_pool, pooled = make_pool(cfg.speech_dim, cfg)
        self.speech_branch = branch_mlp(pooled, cfg)
        n_branches = 1
        if cfg.use_spectrogram:
            self.cnn = SpectrogramCNN(cfg)
            self.mel_pool, mel_pooled = make_pool(self.cnn.out_dim, cfg)
            self.mel_branch = branch_mlp(mel_pooled, cfg)
            n_branches = 2
        bd = cfg.branch_dim
        if cfg.fusion == "concat":
            layers, d = [], bd * n_branches
            for h in cfg.fusion_hidden:
                layers += [nn.Linear(d, h), _norm(h, cfg), nn.ReLU(), nn.Dropout(cfg.dropout[1])]
                d = h
            layers.append(nn.Linear(d, cfg.out_dim))
            self.fuse = nn.Sequential(*layers)
        elif cfg.fusion == "gating":
            # LSTM-like gates per branch, then a softmax weighting over branches (the paper's variant).
            self.gates = nn.ModuleList(nn.Linear(bd, 3 * bd) for _ in range(n_branches))
            self.branch_score = nn.Linear(bd, 1)
            self.out = nn.Linear(bd, cfg.out_dim)
        else:
            self.branch_type = nn.Parameter(torch.randn(n_branches, bd) * 0.02)
            self.query = nn.Parameter(torch.randn(1, 1, bd) * 0.02)
            self.attn = nn.MultiheadAttention(bd, cfg.attention_heads, dropout=cfg.dropout[1], batch_first=True)
            self.norm = nn.LayerNorm(bd)
            self.out = nn.Sequential(nn.Linear(bd, bd), nn.GELU(), nn.Linear(bd, cfg.out_dim))
        init = math.log(1.0 / cfg.temperature)
        self.logit_scale = nn.Parameter(torch.tensor(init), requires_grad=cfg.learnable_temperature)
        if cfg.score == "sigmoid":
            # SigLIP's start: most pairs are negatives, so a strongly negative bias is right at first.
            self.logit_bias = nn.Parameter(torch.tensor(-10.0))

    def forward(
        self,
        frames: torch.Tensor,
        frame_lengths: torch.Tensor,
        mel: torch.Tensor | None = None,
        mel_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """frames [B,T,D] + lengths, mel [B,M,Tm] + lengths -> L2-normalised [B, out_dim]."""
        mask = length_mask(frame_lengths, frames.shape[1])
        branches = [self.speech_branch(self.speech_pool(frames, mask))]
        if self.cfg.use_spectrogram:
            if mel is None or mel_lengths is None:
                raise ValueError("this head has a spectrogram branch: pass mel and mel_lengths")
            mmask = length_mask(mel_lengths, mel.shape[2])
            seq, smask = self.cnn(mel * mmask[:, None, :].to(mel.dtype), mmask)
            branches.append(self.mel_branch(self.mel_pool(seq, smask)))
        return F.normalize(self.fuse_branches(branches), dim=-1)

    def fuse_branches(self, branches: list[torch.Tensor]) -> torch.Tensor:
        if self.cfg.fusion == "concat":
            return self.fuse(torch.cat(branches, dim=-1))
        if self.cfg.fusion == "gating":
            gated = []
            for h, gate in zip(branches, self.gates):
                i, f, c = gate(h).chunk(3, dim=-1)
                gated.append(torch.sigmoid(i) * torch.tanh(c) + torch.sigmoid(f) * h)
            g = torch.stack(gated, dim=1)  # [B, n, bd]
            w = torch.softmax(self.branch_score(g), dim=1)
            return self.out((w * g).sum(1))
        tokens = torch.stack(branches, dim=1) + self.branch_type[None]
        q = self.query.expand(tokens.shape[0], -1, -1)
        a, _ = self.attn(q, tokens, tokens, need_weights=False)
        return self.out(self.norm(a[:, 0] + q[:, 0]))
