"""Input scalings of spectrum models: instance z-score, channel z-score, log1p, clr, none (DESIGN section 6).

XRF counts run from 0 to tens of thousands and differ between channels and between spectra
(tube ageing changes the whole spectrum's intensity), so models see a scaled spectrum. One
implementation serves every model: the loaders' chunk readers apply it while a decoded chunk is
in cache, and the MAX plugin wraps it for torch tensors on the device
(``xrfhub_max.transforms.Transform``, same parameters, same serialised form). Numpy only:
``import xrfhub`` stays torch-free.

Two choices shared by all kinds of model: instance normalisation divides by ``std + eps``, so a
flat spectrum becomes zeros instead of NaN; a channel whose training-set std is 0 is divided by 1.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from ..errors import ConfigError

KINDS = ("instance", "channel", "log", "clr", "none")
EPS = 1e-6


class SpectrumTransform:
    """One spectrum scaling along the last (channel) axis, fitted on training rows only.

    ``instance``: per-spectrum z-score, ``(x - mean) / (std + eps)``;
    ``channel``: per-channel z-score with training-set statistics (:meth:`fit` or
    :meth:`fit_stats`; std 0 -> divide by 1); ``log``: ``log1p`` of the counts (negative
    values clipped to 0); ``clr``: ``log1p`` of the counts less its mean over the channels, the
    centred log-ratio of compositional data (Aitchison 1986); ``none``: counts as float32.

    Why ``clr``: what dilutes or scales a whole spectrum (pore water, the water film under the
    foil, tube ageing, live time) multiplies every line's counts by one factor, which the log
    turns into one offset and the centring removes; and a wt% property's log-ratio is linear in
    the intensities' log-ratios (Weltje & Tjallingii 2008), which is what ``clr`` inputs are.
    For MAX it lost to ``instance`` on fresh 10-core corpora (docs/results.md, tenth pass), so
    no preset uses it.
    """

    def __init__(self, kind: str = "instance", mean: Iterable[float] | None = None,
                 std: Iterable[float] | None = None, *, eps: float = EPS):
        if kind not in KINDS:
            raise ConfigError(f"unknown transform {kind!r}; choose one of {', '.join(KINDS)}")
        self.kind = kind
        self.eps = float(eps)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = None if std is None else _safe_std(np.asarray(std, dtype=np.float32).reshape(-1))
        if self.mean is not None and self.std is not None and self.mean.shape != self.std.shape:
            raise ConfigError(f"channel mean and std differ in length ({self.mean.size} vs {self.std.size})")

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, batches: Iterable[Any]) -> "SpectrumTransform":
        """Channel statistics from an iterable of raw batches (only ``channel`` needs them; the
        other kinds return at once without reading, so callers can fit whatever kind they hold)."""
        if self.kind != "channel":
            return self
        return self.fit_stats(channel_stats(batches))

    def fit_stats(self, stats: Mapping[str, Any] | Any) -> "SpectrumTransform":
        """Take channel statistics already computed: a mapping or object with ``mean`` and ``std``
        (what :func:`channel_stats` returns, or a published model's table)."""
        if self.kind != "channel":
            return self
        get = stats.get if isinstance(stats, Mapping) else (lambda k: getattr(stats, k, None))
        mean, std = get("mean"), get("std")
        if mean is None or std is None:
            raise ConfigError("channel transform statistics need both 'mean' and 'std'")
        fitted = type(self)("channel", mean, std, eps=self.eps)
        self.mean, self.std = fitted.mean, fitted.std
        return self

    @property
    def needs_fit(self) -> bool:
        return self.kind == "channel" and self.mean is None

    # -- applying -----------------------------------------------------------------------------
    def __call__(self, counts: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The transformed spectra (``(..., channels)``) as float32; written into ``out`` (float32,
        same shape) when given.

        With ``out`` the stream's readers transform each piece of a decoded chunk straight into
        their buffer: no float32 temporary and no extra copy. Same operations, same values.
        """
        if out is not None:
            np.copyto(out, counts, casting="unsafe")
            x = out
        else:
            x = np.asarray(counts, dtype=np.float32)
        # ``x is counts`` when float32 counts come without ``out``: never scale the caller's array
        own = x is not counts
        if self.kind == "instance":
            if not own:
                x = x.copy()
            x -= x.mean(axis=-1, keepdims=True)
            var = np.einsum("...j,...j->...", x, x) / x.shape[-1]  # one pass, no temporary array
            x /= (np.sqrt(var) + self.eps)[..., None]
            return x
        if self.kind == "channel":
            mean, std = self.stats(x.shape[-1])
            if not own:
                return (x - mean) / std
            return np.divide(np.subtract(x, mean, out=x), std, out=x)
        if self.kind == "log":
            # counts are >= 0; the clip only keeps log1p of a damaged value (< -1) from giving NaN
            x = np.maximum(x, 0.0, out=x if own else None)
            return np.log1p(x, out=x)
        if self.kind == "clr":
            x = np.maximum(x, 0.0, out=x if own else None)
            np.log1p(x, out=x)
            x -= x.mean(axis=-1, keepdims=True)
            return x
        return x

    def stats(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """The fitted channel mean and std, checked against the spectra's channel count."""
        if self.mean is None:
            raise ConfigError("the channel transform must be fitted on the training rows first: call "
                              "fit(batches) or fit_stats({'mean': ..., 'std': ...})")
        if self.mean.size != channels:
            raise ConfigError(f"channel statistics cover {self.mean.size} channels, the "
                              f"spectra have {channels}")
        return self.mean, self.std

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "eps": self.eps,
                "mean": None if self.mean is None else self.mean.tolist(),
                "std": None if self.std is None else self.std.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SpectrumTransform":
        # dicts written before eps was saved (the loaders' own transform) used the default
        return cls(data["kind"], data.get("mean"), data.get("std"), eps=data.get("eps", EPS))

    def __repr__(self) -> str:
        fitted = "" if self.kind != "channel" else f", fitted={self.mean is not None}"
        return f"{type(self).__name__}({self.kind!r}{fitted})"


def channel_stats(batches: Iterable[Any]) -> dict[str, np.ndarray]:
    """Per-channel mean and population std over batches of raw spectra (float64 sums).

    What :meth:`SpectrumTransform.fit_stats` takes; one pass, memory independent of the data size.
    Batches may be numpy arrays or anything with ``.numpy()`` (a CPU torch tensor).
    """
    n, total, total_sq, shift = 0, None, None, None
    for batch in batches:
        x = np.asarray(batch.numpy() if hasattr(batch, "numpy") else batch, dtype=np.float64)
        x = x.reshape(-1, x.shape[-1])
        if not x.shape[0]:
            continue
        # shift by the first batch's mean so the sums of squares do not lose precision
        if total is None:
            shift = x.mean(0)
            total, total_sq = np.zeros_like(shift), np.zeros_like(shift)
        d = x - shift
        n += x.shape[0]
        total += d.sum(0)
        total_sq += (d * d).sum(0)
    if not n:
        raise ConfigError("cannot compute channel statistics from no spectra (an empty selection)")
    mean_d = total / n
    var = np.maximum(total_sq / n - mean_d ** 2, 0.0)
    return {"mean": (shift + mean_d).astype(np.float32), "std": np.sqrt(var).astype(np.float32)}


def _safe_std(std: np.ndarray) -> np.ndarray:
    # a channel that is constant over the training set (e.g. always 0) is divided by 1
    return np.where(std > 0, std, 1.0).astype(np.float32)
