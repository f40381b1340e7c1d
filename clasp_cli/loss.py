"""Training objectives: symmetric InfoNCE (CLASP), its bank-of-all-texts form, the pairwise sigmoid
loss (SigLIP), Huber regression (the paper's LASP variant) and a cosine-regression term."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("infonce", "sigmoid", "huber")


def info_nce(speech: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP-style loss over a batch of L2-normalised pairs.

    `groups` marks rows that share a sentence (the same text spoken by several voices): those
    are positives for each other, not negatives, so targets are spread over the group.
    """
    logits = logit_scale.exp().clamp(max=100.0) * speech @ text.T
    if groups is None:
        target = torch.arange(len(speech), device=speech.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    same = (groups[:, None] == groups[None, :]).float()
    target = same / same.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def bank_nce(speech: torch.Tensor, bank: torch.Tensor, positive: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Speech -> text over the whole bank of frozen training-text embeddings, not just the batch.

    With a few thousand sentences, a batch of 256 holds few hard negatives; the bank holds every
    training text (and, with multi-positive targets, every translation) at every step, so each
    speech vector learns to beat all of them. `positive` (batch x bank, bool) marks the rows any
    of which counts as right: the utterance's own text, plus its translations when given."""
    logits = logit_scale.exp().clamp(max=100.0) * speech @ bank.T
    pos = logits.masked_fill(~positive, float("-inf"))
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(pos, dim=1)).mean()


def text_to_speech(speech: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """The query direction alone (each text ranks the batch's recordings), for pairing with bank_nce."""
    logits = logit_scale.exp().clamp(max=100.0) * text @ speech.T
    same = (groups[:, None] == groups[None, :]).float()
    return F.cross_entropy(logits, same / same.sum(1, keepdim=True))


def cosine_gap(speech: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """1 - cosine to the target, averaged: pulls each vector onto its sentence, not just nearer
    than the negatives (the contrastive losses stop pushing once a pair is ranked first)."""
    return (1.0 - (speech * text).sum(-1)).mean()


def sigmoid_pairs(
    speech: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, logit_bias: torch.Tensor,
    groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """SigLIP: every (speech, text) pair is its own binary question, "is this a match?".

    Unlike InfoNCE, the score does not depend on the other candidates, so with the learned
    bias, sigmoid(scale * cosine + bias) is a match probability that a fixed threshold can use.
    """
    logits = logit_scale.exp().clamp(max=100.0) * speech @ text.T + logit_bias
    if groups is None:
        labels = 2 * torch.eye(len(speech), device=speech.device) - 1
    else:
        labels = 2 * (groups[:, None] == groups[None, :]).float() - 1
    return -F.logsigmoid(labels * logits).sum() / len(speech)


def huber(speech: torch.Tensor, text: torch.Tensor, delta: float = 0.1) -> torch.Tensor:
    """Regress the speech embedding onto the text embedding (LASP)."""
    # Summed over dimensions: per-dimension errors of unit vectors are tiny, a mean would vanish.
    return F.huber_loss(speech, text, delta=delta, reduction="sum") / len(speech)
