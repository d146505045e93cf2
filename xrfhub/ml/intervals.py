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
``q * s(x)``); ``relative`` is ``|y - y_hat| / (|y_hat| + c)`` (a half-width growing with the
prediction) and ``log`` is ``|log(y + c) - log(y_hat + c)|`` (multiplicative errors, as the
log-ratio models make: an asymmetric interval in wt%), both with ``c`` a tenth of the calibration
predictions' median (``OFFSET_SHARE``). Intervals are clipped to the physical range of the target
(0-100 wt%), which can only add coverage when the truth lies in that range.

Methods (recorded beside every interval): ``split-conformal``, the original, takes one quantile
over every calibration pair's absolute score, so the core with the most pairs and the largest
residuals sets the width for all (docs/results.md: 0.98 coverage at 0.9 on 4 calibration cores,
0.78 on 2); it stays the default. ``split-conformal-cores`` chooses the score and the weighting (pooled
pairs, or every core weighing the same) on the calibration cores alone: each calibration core in
turn is scored with the interval calibrated on the others, and the candidate whose mean coverage
over cores lies closest to the level wins (ties to the narrower). The held-out cores play no part.
``cross-conformal-cores`` (:mod:`xrfhub.ml.crossconformal`) makes the same choice on out-of-fold scores
of every training core, so that many cores, not a quarter of them, calibrate. Measured coverage of
all three: docs/results.md. The mean of several runs (:mod:`xrfhub.ml.ensemble`) fixes its score
and raises the quantile's level instead, until each core left out is covered as asked
(:func:`xrfhub.ml.ensemble.raised_level`).

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

from ..errors import ConfigError

CALIBRATION_FILE = "calibration.json"
#: The original method: one conformal quantile over every calibration pair (score ``absolute``, or
#: ``normalised`` where the model offers a scale). Kept: ``--interval-method split-conformal``.
METHOD = "split-conformal"
#: The default since: score and weighting chosen by leave-one-calibration-core-out coverage.
METHOD_CORES = "split-conformal-cores"
#: Cross-conformal over folds of whole training cores (``xrfhub.ml.crossconformal``): every training
#: core is scored by a model that did not train on it, so no core is held apart and many more
#: cores calibrate; score and weighting chosen as for ``split-conformal-cores``.
METHOD_CV = "cross-conformal-cores"
METHODS = (METHOD, METHOD_CORES, METHOD_CV)
SCORES = ("absolute", "normalised", "relative", "log")
WEIGHTINGS = ("pairs", "cores")
#: The level the leave-one-core-out selection aims at (the issue's; a run is calibrated once, at
#: training, and may be asked for another level at prediction).
SELECTION_LEVEL = 0.9
#: ``relative`` and ``log`` add this share of the calibration predictions' median to the value, so
#: that a prediction near 0 wt% does not get a zero-width interval nor an infinite log.
OFFSET_SHARE = 0.1
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


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"--interval-method: expected one of {', '.join(METHODS)}, got {method!r}")
    return method


def _too_few(n: int, level: float) -> ConfigError:
    return ConfigError(f"a {level:g} interval needs at least {min_pairs(level)} calibration pairs; the "
                       f"calibration cores hold {n}: calibrate on more cores or ask for a lower level")


def conformal_quantile(scores, level: float) -> float:
    """The ``ceil((n + 1) * level)``-th smallest score: the finite-sample conformal quantile."""
    check_level(level)
    s = np.sort(np.asarray(scores, dtype=np.float64))
    s = s[np.isfinite(s)]
    n = len(s)
    k = int(math.ceil((n + 1) * level - 1e-9))
    if k > n:
        raise _too_few(n, level)
    return float(s[k - 1])


def core_weighted_quantile(scores, cores, level: float) -> float:
    """Quantile of the scores with every calibration core weighing the same (each pair ``1/(K·n_k)``).

    The pooled-CDF idea of Dunn, Wasserman & Ramdas (2023, "Distribution-free prediction sets for
    two-layer hierarchical models"): a new *core* is what the interval is for, so a core with many
    lab pairs must not outvote one with few. The level is raised by the same finite-sample factor
    ``(n+1)/n`` as the pooled quantile (at pair level: with 4 cores the core-level factor would ask
    for more than all of them). No finite-sample guarantee at core level; measured, not assumed.
    """
    check_level(level)
    s, c = np.asarray(scores, dtype=np.float64), np.asarray(cores).astype(str)
    ok = np.isfinite(s)
    s, c = s[ok], c[ok]
    n = len(s)
    if int(math.ceil((n + 1) * level - 1e-9)) > n:
        raise _too_few(n, level)
    names, inverse, counts = np.unique(c, return_inverse=True, return_counts=True)
    w = 1.0 / (len(names) * counts[inverse])
    order = np.argsort(s, kind="stable")
    cumulative = np.cumsum(w[order])
    wanted = min(1.0, level * (n + 1) / n)
    k = int(np.searchsorted(cumulative, wanted - 1e-12))
    return float(s[order][min(k, n - 1)])


def _clip(values, bounds=BOUNDS) -> np.ndarray:
    return np.clip(np.asarray(values, dtype=np.float64), bounds[0], bounds[1])


def pair_scores(y, pred, score: str, *, scale=None, offset: float | None = None, bounds=BOUNDS) -> np.ndarray:
    """Nonconformity of pairs under one score (see the module docstring)."""
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if score == "absolute":
        return np.abs(y - pred)
    if score == "normalised":
        return np.abs(y - pred) / np.asarray(scale, dtype=np.float64)
    if score == "relative":
        return np.abs(y - pred) / (np.abs(_clip(pred, bounds)) + offset)
    if score == "log":
        low = bounds[0]
        return np.abs(np.log(_clip(y, bounds) - low + offset) - np.log(_clip(pred, bounds) - low + offset))
    raise ConfigError(f"unknown interval score {score!r}; expected one of {', '.join(SCORES)}")


def band(pred, q: float, score: str, *, scale=None, offset: float | None = None, bounds=BOUNDS):
    """(lower, upper) of the values whose score is at most ``q``, clipped to ``bounds``."""
    pred = np.asarray(pred, dtype=np.float64)
    if score == "absolute":
        width = np.full(pred.shape, q)
    elif score == "normalised":
        width = q * np.asarray(scale, dtype=np.float64)
    elif score == "relative":
        width = q * (np.abs(_clip(pred, bounds)) + offset)
    elif score == "log":  # multiplicative: asymmetric in wt%, symmetric in log(value + offset)
        low = bounds[0]
        centre = np.log(_clip(pred, bounds) - low + offset)
        lower, upper = np.exp(centre - q) - offset + low, np.exp(centre + q) - offset + low
        lower, upper = np.where(np.isnan(pred), np.nan, lower), np.where(np.isnan(pred), np.nan, upper)
        return np.clip(lower, *bounds), np.clip(upper, *bounds)
    else:
        raise ConfigError(f"unknown interval score {score!r}; expected one of {', '.join(SCORES)}")
    return np.clip(pred - width, *bounds), np.clip(pred + width, *bounds)


@dataclass
class Calibration:
    """Nonconformity scores of a run's calibration pairs, and where they came from.

    ``pair_cores`` (aligned with ``scores``) lets a ``cores`` weighting count each core once;
    ``selection`` records the leave-one-core-out coverage of every candidate the method weighed.
    """

    target: str
    scores: list[float]
    cores: list[str]
    score: str = "absolute"
    notes: list[str] = field(default_factory=list)
    bounds: tuple[float, float] = BOUNDS
    method: str = METHOD
    weighting: str = "pairs"
    offset: float | None = None
    pair_cores: list[str] | None = None
    selection: list[dict] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.scores)

    def half_width(self, level: float) -> float:
        """The score quantile (a half-width in wt% for ``absolute``; a factor or log-width otherwise)."""
        if self.weighting == "cores":
            return core_weighted_quantile(self.scores, self.pair_cores, level)
        return conformal_quantile(self.scores, level)

    def interval(self, pred, level: float, scale=None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around ``pred`` (NaN stays NaN) at coverage ``level``."""
        if self.score == "normalised" and scale is None:
            raise ConfigError("this run was calibrated with a normalised score; its predictor gives no scale")
        return band(pred, self.half_width(level), self.score, scale=scale, offset=self.offset, bounds=self.bounds)

    def describe(self, level: float) -> dict:
        """What is stored beside the predictions: method, level, score and calibration set."""
        return {"method": self.method, "level": float(level), "score": self.score, "weighting": self.weighting,
                "offset": self.offset, "half_width": self.half_width(level), "n_calibration": self.n,
                "calibration_cores": list(self.cores), "notes": list(self.notes)}

    # -- persistence (plain JSON in the run folder)
    def save(self, run_dir) -> Path:
        path = Path(run_dir) / CALIBRATION_FILE
        body = {"method": self.method, "target": self.target, "score": self.score, "weighting": self.weighting,
                "offset": self.offset, "cores": self.cores, "bounds": list(self.bounds), "notes": self.notes,
                "scores": [float(s) for s in self.scores], "pair_cores": self.pair_cores,
                "selection": self.selection}
        path.write_text(json.dumps(body, indent=1))
        return path

    @classmethod
    def load(cls, run_dir) -> "Calibration":
        path = Path(run_dir) / CALIBRATION_FILE
        if not path.is_file():
            raise ConfigError(f"{run_dir}: this run was trained without calibration cores, so it has no intervals; "
                              "train it again with --calibration-cores auto (or name the cores)")
        data = json.loads(path.read_text())
        if (data.get("method") not in METHODS or data.get("score") not in SCORES
                or data.get("weighting", "pairs") not in WEIGHTINGS):
            raise ConfigError(f"{path}: not a split-conformal calibration (method {data.get('method')!r}, score "
                              f"{data.get('score')!r}, weighting {data.get('weighting')!r})")
        if data.get("weighting") == "cores" and len(data.get("pair_cores") or ()) != len(data["scores"]):
            raise ConfigError(f"{path}: a core-weighted calibration needs one pair_cores entry per score")
        if data["score"] in ("relative", "log") and not (isinstance(data.get("offset"), (int, float))
                                                        and data["offset"] > 0):
            raise ConfigError(f"{path}: a {data['score']} score needs a positive offset, got {data.get('offset')!r}")
        return cls(data["target"], [float(s) for s in data["scores"]], list(data["cores"]), data["score"],
                   list(data.get("notes", [])), tuple(data.get("bounds", BOUNDS)), data["method"],
                   data.get("weighting", "pairs"), data.get("offset"), data.get("pair_cores"),
                   list(data.get("selection", [])))


def nonconformity(y, pred, scale=None) -> tuple[np.ndarray, str]:
    """Scores of pairs: ``|y - pred|``, divided by ``scale`` where the model offers one."""
    resid = np.abs(np.asarray(y, dtype=np.float64) - np.asarray(pred, dtype=np.float64))
    if scale is None:
        return resid, "absolute"
    _check_scale(scale)
    return resid / np.asarray(scale, dtype=np.float64), "normalised"


def _check_scale(scale) -> None:
    scale = np.asarray(scale, dtype=np.float64)
    if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
        raise ConfigError("a predictor's interval scale must be positive and finite for every spectrum")


def _offset(pred, bounds=BOUNDS) -> float:
    """``OFFSET_SHARE`` of the calibration predictions' median distance above the lower bound
    (from the predictions, not the lab values; never below a millionth of the range)."""
    above = _clip(pred, bounds) - bounds[0]
    return float(max(OFFSET_SHARE * np.median(above), 1e-6 * (bounds[1] - bounds[0])))


def leave_one_core_out(y, pred, cores, score: str, weighting: str, level: float, *, scale=None,
                       offset=None, bounds=BOUNDS) -> dict:
    """Coverage and mean width of a candidate on each calibration core, calibrated on the others.

    Each core plays the new core once; the mean over cores (each core one trial) is what the
    selection compares with ``level``. Cores whose complement holds too few pairs are skipped."""
    y, pred, cores = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64), np.asarray(cores).astype(str)
    scale = None if scale is None else np.asarray(scale, dtype=np.float64)
    s = pair_scores(y, pred, score, scale=scale, offset=offset, bounds=bounds)
    per_core = {}
    for core in sorted(set(cores.tolist())):
        out = cores == core
        if (~out).sum() < min_pairs(level):
            continue
        q = (core_weighted_quantile(s[~out], cores[~out], level) if weighting == "cores"
             else conformal_quantile(s[~out], level))
        lower, upper = band(pred[out], q, score, scale=None if scale is None else scale[out], offset=offset,
                            bounds=bounds)
        per_core[core] = coverage(y[out], lower, upper)
    if not per_core:
        return {"score": score, "weighting": weighting, "coverage": float("nan"), "mean_width": float("nan"),
                "per_core": {}}
    return {"score": score, "weighting": weighting,
            "coverage": float(np.mean([v["coverage"] for v in per_core.values()])),
            "mean_width": float(np.mean([v["mean_width"] for v in per_core.values()])), "per_core": per_core}


def select(y, pred, cores, level: float = SELECTION_LEVEL, *, scale=None, offset=None, bounds=BOUNDS) -> list[dict]:
    """Every candidate (score x weighting) with its leave-one-core-out coverage, best first: closest
    to ``level`` (mean over cores), ties (within half a point) to the narrower."""
    scores = ["absolute", "relative", "log"] + (["normalised"] if scale is not None else [])
    rows = [leave_one_core_out(y, pred, cores, sc, w, level, scale=scale, offset=offset, bounds=bounds)
            for sc in scores for w in WEIGHTINGS]
    rows = [r for r in rows if np.isfinite(r["coverage"])]

    def key(r):
        return (round(abs(r["coverage"] - level) / 0.005), r["mean_width"])

    return sorted(rows, key=key)


def calibrate(predictor, x, y, cores, target: str, notes=(), *, method: str = METHOD,
              level: float = SELECTION_LEVEL, bounds=BOUNDS, pred=None) -> Calibration:
    """Score calibration pairs ``(x, y)`` (``cores``: each pair's core) with a fitted predictor
    (``pred``: its predictions of ``x``, where the caller has them already).

    ``split-conformal``: one quantile of every pair's absolute (or model-normalised) residual.
    ``split-conformal-cores``: the score (absolute, relative to the prediction, log, or the model's
    own scale) and the weighting (pairs, or each core equal) whose leave-one-calibration-core-out
    coverage lies closest to ``level``; with fewer than 2 calibration cores, the original method."""
    check_method(method)
    scale_fn = getattr(predictor, "scale", None)
    pred = predictor(x) if pred is None else pred
    return from_predictions(y, pred, cores, target, notes, method=method, level=level, bounds=bounds,
                            scale=None if scale_fn is None else scale_fn(x))


def from_predictions(y, pred, cores, target: str, notes=(), *, method: str = METHOD,
                     level: float = SELECTION_LEVEL, bounds=BOUNDS, scale=None, score: str | None = None) -> Calibration:
    """:func:`calibrate` on predictions already made (by one model, or out of fold by several).
    ``score`` fixes the score (pooled pairs) instead of choosing it, whatever the method."""
    check_method(method)
    pred = np.asarray(pred, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    cores = np.asarray(cores).astype(str)
    if scale is not None:
        scale = np.asarray(scale, dtype=np.float64)
        _check_scale(scale)
    names = sorted(set(cores.tolist()))
    notes = list(notes)
    chosen = {"score": "normalised" if scale is not None else "absolute", "weighting": "pairs"}
    offset, table = None, []
    if score is not None:
        if score not in SCORES or (score == "normalised") != (scale is not None):
            raise ConfigError(f"score {score!r}: expected one of {', '.join(SCORES)}, with a scale for 'normalised' only")
        chosen = {"score": score, "weighting": "pairs"}
        offset = _offset(pred, bounds) if score in ("relative", "log") else None
    elif method in (METHOD_CORES, METHOD_CV):
        if len(names) >= 2:
            offset = _offset(pred, bounds)
            table = select(y, pred, cores, level, scale=scale, offset=offset, bounds=bounds)
        if table:
            chosen = table[0]
        elif method == METHOD_CORES:
            method = METHOD
            notes.append("fewer than 2 calibration cores (or too few pairs): the score could not be chosen "
                         "leaving one core out; the pooled absolute score is used (split-conformal)")
    s = pair_scores(y, pred, chosen["score"], scale=scale, offset=offset, bounds=bounds)
    order = np.argsort(s, kind="stable")
    keep = [{k: r[k] for k in ("score", "weighting", "coverage", "mean_width")} for r in table]
    return Calibration(target, [float(v) for v in s[order]], names, chosen["score"], notes, tuple(bounds), method,
                       chosen["weighting"], offset if chosen["score"] in ("relative", "log") else None,
                       cores[order].tolist(), keep)


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


def held_out(y, lower, upper, cores, level: float, described: dict) -> dict:
    """An interval scored on held-out pairs, as the evaluation records it: ``described`` (what
    :meth:`Calibration.describe` says) with the pooled coverage and mean width, the same per core,
    and the cores where it does not hold (:func:`exchangeability_notes`)."""
    y, lower, upper = (np.asarray(a, dtype=np.float64) for a in (y, lower, upper))
    cores = np.asarray(cores).astype(str)
    return {"interval": {**described, **coverage(y, lower, upper)},
            "per_core": {c: coverage(y[cores == c], lower[cores == c], upper[cores == c])
                         for c in sorted(set(cores.tolist()))},
            "notes": exchangeability_notes(y, lower, upper, cores, level)}


# ---------------------------------------------------------------------------- calibration cores


def choose_cores(candidates, *, seed: int, fraction: float = DEFAULT_FRACTION, values=None,
                 stream: int = 11) -> list[str]:
    """A seeded draw of whole cores for calibration: ``fraction`` of the candidates (at least one),
    always leaving at least two cores to train on.

    ``values`` (core -> lab values, 1-D for one property or ``(n, properties)`` with NaN where a
    property is missing) makes the draw keep the training range: a draw is taken only when the
    cores left to train on still span ``KEEP_RANGE`` of every property's range over the candidates.
    Why: on a store of a few cores a plain draw can take the only carbonate-rich core out of
    training, and every model then extrapolates past its training values (issue 16: the demo
    store's held-out core at 29-97 wt% CaCO3 predicted with a ceiling at the training maximum, 65).
    Draws are tried in the seed's order, so a draw that keeps the range is the plain draw; when
    no draw of ``RANGE_TRIES`` does, the one keeping the most of the range is taken. ``stream``
    separates draws of one seed made for different purposes (calibration, validation cores).
    """
    pool = sorted(set(map(str, candidates)))
    if len(pool) < 3:
        raise ConfigError(f"--calibration-cores auto needs at least 3 labelled cores outside the held-out ones "
                          f"(2 to train on, 1 to calibrate); the store has {len(pool)}: {', '.join(pool) or 'none'}")
    k = min(max(1, int(round(fraction * len(pool)))), len(pool) - 2)
    rng = np.random.default_rng([int(seed), int(stream)])
    first = sorted(rng.choice(pool, size=k, replace=False).tolist())
    if values is None:
        return first
    best, best_kept = first, range_kept(values, pool, first)
    for _ in range(RANGE_TRIES):
        if best_kept >= KEEP_RANGE:
            break
        draw = sorted(rng.choice(pool, size=k, replace=False).tolist())
        kept = range_kept(values, pool, draw)
        if kept > best_kept:
            best, best_kept = draw, kept
    return best


#: A calibration draw must leave the training cores this share of every property's range ...
KEEP_RANGE = 0.9
#: ... within this many further seeded draws (else the draw keeping the most is taken).
RANGE_TRIES = 200


def range_kept(values, pool, calibration) -> float:
    """The smallest share, over properties, of the pool's value range that the cores of ``pool``
    outside ``calibration`` still span (1.0 when a property has no spread)."""
    def stack(cores):
        parts = [np.asarray(values[c], dtype=np.float64) for c in cores if c in values]
        parts = [p.reshape(len(p), -1) for p in parts if p.size]
        return np.concatenate(parts) if parts else np.zeros((0, 1))

    every, train = stack(pool), stack([c for c in pool if c not in set(calibration)])
    if not len(every) or not len(train):
        return 0.0 if len(every) else 1.0
    shares = []
    for j in range(every.shape[1]):
        col, kept = every[:, j], train[:, j]
        col, kept = col[np.isfinite(col)], kept[np.isfinite(kept)]
        span = col.max() - col.min() if col.size else 0.0
        if span <= 0:
            continue
        shares.append(0.0 if not kept.size else (kept.max() - kept.min()) / span)
    return float(min(shares)) if shares else 1.0


def core_values(store, target: str | None = None) -> dict[str, np.ndarray]:
    """Core -> its matched lab values: of ``target``, or ``(n, properties)`` of every numeric lab
    property (float per-sample variables) when None, as :func:`choose_cores` takes them."""
    from .. import api

    ds = api.open(store, "samples", index=False)
    ok = ds["match_status"].values == "matched"
    names = [target] if target is not None and target in ds else [
        n for n, v in ds.data_vars.items() if v.dims == ("sample",) and v.dtype.kind == "f"]
    if not names:
        return {}
    table = np.column_stack([ds[n].values.astype(np.float64) for n in names])
    cores = ds["core"].values.astype(str)
    return {c: table[ok & (cores == c)] for c in sorted(set(cores[ok]))}


def labelled_cores(store, target: str | None = None) -> list[str]:
    """Cores with matched lab pairs (of ``target``, or of any property when None)."""
    from .. import api

    ds = api.open(store, "samples", index=False)
    ok = ds["match_status"].values == "matched"
    if target is not None and target in ds:
        ok &= np.isfinite(ds[target].values.astype(np.float64))
    return sorted(set(ds["core"].values[ok].astype(str)))
