"""An independent model in the MAE layout of the published MAX code, for import tests.

Written for the tests from the published description of the architecture (MAE with timm blocks,
a Conv1d patch embedding, fixed 1-D sin-cos positions stored as parameters, a regressor head
``fc = Sequential(Linear(width, 1), Sigmoid())`` times 100), with its own attention (explicit
softmax, not torch's fused kernel) and its own names, so that it shares no code with
``xrfhub_max.model``: equal outputs mean the import maps every tensor to the right place.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def sincos_table(n: int, dim: int) -> torch.Tensor:
    """MAE's get_1d_sincos_pos_embed with a zero cls row: (1, n + 1, dim)."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.einsum("m,d->md", np.arange(n, dtype=np.float64), omega)
    table = np.concatenate([np.zeros((1, dim)), np.concatenate([np.sin(out), np.cos(out)], axis=1)])
    return torch.from_numpy(table).float()[None]


class RefAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        return self.proj((attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c))


class RefMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class RefBlock(nn.Module):
    """timm's Block: pre-norm attention and MLP with residuals (LayerNorm eps 1e-6)."""

    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RefAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = RefMlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RefPatchEmbed(nn.Module):
    def __init__(self, size, patch, dim):
        super().__init__()
        self.num_patches = size // patch
        self.proj = nn.Conv1d(1, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x.unsqueeze(1)).transpose(1, 2)


class RefMAE(nn.Module):
    """MAE over spectra in the published layout; ``regressor=True`` gives the fine-tuned model."""

    def __init__(self, size=2048, patch=16, dim=32, depth=2, heads=4, dec_dim=16, dec_depth=1, dec_heads=2,
                 regressor=False):
        super().__init__()
        self.patch_embed = RefPatchEmbed(size, patch, dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(sincos_table(n, dim), requires_grad=False)
        self.blocks = nn.ModuleList([RefBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.regressor = regressor
        if regressor:
            self.fc = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())
        else:
            self.decoder_embed = nn.Linear(dim, dec_dim)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))
            self.decoder_pos_embed = nn.Parameter(sincos_table(n, dec_dim), requires_grad=False)
            self.decoder_blocks = nn.ModuleList([RefBlock(dec_dim, dec_heads) for _ in range(dec_depth)])
            self.decoder_norm = nn.LayerNorm(dec_dim, eps=1e-6)
            self.decoder_pred = nn.Linear(dec_dim, patch)

    def randomise(self, seed: int) -> "RefMAE":
        """Every trainable tensor drawn at random (norms and biases too), so a misplaced tensor shows."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.requires_grad:
                    p.copy_(torch.randn(p.shape, generator=g) * (0.2 if p.ndim > 1 else 0.1)
                            + (1.0 if name.endswith(("norm1.weight", "norm2.weight", "norm.weight")) else 0.0))
        return self

    def encode(self, x, keep=None):
        x = self.patch_embed(x) + self.pos_embed[:, 1:, :]
        if keep is not None:
            x = torch.gather(x, 1, keep.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, x):
        """Regressor: wt% (N,), 100 * sigmoid(fc(cls))."""
        return (self.fc(self.encode(x)[:, 0]) * 100).squeeze(-1)

    def reconstruct(self, x, shuffle):
        """Decoder output (N, L, patch) for the masking given as a shuffle (first kept)."""
        n_keep = shuffle.shape[1] // 2
        restore = torch.argsort(shuffle, dim=1)
        latent = self.decoder_embed(self.encode(x, shuffle[:, :n_keep]))
        tokens = self.mask_token.repeat(latent.shape[0], restore.shape[1] + 1 - latent.shape[1], 1)
        x_ = torch.cat([latent[:, 1:, :], tokens], dim=1)
        x_ = torch.gather(x_, 1, restore.unsqueeze(-1).repeat(1, 1, latent.shape[2]))
        x = torch.cat([latent[:, :1, :], x_], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]
