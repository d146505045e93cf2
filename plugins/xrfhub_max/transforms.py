"""Input scalings of MAX: instance z-score, channel z-score, log (source document 000, eqs. 1-5).

XRF counts run from 0 to tens of thousands and differ between channels and between spectra
(tube ageing changes the whole spectrum's intensity), so the model sees a scaled spectrum. The
autoencoder's loss is computed in this scaled space. ``Transform`` applies one scaling to torch
tensors or numpy arrays alike and serialises to a JSON-able dict, so a run directory records exactly
what the model was trained on.

Two departures from the reference code, both deliberate: instance normalisation divides by
``std + eps``, so a flat spectrum (std 0) becomes zeros instead of NaN; a channel whose training-set
std is 0 is divided by 1, as the paper says.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from xrfhub.errors import ConfigError

KINDS = ("instance", "channel", "log")


class Transform:
    """One spectrum scaling, applied along the last (channel) axis.

    Parameters
    ----------
    kind : ``"instance"`` (per-spectrum z-score), ``"channel"`` (per-channel z-score with
        training-set statistics, see ``fit``) or ``"log"`` (``log1p`` of the counts).
    eps : added to the per-spectrum std of ``instance`` so flat spectra stay finite.
    """

    def __init__(self, kind: str = "instance", eps: float = 1e-6,
                 mean: Iterable[float] | None = None, std: Iterable[float] | None = None):
        if kind not in KINDS:
            raise ConfigError(f"transform must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.eps = float(eps)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.std = None if std is None else _safe_std(np.asarray(std, dtype=np.float32))
        self._on_device: dict[Any, tuple[Any, Any]] = {}

    def fit(self, stats: Mapping[str, Any] | Any) -> "Transform":
        """Take training-set channel statistics: a mapping or object with ``mean`` and ``std``.

        Only ``channel`` needs them; the other kinds accept and ignore the call, so callers can
        fit whatever transform the configuration names.
        """
        if self.kind != "channel":
            return self
        get = stats.get if isinstance(stats, Mapping) else lambda k: getattr(stats, k, None)
        mean, std = get("mean"), get("std")
        if mean is None or std is None:
            raise ConfigError("channel transform statistics need both 'mean' and 'std'")
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = _safe_std(np.asarray(std, dtype=np.float32).reshape(-1))
        if self.mean.shape != self.std.shape:
            raise ConfigError(f"channel mean and std differ in length "
                              f"({self.mean.size} vs {self.std.size})")
        self._on_device.clear()
        return self

    @property
    def needs_fit(self) -> bool:
        return self.kind == "channel" and self.mean is None

    def __call__(self, x):
        """Scale ``x`` (torch tensor or numpy array, ``(..., channels)``) to float32."""
        if isinstance(x, np.ndarray):
            return self._numpy(x.astype(np.float32, copy=False))
        return self._torch(x.float())

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "instance":
            mu = x.mean(-1, keepdims=True)
            return (x - mu) / (x.std(-1, keepdims=True) + self.eps)
        if self.kind == "log":
            return np.log1p(np.maximum(x, 0.0))  # counts are >= 0; guards log1p(<-1) = NaN
        mean, std = self._stats(x.shape[-1])
        return (x - mean) / std

    def _torch(self, x):
        if self.kind == "instance":
            std, mu = _torch_std_mean(x)
            return (x - mu) / (std + self.eps)
        if self.kind == "log":
            return x.clamp_min(0.0).log1p()
        key = x.device
        if key not in self._on_device:
            import torch

            mean, std = self._stats(x.shape[-1])
            self._on_device[key] = (torch.from_numpy(mean).to(key), torch.from_numpy(std).to(key))
        mean, std = self._on_device[key]
        return (x - mean) / std

    def _stats(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None:
            raise ConfigError("the channel transform needs training-set statistics: call "
                              "Transform.fit({'mean': ..., 'std': ...}) first")
        if self.mean.size != channels:
            raise ConfigError(f"channel statistics cover {self.mean.size} channels, the "
                              f"spectra have {channels}")
        return self.mean, self.std

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "eps": self.eps,
                "mean": None if self.mean is None else self.mean.tolist(),
                "std": None if self.std is None else self.std.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Transform":
        return cls(data["kind"], eps=data.get("eps", 1e-6), mean=data.get("mean"),
                   std=data.get("std"))

    def __repr__(self) -> str:
        fitted = "" if self.kind != "channel" else f", fitted={self.mean is not None}"
        return f"Transform({self.kind!r}{fitted})"


def channel_stats(batches: Iterable[Any]) -> dict[str, np.ndarray]:
    """Per-channel mean and population std over batches of raw spectra (float64 sums).

    What ``Transform("channel").fit`` expects; one pass, memory independent of the data size.
    """
    n, total, total_sq = 0, None, None
    for batch in batches:
        x = np.asarray(batch.numpy() if hasattr(batch, "numpy") else batch, dtype=np.float64)
        x = x.reshape(-1, x.shape[-1])
        # shift by the first batch's mean so the sums of squares do not lose precision
        if total is None:
            shift = x.mean(0)
            total, total_sq = np.zeros_like(shift), np.zeros_like(shift)
        d = x - shift
        n += x.shape[0]
        total += d.sum(0)
        total_sq += (d * d).sum(0)
    if not n:
        raise ConfigError("cannot compute channel statistics from no spectra")
    mean_d = total / n
    var = np.maximum(total_sq / n - mean_d ** 2, 0.0)
    return {"mean": (shift + mean_d).astype(np.float32), "std": np.sqrt(var).astype(np.float32)}


def _safe_std(std: np.ndarray) -> np.ndarray:
    # a channel that is constant over the training set (e.g. always 0) is divided by 1
    return np.where(std > 0, std, 1.0).astype(np.float32)


def _torch_std_mean(x):
    import torch

    return torch.std_mean(x, dim=-1, correction=0, keepdim=True)
