"""Phase presence from one diffraction pattern, inspired by source document 001.

001 puts one presence head per phase on a shared 1-D CNN trunk (multi-task learning), beats one
binary CNN per phase with it, and improves it further with a cross-entropy weighted per task.
It publishes no layer sizes: every size here is ours (see ``MultiTaskConfig``).

- ``PhaseTrunk``: Conv-BN-ReLU-MaxPool2 blocks, then max pooling to a fixed number of positions
  (1 = global pooling) so the features still say roughly where along 2-theta a peak sits;
- ``MultiTaskPhase``: one trunk, K heads -> ``(N, K)`` presence logits;
- ``BinaryPhaseCNNs``: the baseline, K independent trunk + head networks -> ``(N, K)``;
- ``tailored_bce``: sum over phases of w_k * BCE with positive weight n_neg/n_pos.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import MultiTaskConfig


class PhaseTrunk(nn.Module):
    """``(N, P)`` -> ``(N, channels[-1] * pooled_length)`` features."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64), kernel: int = 7,
                 pooled_length: int = 16):
        super().__init__()
        blocks, c_in = [], 1
        for c_out in channels:
            blocks += [nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
                       nn.BatchNorm1d(c_out), nn.ReLU(), nn.MaxPool1d(2, ceil_mode=True)]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveMaxPool1d(pooled_length)
        self.features = c_in * pooled_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(x.unsqueeze(1))).flatten(1)


def presence_head(features: int, hidden: int) -> nn.Sequential:
    """A small MLP from trunk features to one presence logit."""
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class MultiTaskPhase(nn.Module):
    """A shared trunk and one presence head per phase: ``(N, P)`` -> ``(N, K)`` logits."""

    def __init__(self, phases: int, channels: tuple[int, ...] = (16, 32, 64), kernel: int = 7,
                 pooled_length: int = 16, head_hidden: int = 32):
        super().__init__()
        self.trunk = PhaseTrunk(channels, kernel, pooled_length)
        self.heads = nn.ModuleList(presence_head(self.trunk.features, head_hidden)
                                   for _ in range(phases))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return torch.cat([head(h) for head in self.heads], dim=1)


class BinaryPhaseCNNs(nn.Module):
    """001's baseline: one independent CNN (same trunk shape, one head) per phase."""

    def __init__(self, phases: int, channels: tuple[int, ...] = (16, 32, 64), kernel: int = 7,
                 pooled_length: int = 16, head_hidden: int = 32):
        super().__init__()
        self.trunks = nn.ModuleList(PhaseTrunk(channels, kernel, pooled_length)
                                    for _ in range(phases))
        self.heads = nn.ModuleList(presence_head(t.features, head_hidden) for t in self.trunks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(trunk(x)) for trunk, head in zip(self.trunks, self.heads)], dim=1)


def build_phase_model(config: MultiTaskConfig, phases: int) -> nn.Module:
    kind = MultiTaskPhase if config.mode == "multitask" else BinaryPhaseCNNs
    return kind(phases, config.channels, config.kernel, config.pooled_length, config.head_hidden)


def positive_weights(y: torch.Tensor) -> torch.Tensor:
    """n_neg / n_pos per phase from a multi-hot ``(N, K)``; 1 where a phase is never (or
    always) present, since there is then nothing to balance."""
    pos = y.sum(0)
    neg = y.shape[0] - pos
    return torch.where((pos > 0) & (neg > 0), neg / pos.clamp(min=1), torch.ones_like(pos))


def tailored_bce(logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor | None,
                 task_weights: torch.Tensor) -> torch.Tensor:
    """Sum over phases k of ``task_weights[k]`` * mean BCE of phase k (positives weighted by
    ``pos_weight[k]``, none when None)."""
    per_task = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight,
                                                  reduction="none").mean(0)
    return (per_task * task_weights).sum()
