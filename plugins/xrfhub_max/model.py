"""MAX: a masked autoencoder over 1-D XRF spectra, and the regressor fine-tuned from it.

The architecture of source document 000 (DESIGN section 6), built the way MAE and timm build
vision transformers, with patches of channels instead of squares of pixels:

- ``PatchEmbed1D`` cuts a spectrum into ``channels // patch`` patches and projects each one
  (a Conv1d whose kernel equals its stride);
- ``MaxEncoder`` adds frozen sin-cos positions, keeps the patches the masking chose, prepends a
  trainable cls token and runs pre-norm transformer ``Block``s;
- ``MaxAutoencoder`` decodes the kept tokens plus a shared mask token back to ``patch`` values
  per patch; the loss is the MSE on the hidden patches only;
- ``MaxRegressor`` runs the encoder on the whole spectrum and maps the cls token to one number.

The models see spectra already scaled by a ``Transform``; their loss lives in that space.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import MaxConfig


def sincos_positions(n: int, dim: int) -> torch.Tensor:
    """``(n + 1, dim)`` 1-D sin-cos position embeddings; row 0 (the cls position) is zero.

    Frequencies 1 / 10000^(2i/dim) as in the transformer paper; first half sines, second cosines.
    """
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = torch.arange(n, dtype=torch.float64)[:, None] * omega[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), table]).float()


class PatchEmbed1D(nn.Module):
    """``(B, channels)`` spectrum -> ``(B, channels // patch, width)`` patch tokens."""

    def __init__(self, patch: int, width: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv1d(1, width, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.unsqueeze(1)).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention; the product runs in torch's fused SDPA kernel."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def random_masking(batch: int, n: int, ratio: float, device: torch.device | str,
                   generator: torch.Generator | None = None, noise: torch.Tensor | None = None):
    """Choose, per spectrum, which patches the encoder sees (MAE's shuffle-and-keep).

    Returns ``keep_ids (B, n_keep)``, ``restore_ids (B, n)`` (the inverse permutation) and
    ``mask (B, n)`` with 1 on hidden patches. At least one patch is kept and one hidden.
    ``noise (B, n)`` given (uniform draws) decides instead of a new draw: a DDP rank passes its
    rows of the draw for the whole global batch, so that the ranks mask as one process would.
    """
    n_keep = min(max(int(n * (1 - ratio)), 1), n - 1)
    if noise is None:
        noise = torch.rand(batch, n, device=device, generator=generator)
    shuffle = noise.argsort(dim=1)
    restore = shuffle.argsort(dim=1)
    mask = torch.ones(batch, n, device=device)
    mask[:, :n_keep] = 0
    return shuffle[:, :n_keep], restore, torch.gather(mask, 1, restore)


class MaxEncoder(nn.Module):
    """Patch embedding + cls token + frozen positions + ``depth`` blocks + final LayerNorm."""

    def __init__(self, channels: int, patch: int, width: int, depth: int, heads: int,
                 mlp_ratio: float = 4.0):
        super().__init__()
        self.num_patches = channels // patch
        self.patch_embed = PatchEmbed1D(patch, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        # fixed, so recomputed rather than stored: checkpoints do not depend on the channel count
        self.register_buffer("pos_embed", sincos_positions(self.num_patches, width)[None],
                             persistent=False)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, x: torch.Tensor, keep_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, channels)`` -> ``(B, 1 + n_kept, width)``; token 0 is the cls token."""
        tokens = self.patch_embed(x) + self.pos_embed[:, 1:]
        if keep_ids is not None:
            index = keep_ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
            tokens = torch.gather(tokens, 1, index)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


class MaxDecoder(nn.Module):
    """Kept tokens + mask tokens, back in patch order, -> ``patch`` values per patch."""

    def __init__(self, num_patches: int, patch: int, encoder_width: int, width: int, depth: int,
                 heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.embed = nn.Linear(encoder_width, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.register_buffer("pos_embed", sincos_positions(num_patches, width)[None],
                             persistent=False)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, patch)

    def forward(self, latent: torch.Tensor, restore_ids: torch.Tensor) -> torch.Tensor:
        """``(B, 1 + n_kept, encoder_width)`` -> ``(B, num_patches, patch)``."""
        tokens = self.embed(latent)
        b, n = restore_ids.shape
        masked = self.mask_token.expand(b, n + 1 - tokens.shape[1], -1)
        patches = torch.cat([tokens[:, 1:], masked], dim=1)  # kept first, as shuffled
        index = restore_ids.unsqueeze(-1).expand(-1, -1, patches.shape[-1])
        patches = torch.gather(patches, 1, index)  # back to spectral order
        tokens = torch.cat([tokens[:, :1], patches], dim=1) + self.pos_embed
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens))[:, 1:]


class MaxAutoencoder(nn.Module):
    """The pre-training model: reconstruct hidden patches of a scaled spectrum."""

    def __init__(self, config: MaxConfig):
        super().__init__()
        self.config = config
        self.patch = config.patch
        self.mask_ratio = config.mask_ratio
        self.encoder = MaxEncoder(config.channels, config.patch, config.width, config.depth,
                                  config.heads, config.mlp_ratio)
        self.decoder = MaxDecoder(config.num_patches, config.patch, config.width,
                                  config.decoder_width, config.decoder_depth,
                                  config.decoder_heads, config.mlp_ratio)
        init_weights(self)

    def forward(self, x: torch.Tensor, mask_ratio: float | None = None,
                generator: torch.Generator | int | None = None, noise: torch.Tensor | None = None):
        """Mask, encode, decode. Returns ``(loss, pred (B, n, patch), mask (B, n))``.

        ``mask`` is 1 where a patch was hidden. ``generator`` (a torch.Generator on ``x``'s
        device, or an int seed) makes the masking reproducible; None draws from torch's global RNG.
        ``noise`` (B, n patches) gives the masking's draws instead (see :func:`random_masking`).
        """
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        if isinstance(generator, int):
            generator = torch.Generator(device=x.device).manual_seed(generator)
        n = self.encoder.num_patches
        keep_ids, restore_ids, mask = random_masking(x.shape[0], n, ratio, x.device, generator, noise)
        pred = self.decoder(self.encoder(x, keep_ids), restore_ids)
        return self.loss(x, pred, mask), pred, mask

    def loss(self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the hidden patches only (BERT/MAE), in float32."""
        target = x.reshape(x.shape[0], -1, self.patch)
        per_patch = (pred.float() - target.float()).pow(2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()


class MaxRegressor(nn.Module):
    """The fine-tuning model: the unmasked encoder, cls token (or mean patch token, ``pool``) -> Linear(width, 1)."""

    def __init__(self, config: MaxConfig):
        super().__init__()
        self.config = config
        self.encoder = MaxEncoder(config.channels, config.patch, config.width, config.depth,
                                  config.heads, config.mlp_ratio)
        self.head = nn.Linear(config.width, 1)
        init_weights(self)

    @classmethod
    def from_autoencoder(cls, autoencoder: MaxAutoencoder) -> "MaxRegressor":
        """A regressor whose encoder starts from a (pre-trained) autoencoder's encoder."""
        model = cls(autoencoder.config)
        model.encoder.load_state_dict(autoencoder.encoder.state_dict())
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, channels)`` -> ``(B,)`` predictions: in the target's z-scored space, or in wt%
        with the published head (``config.head == "sigmoid100"``)."""
        tokens = self.encoder(x)
        # the cls token, or the mean of the patch tokens (no new weights: checkpoints load either way)
        pooled = tokens[:, 1:].mean(dim=1) if self.config.pool == "mean" else tokens[:, 0]
        out = self.head(pooled).squeeze(-1)
        if self.config.head == "sigmoid100":
            out = 100.0 * torch.sigmoid(out)
        return out


def init_weights(model: nn.Module) -> None:
    """MAE's initialisation: xavier-uniform linears and patch projection, zero biases,
    unit LayerNorms, N(0, 0.02) cls and mask tokens."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, PatchEmbed1D):
            # treat the conv kernel as a Linear(patch, width), as MAE does for its patch embed
            w = module.proj.weight
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
            nn.init.zeros_(module.proj.bias)
    for name, param in model.named_parameters():
        if name.endswith(("cls_token", "mask_token")):
            nn.init.normal_(param, std=0.02)


def count_parameters(model: nn.Module, trainable: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def build(config: MaxConfig, kind: str = "autoencoder") -> nn.Module:
    """``MaxAutoencoder`` or ``MaxRegressor`` for ``config``."""
    if kind == "autoencoder":
        return MaxAutoencoder(config)
    if kind == "regressor":
        return MaxRegressor(config)
    from xrfhub.errors import ConfigError

    raise ConfigError(f"unknown MAX model kind {kind!r}; choose 'autoencoder' or 'regressor'")
