"""The PaNOSC binned classifiers of source document 003 (DESIGN section 7).

A pattern is a cloud of (2-theta, intensity) points; the 2-theta range is cut into ``bins`` equal
bins and each bin gets its own small MLP over the points that fall in it.

- ``BinSubnets`` holds the B MLPs as stacked weights, so all bins run in one batched product;
- ``BinnedVote`` (Model A) classifies every point, weights each bin's votes by the believability
  w_b = max(0, 1.4337 acc_b^2 - 0.4337) of its training accuracy, and takes the argmax;
- ``BinnedLearned`` (Model B) feeds the k-th point of every bin, as one row, through subnets
  with BatchNorm + sigmoid and a learned Linear(2B -> 1); a pattern's label is the majority of
  its rows.

Inputs are scaled intensities ``(N, P)``; the bin layout comes from the training grid and is
rebuilt from it, not stored. 2-theta enters each subnet as its position inside its own bin,
scaled to [0, 1], so every subnet sees a well-conditioned input whatever the bin.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xrfhub.errors import ConfigError

BELIEF_SCALE, BELIEF_OFFSET = 1.4337, 0.4337


def believability(accuracy, classes: int = 2):
    """003's bin weight max(0, 1.4337 acc^2 - 0.4337): 0 up to acc ~0.55, 1 at acc = 1.

    The published model has two classes, where chance is 0.5. For ``classes`` > 2 (ours) the
    accuracy is first mapped so that chance (1/classes) lands on 0.5 and 1 stays 1; otherwise
    every bin of a three-class problem would sit near or below the 0.55 cut-off.
    """
    if classes > 2:
        chance = 1.0 / classes
        accuracy = 0.5 + 0.5 * (accuracy - chance) / (1.0 - chance)
    if isinstance(accuracy, torch.Tensor):
        return (BELIEF_SCALE * accuracy.clamp(min=0.0) ** 2 - BELIEF_OFFSET).clamp(min=0.0)
    acc = np.clip(np.asarray(accuracy, dtype=np.float64), 0.0, None)
    return np.maximum(0.0, BELIEF_SCALE * acc ** 2 - BELIEF_OFFSET)


def bin_layout(two_theta: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width 2-theta bins as a padded table.

    Returns ``index (M, B)`` (the point indices of each bin, column b = bin b, padded by
    repeating the bin's last point), ``valid (M, B)`` (False on padding) and ``position (M, B)``
    (each point's place inside its bin, in [0, 1]); M is the largest bin's point count.
    """
    grid = np.asarray(two_theta, dtype=np.float64)
    lo, hi = grid[0], grid[-1]
    width = (hi - lo) / bins
    which = np.minimum(((grid - lo) / width).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    if counts.min() == 0:
        raise ConfigError(f"{bins} bins over {len(grid)} points leave a bin empty; use fewer "
                          "bins")
    m = int(counts.max())
    index = np.zeros((m, bins), dtype=np.int64)
    valid = np.zeros((m, bins), dtype=bool)
    for b in range(bins):
        points = np.flatnonzero(which == b)
        index[:, b] = np.concatenate([points, np.full(m - len(points), points[-1])])
        valid[: len(points), b] = True
    start = lo + width * np.arange(bins)
    position = (grid[index] - start[None, :]) / width
    return index, valid, position.astype(np.float32)


class BinSubnets(nn.Module):
    """B independent MLPs 2 -> hidden -> outputs over bin-major inputs ``(B, R, 2)``.

    Bin-major so that both layers are one batched matrix product each (``baddbmm``) with no
    copy of the wide hidden layer. With ``batchnorm`` (Model B) the hidden layer is normalised
    per bin and unit over the R rows, and the outputs go through a sigmoid.
    """

    def __init__(self, bins: int, hidden: int, outputs: int, batchnorm: bool = False):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(bins, 2, hidden))
        self.b1 = nn.Parameter(torch.empty(bins, hidden))
        self.w2 = nn.Parameter(torch.empty(bins, hidden, outputs))
        self.b2 = nn.Parameter(torch.empty(bins, outputs))
        self.norm = nn.BatchNorm1d(bins * hidden) if batchnorm else None
        # the uniform(+-1/sqrt(fan_in)) range torch uses for a Linear, per bin
        for p, fan_in in ((self.w1, 2), (self.b1, 2), (self.w2, hidden), (self.b2, hidden)):
            nn.init.uniform_(p, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.baddbmm(self.b1.unsqueeze(1), x, self.w1)  # (B, R, hidden)
        if self.norm is not None:
            b, r, hidden = h.shape
            h = self.norm(h.transpose(0, 1).reshape(r, b * hidden))
            h = h.reshape(r, b, hidden).transpose(0, 1)
        out = torch.baddbmm(self.b2.unsqueeze(1), F.relu(h), self.w2)
        return torch.sigmoid(out) if self.norm is not None else out


class _Binned(nn.Module):
    """The bin layout of a grid as bin-major buffers ``(B, M)``, and the points per bin."""

    def __init__(self, two_theta: np.ndarray, bins: int):
        super().__init__()
        index, valid, position = bin_layout(two_theta, bins)
        self.bins = bins
        self.register_buffer("index", torch.from_numpy(index.T.copy()), persistent=False)
        self.register_buffer("valid", torch.from_numpy(valid.T.copy()), persistent=False)
        self.register_buffer("position", torch.from_numpy(position.T.copy()), persistent=False)

    def points(self, x: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        """``(N, P)`` -> ``(B, N * m, 2)`` (position in bin, intensity) of the first ``m`` =
        ``rows`` points of each bin (all M when None), pattern by pattern."""
        index, position = self.index[:, :rows], self.position[:, :rows]
        intensity = x[:, index].transpose(0, 1)  # (B, N, m)
        pairs = torch.stack([position[:, None, :].expand_as(intensity), intensity], dim=-1)
        return pairs.reshape(self.bins, -1, 2)


class BinnedVote(_Binned):
    """003 Model A: per-bin point classifiers and believability-weighted votes.

    ``forward`` gives point logits ``(B, N, M, classes)``; ``vote`` the weighted vote shares
    ``(N, classes)``. ``bin_accuracy`` and ``weights`` are buffers set after training by
    ``set_weights`` (saved with the model). ``vote="hard"`` counts each point's argmax class
    (our reading of 003); ``"soft"`` adds its class probabilities instead, which stops the
    featureless background points of a bin from piling their votes onto one class (see
    ``BinnedVoteConfig``).
    """

    def __init__(self, two_theta: np.ndarray, classes: int, bins: int = 15, hidden: int = 150,
                 vote: str = "hard"):
        super().__init__(two_theta, bins)
        self.classes = classes
        self.vote_kind = vote
        self.subnets = BinSubnets(bins, hidden, classes)
        self.register_buffer("bin_accuracy", torch.zeros(bins))
        self.register_buffer("weights", torch.ones(bins))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.subnets(self.points(x)).view(self.bins, x.shape[0], -1, self.classes)

    def point_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Summed cross-entropy over every real (not padding) point, and the point count."""
        logits = self(x)
        target = y[None, :, None].expand(logits.shape[:-1])
        loss = F.cross_entropy(logits.reshape(-1, self.classes), target.reshape(-1),
                               reduction="none").view(logits.shape[:-1])
        return (loss * self.valid[:, None, :]).sum(), int(self.valid.sum()) * x.shape[0]

    @torch.no_grad()
    def point_hits(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per bin: points of ``x`` classified as their pattern's label, and points in all."""
        hits = (self(x).argmax(-1) == y[None, :, None]) & self.valid[:, None, :]
        return hits.sum(dim=(1, 2)), self.valid.sum(1) * x.shape[0]

    @torch.no_grad()
    def set_weights(self, accuracy: torch.Tensor) -> None:
        """Store each bin's training accuracy and its believability weight.

        When no bin beats ~0.55 every weight would be 0 and no vote would count: fall back to
        equal weights (a plain majority), which the caller should report.
        """
        self.bin_accuracy.copy_(accuracy)
        weights = believability(accuracy, self.classes)
        self.weights.copy_(weights if weights.sum() > 0 else torch.ones_like(weights))

    @torch.no_grad()
    def vote(self, x: torch.Tensor) -> torch.Tensor:
        """Weighted share of point votes per class, ``(N, classes)``, rows summing to 1."""
        logits = self(x)
        if self.vote_kind == "soft":
            votes = torch.softmax(logits, dim=-1)
        else:
            votes = F.one_hot(logits.argmax(-1), self.classes).float()
        votes = votes * self.valid[:, None, :, None]
        scores = torch.einsum("bnmc,b->nc", votes, self.weights)
        return scores / scores.sum(dim=1, keepdim=True).clamp(min=1e-12)


class BinnedLearned(_Binned):
    """003 Model B (binary): rows of the k-th point of every bin -> P(class 1).

    Only the first M_min points of each bin are used (M_min = the smallest bin's count), so
    every row has one point per bin. ``forward`` gives row logits ``(N, M_min)`` (the sigmoid is
    folded into the loss); ``vote`` the share of rows voting class 1.
    """

    def __init__(self, two_theta: np.ndarray, bins: int = 15, hidden: int = 150):
        super().__init__(two_theta, bins)
        self.rows = int(self.valid.sum(1).min())
        self.subnets = BinSubnets(bins, hidden, 2, batchnorm=True)
        self.head = nn.Linear(2 * bins, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.subnets(self.points(x, self.rows))  # (B, N * rows, 2), in (0, 1)
        row = out.transpose(0, 1).reshape(-1, 2 * self.bins)  # bin 0's two outputs first
        return self.head(row).view(x.shape[0], self.rows)

    @torch.no_grad()
    def vote(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 2)``: share of rows voting class 0 and class 1."""
        share = (self(x) > 0).float().mean(dim=1)
        return torch.stack([1 - share, share], dim=1)
