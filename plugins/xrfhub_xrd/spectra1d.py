"""003's 1-D comparison classifiers: a whole pattern ``(N, P)`` in, class logits ``(N, out)`` out.

Every model starts with LayerNorm(P) over the pattern, as published. ``out`` is 1 for two classes
(sigmoid + BCE, as published) and the class count otherwise (softmax + cross-entropy, ours).
Layer sizes are DESIGN section 7's; ``build_spectra1d`` picks the architecture by name.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xrfhub.errors import ConfigError

from .config import Spectra1DConfig


class FCNN(nn.Module):
    """LayerNorm(P) -> [Linear -> LayerNorm -> ReLU] per hidden size -> Linear(out)."""

    def __init__(self, points: int, out: int, hidden: tuple[int, ...] = (256, 512, 64)):
        super().__init__()
        layers: list[nn.Module] = [nn.LayerNorm(points)]
        width = points
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LayerNorm(size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int, pool: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, kernel, stride), nn.BatchNorm1d(c_out),
                         nn.ReLU(), nn.MaxPool1d(pool))


class CNN(nn.Module):
    """Conv(1->64,k5,s2)/Pool2, Conv(64->64,k3,s2)/Pool3, Conv(64->4,k3)/Pool2 (each with BN and
    ReLU), flatten, LayerNorm, Linear(out)."""

    PLAN = ((5, 2, 2), (3, 2, 3), (3, 1, 2))  # (kernel, stride, pool) per block

    def __init__(self, points: int, out: int, channels: tuple[int, int, int] = (64, 64, 4)):
        super().__init__()
        self.norm_in = nn.LayerNorm(points)
        blocks, c_in, length = [], 1, points
        for c_out, (kernel, stride, pool) in zip(channels, self.PLAN):
            length = ((length - kernel) // stride + 1) // pool
            blocks.append(_conv_block(c_in, c_out, kernel, stride, pool))
            c_in = c_out
        if length < 1:
            raise ConfigError(f"the CNN needs longer patterns than {points} points (about 60 "
                              "at least)")
        self.features = nn.Sequential(*blocks)
        self.norm_out = nn.LayerNorm(c_in * length)
        self.head = nn.Linear(c_in * length, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self.norm_in(x).unsqueeze(1))
        return self.head(self.norm_out(h.flatten(1)))


def sincos(n: int, dim: int) -> torch.Tensor:
    """``(n, dim)`` transformer positions: sines on even features, cosines on odd ones."""
    omega = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = torch.arange(n, dtype=torch.float64)[:, None] * omega[None]
    table = torch.zeros(n, dim, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = torch.sin(angles), torch.cos(angles)
    return table.float()


class Transformer(nn.Module):
    """Linear P -> width (a whole pattern is one token) + position, encoder layers, Linear(out).

    Post-norm encoder layers (width 256, 8 heads, feed-forward 256, ReLU, no dropout).
    """

    def __init__(self, points: int, out: int, width: int = 256, heads: int = 8,
                 ff: int = 256, layers: int = 2):
        super().__init__()
        self.norm_in = nn.LayerNorm(points)
        self.embed = nn.Linear(points, width)
        self.register_buffer("position", sincos(1, width), persistent=False)
        layer = nn.TransformerEncoderLayer(width, heads, ff, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = (self.embed(self.norm_in(x)) + self.position).unsqueeze(1)
        return self.head(self.encoder(tokens)[:, 0])


class LSTM(nn.Module):
    """Linear P -> width, LayerNorm, ReLU, an LSTM over the one-token sequence, LayerNorm,
    Linear(out)."""

    def __init__(self, points: int, out: int, width: int = 512, layers: int = 2):
        super().__init__()
        self.norm_in = nn.LayerNorm(points)
        self.embed = nn.Sequential(nn.Linear(points, width), nn.LayerNorm(width), nn.ReLU())
        self.lstm = nn.LSTM(width, width, num_layers=layers, batch_first=True)
        self.norm_out = nn.LayerNorm(width)
        self.head = nn.Linear(width, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.embed(self.norm_in(x)).unsqueeze(1))
        return self.head(self.norm_out(h[:, -1]))


class ResidualBlock(nn.Module):
    """Two k3 Conv-BN layers with a skip connection, ReLU after the sum."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(h)))


class ResNet(nn.Module):
    """Linear P -> width as a 1-channel sequence, k7 Conv-BN-ReLU stem, k3 residual blocks,
    global average pooling, Linear(out). Channel and block counts are ours."""

    def __init__(self, points: int, out: int, width: int = 512, channels: int = 32,
                 blocks: int = 3):
        super().__init__()
        self.norm_in = nn.LayerNorm(points)
        self.embed = nn.Linear(points, width)
        self.stem = nn.Sequential(nn.Conv1d(1, channels, 7, padding=3, bias=False),
                                  nn.BatchNorm1d(channels), nn.ReLU())
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.head = nn.Linear(channels, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(self.embed(self.norm_in(x)).unsqueeze(1))
        return self.head(self.blocks(h).mean(dim=-1))


def build_spectra1d(config: Spectra1DConfig, points: int, classes: int) -> nn.Module:
    """The ``config.arch`` model for patterns of ``points`` values and ``classes`` classes."""
    out = 1 if classes == 2 else classes
    c = config
    if c.arch == "fcnn":
        return FCNN(points, out, c.fcnn_hidden)
    if c.arch == "cnn":
        return CNN(points, out, c.cnn_channels)
    if c.arch == "transformer":
        return Transformer(points, out, c.transformer_width, c.transformer_heads,
                           c.transformer_ff, c.transformer_layers)
    if c.arch == "lstm":
        return LSTM(points, out, c.lstm_width, c.lstm_layers)
    if c.arch == "resnet":
        return ResNet(points, out, c.resnet_width, c.resnet_channels, c.resnet_blocks)
    raise ConfigError(f"unknown spectra1d arch {c.arch!r}")
