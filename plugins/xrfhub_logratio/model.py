"""Log-ratio calibration of element intensities to a lab property, as a small estimator.

Weltje & Tjallingii (2008) showed that XRF core-scanner intensities I_j relate to concentrations
W_j through log-ratios, ln(W_j / W_D) = a_j ln(I_j / I_D) + b_j, because ratios cancel the
unknown, varying measurement geometry (water content, grain size, surface) that scales every
intensity alike. Two forms are fitted here, both on additive log-ratios (ALR) of the intensities
to a denominator line D:

``alr``  (univariate, Weltje & Tjallingii 2008)
    target' = a + b ln(I_N / I_D): one numerator N (the target's own element when the target is
    an element with a line, else chosen) over one denominator.
``mlc``  (multivariate log-ratio calibration, Weltje et al. 2015)
    target' = a + sum_j b_j ln(I_j / I_D) over every line j != D: one row of the MLC matrix,
    ridge-regularised (standardised log-ratios) because lines outnumber lab samples on real cores.

``target'`` is ln(y) (``log``: any positive property in any unit), the log-ratio of the property
to the rest of the sample, ln(y / (100 - y)) for wt% (``logit``: CaCO3 against the rest is the
two-part composition's ALR), or y (``none``); ``auto`` (default) lets the cross-validation pick
logit or log when every training value lies in 0-100, and takes log otherwise.
The denominator (and, for ``alr``, the numerator; for ``mlc``, the ridge strength) is chosen by
cross-validation whose folds are whole cores of the training part; with one training core the
folds are contiguous depth blocks of it, and the record says so. Held-out cores never reach
this function (the plugin removes them first; the tests check).

Persistence is arrays (``model.npz``, no pickle) plus JSON; prediction uses only those.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from xrfhub.ml import modelfiles
from xrfhub.errors import ConfigError, InputError
from xrfhub.ml.modelfiles import ARRAYS_FILE, PARAMS_FILE  # noqa: F401 - the run folder's names

from .features import alr, replace_zeros, zero_floors

FORMAT = "xrfhub-logratio/1"
FORMS = ("mlc", "alr")
TRANSFORMS = ("auto", "log", "logit", "none")


# ---------------------------------------------------------------------------- target transforms


def to_target_space(y, transform: str, floor: float | None):
    y = np.asarray(y, dtype=np.float64)
    if transform == "log":
        return np.log(np.where(y > 0, y, floor))
    if transform == "logit":
        p = np.clip(np.where(y > 0, y, floor), floor, 100.0 - floor)
        return np.log(p / (100.0 - p))
    return y


def from_target_space(z, transform: str):
    z = np.asarray(z, dtype=np.float64)
    if transform == "log":
        return np.exp(np.clip(z, -700, 700))
    if transform == "logit":
        return 100.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
    return z


def target_floor(y, transform: str) -> float | None:
    """What replaces a lab value <= 0 (below detection) before a log: half the smallest positive one."""
    if transform == "none":
        return None
    y = np.asarray(y, dtype=np.float64)
    positive = y[y > 0]
    if not len(positive):
        raise ConfigError(f"target_transform={transform}: no positive lab value to take the log of; "
                          "use target_transform=none")
    if transform == "logit" and np.any(y >= 100):
        raise ConfigError("target_transform=logit needs wt% below 100; use log or none")
    return float(0.5 * positive.min())


# ---------------------------------------------------------------------------- folds


def folds(groups, n_folds: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """(train, test) index pairs: whole groups (cores) per fold; one group: contiguous blocks."""
    groups = np.asarray(groups).astype(str)
    names = list(dict.fromkeys(groups))
    n = len(groups)
    if len(names) >= 2:
        k = min(n_folds, len(names))
        # whole cores round-robin over folds, in order of appearance: deterministic, no core split
        fold_of_core = {c: i % k for i, c in enumerate(sorted(names))}
        fold = np.array([fold_of_core[g] for g in groups])
        how = f"{k} folds of whole cores ({len(names)} training cores)"
    else:
        k = min(n_folds, n)
        fold = np.minimum(np.arange(n) * k // max(n, 1), k - 1)
        how = (f"one training core: {k} folds of contiguous samples in store (depth) order, "
               "not whole cores")
    pairs = [(np.flatnonzero(fold != i), np.flatnonzero(fold == i)) for i in range(k)]
    return [p for p in pairs if len(p[0]) >= 2 and len(p[1])], how


# ---------------------------------------------------------------------------- linear fits


def _ridge(x: np.ndarray, z: np.ndarray, alpha: float):
    """(coef, intercept, mean, std) of a ridge fit on standardised columns; alpha per sample."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    xs = (x - mean) / std
    zc = z - z.mean()
    n, p = xs.shape
    coef = np.linalg.solve(xs.T @ xs / n + alpha * np.eye(p), xs.T @ zc / n)
    return coef, float(z.mean()), mean, std


def _apply(x, coef, intercept, mean, std):
    return intercept + ((x - mean) / std) @ coef


class LogRatioModel:
    """Denominator (and numerator / ridge strength) chosen by grouped CV, then a linear fit on log-ratios."""

    def __init__(self, lines, *, form: str = "mlc", transform: str = "auto", target: str | None = None,
                 denominators=(), alphas=(1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0), n_folds: int = 5, min_detected: float = 0.8,
                 min_counts: float = 20.0, max_denominators: int = 6):
        if form not in FORMS:
            raise ConfigError(f"config key 'form': expected one of {', '.join(FORMS)}, got {form!r}")
        if transform not in TRANSFORMS:
            raise ConfigError(f"config key 'target_transform': expected one of {', '.join(TRANSFORMS)}, "
                              f"got {transform!r}")
        self.lines = [str(x) for x in lines]
        self.form, self.transform, self.target = form, transform, target
        self.denominators = tuple(denominators)
        self.alphas = tuple(float(a) for a in alphas)
        self.n_folds, self.min_detected = int(n_folds), float(min_detected)
        self.min_counts, self.max_denominators = float(min_counts), int(max_denominators)
        self.used: list[str] = []  # lines kept (detected often enough in training)
        self.floors = None
        self.denominator = self.numerator = None
        self.alpha = 0.0
        self.coef = self.mean = self.std = None
        self.intercept = 0.0
        self.y_floor = None
        self.info: dict = {}

    # -- fitting

    def fit(self, areas, y, groups) -> "LogRatioModel":
        areas = np.asarray(areas, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if areas.ndim != 2 or areas.shape != (len(y), len(self.lines)):
            raise ConfigError(f"intensities of shape {areas.shape} for {len(y)} lab values and {len(self.lines)} lines")
        if len(y) < 4:
            raise ConfigError(f"log-ratio calibration needs at least 4 labelled samples, got {len(y)}")
        detected = np.mean(np.isfinite(areas) & (areas > 0), axis=0)
        # counting statistics: a line of a few counts is mostly Poisson noise in a log-ratio
        median = np.nanmedian(np.where(np.isfinite(areas), areas, np.nan), axis=0)
        keep = (detected >= self.min_detected) & (np.nan_to_num(median) >= self.min_counts)
        if keep.sum() < 2:
            raise ConfigError(f"fewer than 2 lines are detected in {self.min_detected:.0%} of the training samples "
                              f"with a median of at least {self.min_counts:g} counts (detected fractions: "
                              f"{dict(zip(self.lines, np.round(detected, 2)))}); lower min_detected or "
                              "min_counts, or give other elements")
        self._median = median[keep]
        self.used = [line for line, k in zip(self.lines, keep) if k]
        a = areas[:, keep]
        self.floors = zero_floors(a)
        a, replaced = replace_zeros(a, self.floors)
        splits, how = folds(groups, self.n_folds)
        if not splits:
            raise ConfigError("too few labelled samples to cross-validate the denominator")
        candidates = [self.used.index(d) for d in self._denominator_names()]
        asked = self.transform
        # auto: a property that may be a percentage (0 <= y < 100) is tried both as the log-ratio of the
        # part to the rest of the sample (logit) and as ln(y); anything else is ln(y). CV decides.
        transforms = [asked] if asked != "auto" else (
            ["logit", "log"] if np.all((y >= 0) & (y < 100)) else ["log"])
        scores = {}
        for t in transforms:
            floor = target_floor(y, t)
            self.transform = t
            found = self._search(a, y, to_target_space(y, t, floor), splits, candidates)
            scores.update({(t, floor, *k): v for k, v in found.items()})
        best = min(scores, key=lambda k: scores[k])
        self.transform, self.y_floor, self.denominator, self.numerator, self.alpha = best
        self._fit_final(a, to_target_space(y, self.transform, self.y_floor))
        table = sorted(((v, k) for k, v in scores.items()))[:10]
        self.info = {"cv": how, "n_train": int(len(y)), "zeros_replaced": replaced, "transform_asked": asked,
                     "lines_dropped": [line for line, k in zip(self.lines, keep) if not k],
                     "n_target_floored": int(np.sum(y <= 0)) if self.transform != "none" else 0,
                     "cv_rmse": float(scores[best]),
                     "cv_best": [{"transform": t, "denominator": self.used[d],
                                  "numerator": None if n is None else self.used[n], "alpha": al, "cv_rmse": float(v)}
                                 for v, (t, _f, d, n, al) in table]}
        return self

    def _denominator_names(self) -> list[str]:
        if not self.denominators:
            # the strongest lines (best counting statistics), never the target's own element
            own = [u for u in self.used if self.target and u.split("-")[0] == str(self.target)]
            ranked = [self.used[i] for i in np.argsort(-self._median, kind="stable") if self.used[i] not in own]
            return ranked[:self.max_denominators]
        names = []
        for d in self.denominators:
            hit = [u for u in self.used if u == d or u.split("-")[0] == d]
            if not hit:
                raise ConfigError(f"denominator {d!r} is not among the lines used ({', '.join(self.used)})")
            names.append(hit[0])
        return names

    def _numerators(self, d: int) -> list[int]:
        own = [i for i, u in enumerate(self.used) if self.target and u.split("-")[0] == str(self.target)]
        if own and own[0] != d:  # a target that is an element with a line: its own line is the numerator
            return own
        return [i for i in range(len(self.used)) if i != d]

    def _search(self, a, y, z, splits, candidates) -> dict:
        """CV RMSE (in the property's units) of every (denominator, numerator, alpha) candidate."""
        logs = np.log(a)
        scores = {}
        for d in candidates:
            ratios = logs - logs[:, [d]]
            if self.form == "alr":
                options = [(n, 0.0) for n in self._numerators(d)]
            else:
                options = [(None, al) for al in self.alphas]
            for n, al in options:
                x = ratios[:, [n]] if n is not None else np.delete(ratios, d, axis=1)
                err = []
                for tr, te in splits:
                    coef, b, m, s = _ridge(x[tr], z[tr], al)
                    pred = from_target_space(_apply(x[te], coef, b, m, s), self.transform)
                    err.append((pred - y[te]) ** 2)
                scores[(d, n, al)] = float(np.sqrt(np.mean(np.concatenate(err))))
        return scores

    def _features(self, a: np.ndarray) -> np.ndarray:
        if self.form == "alr":
            logs = np.log(a)
            return logs[:, [self.numerator]] - logs[:, [self.denominator]]
        return alr(a, self.denominator)

    def _fit_final(self, a, z) -> None:
        self.coef, self.intercept, self.mean, self.std = _ridge(self._features(a), z, self.alpha)

    # -- using

    def intensities(self, areas) -> np.ndarray:
        """Areas of all model lines -> the used lines with zeros replaced."""
        areas = np.asarray(areas, dtype=np.float64)
        if areas.ndim != 2 or areas.shape[1] != len(self.lines):
            raise ConfigError(f"intensities of {len(self.lines)} lines expected, got shape {areas.shape}")
        keep = [self.lines.index(u) for u in self.used]
        return replace_zeros(areas[:, keep], self.floors)[0]

    def predict(self, areas) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError("this LogRatioModel is not fitted: call fit() or load() first")
        x = self._features(self.intensities(areas))
        return from_target_space(_apply(x, self.coef, self.intercept, self.mean, self.std), self.transform)

    def equation(self) -> str:
        """The fitted calibration in words (original, unstandardised log-ratio coefficients)."""
        slope = self.coef / self.std
        const = self.intercept - float(np.sum(slope * self.mean))
        den = self.used[self.denominator]
        names = ([self.used[self.numerator]] if self.form == "alr"
                 else [u for i, u in enumerate(self.used) if i != self.denominator])
        lhs = {"log": "ln(y)", "logit": "ln(y/(100-y))", "none": "y"}[self.transform]
        terms = " ".join(f"{'+' if s >= 0 else '-'} {abs(s):.4g} ln({n}/{den})" for s, n in zip(slope, names))
        return f"{lhs} = {const:.4g} {terms}"

    # -- persistence (no pickle)

    def params(self) -> dict:
        return {"format": FORMAT, "lines": self.lines, "used": self.used, "form": self.form,
                "transform": self.transform, "target": self.target,
                "denominator": self.used[self.denominator] if self.denominator is not None else None,
                "numerator": None if self.numerator is None else self.used[self.numerator],
                "alpha": self.alpha, "intercept": self.intercept, "y_floor": self.y_floor,
                "equation": self.equation() if self.coef is not None else None, **self.info}

    def save(self, folder) -> Path:
        return modelfiles.save(folder, self.params(), {"coef": self.coef, "mean": self.mean, "std": self.std,
                                                       "floors": self.floors})

    @classmethod
    def load(cls, folder) -> "LogRatioModel":
        p, arrays, pa = modelfiles.load(folder, format=FORMAT, names=("coef", "mean", "std", "floors"),
                                        what="logratio")
        m = cls(p["lines"], form=p["form"], transform=p["transform"], target=p.get("target"))
        m.used = list(p["used"])
        m.denominator = m.used.index(p["denominator"])
        m.numerator = None if p["numerator"] is None else m.used.index(p["numerator"])
        m.alpha, m.intercept, m.y_floor = float(p["alpha"]), float(p["intercept"]), p.get("y_floor")
        m.coef, m.mean, m.std, m.floors = arrays["coef"], arrays["mean"], arrays["std"], arrays["floors"]
        if len(m.floors) != len(m.used) or m.coef.shape != m.mean.shape:
            raise InputError(pa, f"inconsistent shapes: {len(m.floors)} floors for {len(m.used)} lines, "
                             f"coefficients {m.coef.shape}, means {m.mean.shape}")
        m.info = {k: p[k] for k in ("cv", "n_train", "zeros_replaced", "lines_dropped", "cv_rmse") if k in p}
        return m
