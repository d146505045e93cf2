"""Input scalings of MAX on the device: the core transform, applied to torch tensors too.

The scalings themselves (instance z-score, channel z-score and log: source document 000, eqs. 1-5;
clr, the centred log-ratio), their fitting and their serialised form are
:class:`xrfhub.ml.transforms.SpectrumTransform`, which the loaders use as well; a run folder's
``transform.json`` is its ``to_dict``. The MAX engine scales batches already on the GPU, so
``Transform`` adds only the same operations in torch, with the core object's ``kind``, ``eps``
and fitted statistics (the tests check that both give the same values). Numpy arrays go to the core implementation unchanged.

Two departures from the reference code, both deliberate and the core's: instance normalisation
divides by ``std + eps``, so a flat spectrum (std 0) becomes zeros instead of NaN; a channel
whose training-set std is 0 is divided by 1, as the paper says.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from xrfhub.ml.transforms import SpectrumTransform


class Transform(SpectrumTransform):
    """:class:`~xrfhub.ml.transforms.SpectrumTransform` that also scales torch tensors, on their device."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # device -> (the numpy mean the tensors were made from, mean, std): refitting replaces
        # ``self.mean``, and the identity check then copies the new statistics over
        self._on_device: dict[Any, tuple[np.ndarray, Any, Any]] = {}

    def __call__(self, x, out=None):
        """Scale ``x`` (torch tensor or numpy array, ``(..., channels)``) to float32."""
        if isinstance(x, np.ndarray):
            return super().__call__(x, out=out)
        return self._torch(x.float())

    def _torch(self, x):
        # the core's operations, in the same order, for tensors that stay on their device
        import torch

        if self.kind == "instance":
            std, mu = torch.std_mean(x, dim=-1, correction=0, keepdim=True)
            return (x - mu) / (std + self.eps)
        if self.kind == "log":
            return x.clamp_min(0.0).log1p()
        if self.kind == "clr":
            x = x.clamp_min(0.0).log1p()
            return x - x.mean(dim=-1, keepdim=True)
        if self.kind == "none":
            return x
        mean, std = self.stats(x.shape[-1])
        cached = self._on_device.get(x.device)
        if cached is None or cached[0] is not mean:
            cached = (mean, torch.from_numpy(mean).to(x.device), torch.from_numpy(std).to(x.device))
            self._on_device[x.device] = cached
        return (x - cached[1]) / cached[2]
