"""Prediction intervals for every regression plugin: split conformal over whole calibration cores.

Why conformal: no model we ship (MAX, the Lee 2022 baseline, a user's plugin) gives a
trustworthy variance, but any of them gives a point prediction. Split conformal turns one into
an interval with a guaranteed coverage, *if* the calibration pairs and the new ones are
exchangeable: the nonconformity scores of a calibration set the model never trained on are
sorted and the ``ceil((n + 1) * level)``-th smallest becomes the half-width (Vovk et al. 2005;
Lei et al. 2018, "Distribution-free predictive inference for regression").

Why whole cores: neighbouring samples of one core are correlated, so pairs of a core that was
trained on are not exchangeable with pairs of a new core. Calibration cores are chosen (seeded)
among the labelled cores outside the held-out ones and are excluded from training, like held-out
cores (pre-training included, when chosen at pre-training). The guarantee is then about a new
*core* drawn like the calibration cores; a core of another kind (e.g. far higher TOC than any
calibration core) breaks it, and coverage on held-out cores is reported so that shows.

Scores: ``absolute`` is ``|y - y_hat|`` (a constant half-width); ``normalised`` is
``|y - y_hat| / s(x)`` for a plugin whose predictor offers a positive scale ``s`` (half-width
``q * s(x)``). Intervals are clipped to the physical range of the target (0-100 wt%), which can
only add coverage when the truth lies in that range.

The mechanism lives here, not in the plugins: a plugin only has to provide
``predictor(run_dir) -> callable(counts) -> values`` (and optionally a ``scale`` attribute on
that callable for the normalised score).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError

CALIBRATION_FILE = "calibration.json"
METHOD = "split-conformal"
SCORES = ("absolute", "normalised")
#: Physical range of our targets (wt%); intervals are clipped to it.
BOUNDS = (0.0, 100.0)
DEFAULT_FRACTION = 0.25  # of the labelled cores outside the held-out ones, for calibration
FEW_CORES = 4  # fewer calibration cores than this get a warning: core-to-core spread dominates


def min_pairs(level: float) -> int:
    """Fewest calibration scores that give a finite ``level`` interval: ceil((n+1)·level) <= n."""
    check_level(level)
    return int(math.ceil(level / (1.0 - level) - 1e-9))


def check_level(level: float) -> None:
    if not (isinstance(level, (int, float)) and 0.0 < float(level) < 1.0):
        raise ConfigError(f"--interval: expected a coverage level between 0 and 1 (e.g. 0.9), got {level!r}")


def conformal_quantile(scores, level: float) -> float:
    """The ``ceil((n + 1) * level)``-th smallest score: the finite-sample conformal quantile."""
    check_level(level)
    s = np.sort(np.asarray(scores, dtype=np.float64))
    s = s[np.isfinite(s)]
    n = len(s)
    k = int(math.ceil((n + 1) * level - 1e-9))
    if k > n:
        raise ConfigError(f"a {level:g} interval needs at least {min_pairs(level)} calibration pairs; the "
                          f"calibration cores hold {n}: calibrate on more cores or ask for a lower level")
    return float(s[k - 1])


@dataclass
class Calibration:
    """Nonconformity scores of a run's calibration pairs, and where they came from."""

    target: str
    scores: list[float]
    cores: list[str]
    score: str = "absolute"
    notes: list[str] = field(default_factory=list)
    bounds: tuple[float, float] = BOUNDS

    @property
    def n(self) -> int:
        return len(self.scores)

    def half_width(self, level: float) -> float:
        return conformal_quantile(self.scores, level)

    def interval(self, pred, level: float, scale=None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around ``pred`` (NaN stays NaN) at coverage ``level``."""
        pred = np.asarray(pred, dtype=np.float64)
        q = self.half_width(level)
        if self.score == "normalised":
            if scale is None:
                raise ConfigError("this run was calibrated with a normalised score; its predictor gives no scale")
            width = q * np.asarray(scale, dtype=np.float64)
        else:
            width = np.full(pred.shape, q)
        lo, hi = self.bounds
        return np.clip(pred - width, lo, hi), np.clip(pred + width, lo, hi)

    def describe(self, level: float) -> dict:
        """What is stored beside the predictions: method, level, score and calibration set."""
        return {"method": METHOD, "level": float(level), "score": self.score, "half_width": self.half_width(level),
                "n_calibration": self.n, "calibration_cores": list(self.cores), "notes": list(self.notes)}

    # -- persistence (plain JSON in the run folder)
    def save(self, run_dir) -> Path:
        path = Path(run_dir) / CALIBRATION_FILE
        body = {"method": METHOD, "target": self.target, "score": self.score, "cores": self.cores,
                "bounds": list(self.bounds), "notes": self.notes, "scores": [float(s) for s in self.scores]}
        path.write_text(json.dumps(body, indent=1))
        return path

    @classmethod
    def load(cls, run_dir) -> "Calibration":
        path = Path(run_dir) / CALIBRATION_FILE
        if not path.is_file():
            raise ConfigError(f"{run_dir}: this run was trained without calibration cores, so it has no intervals; "
                              "train it again with --calibration-cores auto (or name the cores)")
        data = json.loads(path.read_text())
        if data.get("method") != METHOD or data.get("score") not in SCORES:
            raise ConfigError(f"{path}: not a {METHOD} calibration (method {data.get('method')!r}, score "
                              f"{data.get('score')!r})")
        return cls(data["target"], [float(s) for s in data["scores"]], list(data["cores"]), data["score"],
                   list(data.get("notes", [])), tuple(data.get("bounds", BOUNDS)))


def nonconformity(y, pred, scale=None) -> tuple[np.ndarray, str]:
    """Scores of pairs: ``|y - pred|``, divided by ``scale`` where the model offers one."""
    resid = np.abs(np.asarray(y, dtype=np.float64) - np.asarray(pred, dtype=np.float64))
    if scale is None:
        return resid, "absolute"
    scale = np.asarray(scale, dtype=np.float64)
    if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
        raise ConfigError("a predictor's interval scale must be positive and finite for every spectrum")
    return resid / scale, "normalised"


def calibrate(predictor, x, y, cores, target: str, notes=()) -> Calibration:
    """Score calibration pairs ``(x, y)`` (of the calibration ``cores``) with a fitted predictor."""
    pred = np.asarray(predictor(x), dtype=np.float64)
    scale_fn = getattr(predictor, "scale", None)
    scores, kind = nonconformity(y, pred, scale_fn(x) if scale_fn is not None else None)
    return Calibration(target, sorted(float(s) for s in scores), sorted(set(map(str, cores))), kind, list(notes))


def coverage(y, lower, upper) -> dict:
    """Share of values inside ``[lower, upper]`` and the mean width, over finite rows."""
    y, lower, upper = (np.asarray(a, dtype=np.float64) for a in (y, lower, upper))
    ok = np.isfinite(y) & np.isfinite(lower) & np.isfinite(upper)
    if not ok.any():
        return {"n": 0, "coverage": float("nan"), "mean_width": float("nan")}
    inside = (y[ok] >= lower[ok]) & (y[ok] <= upper[ok])
    return {"n": int(ok.sum()), "coverage": float(inside.mean()), "mean_width": float(np.mean(upper[ok] - lower[ok]))}


def exchangeability_notes(y, lower, upper, cores, level: float) -> list[str]:
    """Warnings for cores whose coverage falls below ``level`` by more than two binomial standard
    errors: there the calibration cores do not stand for the core (exchangeability broken)."""
    cores = np.asarray(cores).astype(str)
    notes = []
    for core in sorted(set(cores.tolist())):
        rows = cores == core
        got = coverage(np.asarray(y)[rows], np.asarray(lower)[rows], np.asarray(upper)[rows])
        if got["n"] == 0:
            continue
        tolerance = 2.0 * math.sqrt(level * (1.0 - level) / got["n"])
        if got["coverage"] < level - tolerance:
            notes.append(f"held-out core {core}: the {level:g} interval covers {got['coverage']:.2f} of its "
                         f"{got['n']} lab values (below nominal by more than {tolerance:.2f}): this core is not "
                         "like the calibration cores (exchangeability broken); do not trust its intervals")
    return notes


# ---------------------------------------------------------------------------- calibration cores


def choose_cores(candidates, *, seed: int, fraction: float = DEFAULT_FRACTION) -> list[str]:
    """A seeded draw of whole cores for calibration: ``fraction`` of the candidates (at least one),
    always leaving at least two cores to train on."""
    pool = sorted(set(map(str, candidates)))
    if len(pool) < 3:
        raise ConfigError(f"--calibration-cores auto needs at least 3 labelled cores outside the held-out ones "
                          f"(2 to train on, 1 to calibrate); the store has {len(pool)}: {', '.join(pool) or 'none'}")
    k = min(max(1, int(round(fraction * len(pool)))), len(pool) - 2)
    rng = np.random.default_rng([int(seed), 11])
    return sorted(rng.choice(pool, size=k, replace=False).tolist())


def labelled_cores(store, target: str | None = None) -> list[str]:
    """Cores with matched lab pairs (of ``target``, or of any property when None)."""
    from . import api

    ds = api.open(store, "samples", index=False)
    ok = ds["match_status"].values == "matched"
    if target is not None and target in ds:
        ok &= np.isfinite(ds[target].values.astype(np.float64))
    return sorted(set(ds["core"].values[ok].astype(str)))
