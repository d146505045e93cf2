"""Layer-wise learning-rate decay (LLRD) for fine-tuning a pre-trained MAX encoder.

Why: the lower blocks of a masked-autoencoder encoder hold general features of spectra that the
fine-tune should move little; the head and top blocks are what the target needs. MAE (He et al.
2022, fine-tuning recipe after BEiT, Bao et al. 2022) therefore scales the learning rate of layer
``i`` by ``decay ** (L - i)``: the patch embedding and cls token are layer 0, block ``k`` is layer
``k + 1``, the final norm and the head are layer ``L = depth + 1`` (full rate). ``decay = 1`` is
plain fine-tuning (every parameter at the base rate). Pre-training never decays.
"""
from __future__ import annotations

import re
from typing import Any

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
_EMBED = ("patch_embed.", "cls_token", "pos_embed")


def layer_id(name: str, depth: int) -> int:
    """The layer a parameter belongs to (0 = embedding, ``depth + 1`` = final norm and head)."""
    found = _BLOCK.search(name)
    if found:
        return int(found.group(1)) + 1
    if any(part in name for part in _EMBED):
        return 0
    return depth + 1


def lr_scale(name: str, depth: int, decay: float) -> float:
    return float(decay) ** (depth + 1 - layer_id(name, depth))


def decayed_groups(named_params, depth: int, decay: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: one per (layer, weight decay or not), each with its ``lr_scale``.
    Matrices decay, biases, norm scales and tokens do not (MAE)."""
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in named_params:
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or name.endswith(("cls_token", "mask_token"))
        layer = layer_id(name, depth)
        group = groups.setdefault((layer, skip), {"params": [], "weight_decay": 0.0 if skip else weight_decay,
                                                  "lr_scale": float(decay) ** (depth + 1 - layer)})
        group["params"].append(p)
    return [groups[k] for k in sorted(groups)]
