"""The mean of several trained runs' predictions of one property, with its own conformal interval.

Why: on generated 10-core corpora MAX and the log-ratio calibration each miss a few test cores by
a few wt% over a whole core, and rarely the same one; their per-spectrum mean halves such a miss
(docs/results.md, eleventh and twelfth passes). ``xrfhub compare`` shows where two runs disagree;
this gives one number per spectrum from them.

The mean is only as honest as its parts: every run must hold out the same test cores (or the
mean's test set would hold cores one of its models trained on), predict the same property from
the same spectra, and, for an interval, carry out-of-fold predictions of every training pair (a
cross-fitted MAX run, or any run trained with ``--interval-method cross-conformal-cores``). The
mean of those out-of-fold predictions is again out of fold, each part by a model that never saw
the core, so the mean is calibrated on them exactly as one cross-conformal run is
(:mod:`xrfhub.ml.crossconformal`): nothing is fitted on the test cores, and the weights are equal.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError

PLUGIN = "mean"  # the prediction run's plugin name in `xrfhub runs`


def check_runs(runs: dict[str, dict]) -> str:
    """The target the runs (folder -> its ``run.json``) share, or a ConfigError saying what differs."""
    if len(runs) < 2:
        raise ConfigError("a mean needs at least two different training runs")
    (first, one), *rest = runs.items()
    target = one.get("target")
    if not target:
        raise ConfigError(f"{first}: a pre-training run predicts nothing; name fine-tuned or regression runs")
    for folder, run in rest:
        if run.get("target") != target:
            raise ConfigError(f"{first} and {folder} predict different properties ({target} and {run.get('target')})")
        if sorted(run.get("holdout_cores") or ()) != sorted(one.get("holdout_cores") or ()):
            raise ConfigError(f"{first} and {folder} hold out different test cores "
                              f"({', '.join(one.get('holdout_cores') or ()) or 'none'} and "
                              f"{', '.join(run.get('holdout_cores') or ()) or 'none'}): the mean's test cores would "
                              "include cores one of its models trained on; train both with the same --holdout-cores")
    return target


def mean_out_of_fold(run_dirs, target: str) -> tuple[dict, dict[str, list[str]]]:
    """The mean of the runs' out-of-fold predictions over the same training pairs (``{"y", "pred",
    "cores", "each"}``, ``each`` one array per run, in the first run's order), and for each core the
    cores that every part's fold model trained on."""
    from .crossconformal import load_out_of_fold

    parts = [load_out_of_fold(d) for d in run_dirs]
    first = parts[0]
    y, cores = np.asarray(first["y"], dtype=np.float64), np.asarray(first["cores"]).astype(str)
    preds, trained_on = [], {c: set(first["cores"]) - {c} for c in cores.tolist()}
    for d, part in zip(run_dirs, parts):
        order = _aligned(y, cores, part, first_dir=run_dirs[0], other_dir=d)
        preds.append(np.asarray(part["pred"], dtype=np.float64)[order])
        fold_of = {str(c): i for i, fold in enumerate(part.get("folds") or []) for c in fold}
        for c in trained_on:  # a core is inside the mean's reach only where every part could see it
            trained_on[c] &= {o for o in fold_of if fold_of[o] != fold_of.get(c)}
    return ({"y": y.tolist(), "pred": np.mean(preds, axis=0).tolist(), "cores": cores.tolist(),
             "each": preds}, {c: sorted(v) for c, v in trained_on.items()})


def _aligned(y, cores, part, *, first_dir, other_dir) -> np.ndarray:
    """Indices putting ``part``'s pairs in the order of (``y``, ``cores``). Runs list a core's pairs
    in the store's order, but the cores by fold; so pairs are matched core by core, and the lab
    values must then agree, or the runs were trained on different lab values."""
    p_cores = np.asarray(part["cores"]).astype(str)
    p_y = np.asarray(part["y"], dtype=np.float64)
    order = np.empty(len(y), dtype=np.int64)
    if sorted(p_cores.tolist()) != sorted(cores.tolist()):
        raise ConfigError(f"{first_dir} and {other_dir} were scored out of fold on different training pairs; "
                          "train both on the same store and lab values")
    for c in np.unique(cores):
        order[np.flatnonzero(cores == c)] = np.flatnonzero(p_cores == c)
    if not np.allclose(p_y[order], y, equal_nan=True):
        raise ConfigError(f"{first_dir} and {other_dir} have different lab values for the same training cores; "
                          "train both on the same store")
    return order


def _runs(run_dirs) -> tuple[list[str], dict[str, dict], str]:
    """The run folders as strings, their ``run.json``, and the target they share (checked)."""
    from .training import _read_run

    run_dirs = [str(d) for d in run_dirs]
    if len({str(Path(d).resolve()) for d in run_dirs}) != len(run_dirs):
        raise ConfigError(f"the same run is named twice in {', '.join(run_dirs)}")
    runs = {d: _read_run(d) for d in run_dirs}
    return run_dirs, runs, check_runs(runs)


#: :func:`raised_level` raises a quantile level by this step, up to this top.
LEVEL_STEP, LEVEL_TOP = 0.01, 0.99


def raised_level(y, pred, cores, score: str, weighting: str, level: float, *, scale=None, offset=None,
                 bounds=None) -> tuple[float, dict]:
    """The smallest of ``level``, ``level`` + 0.01, ..., 0.99 at which the candidate's
    leave-one-core-out coverage (mean over the cores) reaches ``level``, with that trial (the
    highest level that could be tried, and its trial, if none does).

    Why: with a handful of calibration cores the error is mostly a bias per core, and the pooled
    quantile at the nominal level covers a new core less often than nominal (docs/results.md). Each
    core in turn playing the new core measures that shortfall on the calibration cores alone, and
    the level is raised until it is gone there."""
    from . import intervals

    bounds = intervals.BOUNDS if bounds is None else bounds
    levels = [round(level + k * LEVEL_STEP, 6) for k in range(int((LEVEL_TOP - level) / LEVEL_STEP + 1e-9) + 1)]
    found = None
    for at in levels or [level]:
        trial = intervals.leave_one_core_out(y, pred, cores, score, weighting, at, scale=scale, offset=offset,
                                             bounds=bounds)
        if found is not None and not np.isfinite(trial["coverage"]):
            break  # too few pairs outside a core for this level: stay at the last level that could be tried
        found = (at, trial)
        if trial["coverage"] >= level - 1e-12:
            break
    return found


@dataclass
class Calibrated:
    """The mean's calibration, its training-side figure, and the floor of its spread scale.

    ``quantile_level``: where the level was raised (:func:`raised_level`), the level the
    score quantile is taken at for an interval of ``level``; such a calibration serves that level only.
    """

    calibration: "intervals.Calibration"
    interpolation_r2: float | None  # the mean R2 of the interpolation cores, out of fold (None without any)
    floor: float  # added to the runs' spread, so the normalised score's scale is positive where they agree
    level: float = 0.9
    quantile_level: float | None = None

    def _at(self, level: float) -> float:
        if self.quantile_level is None:
            return level
        if abs(level - self.level) > 1e-9:
            raise ConfigError(f"this mean was calibrated for a {self.level:g} interval (its level raised to "
                              f"{self.quantile_level:g}); calibrate it again for {level:g}")
        return self.quantile_level

    def interval(self, each, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around the mean of ``each`` (one array of predictions per run)."""
        scale = spread(each) + self.floor if self.calibration.score == "normalised" else None
        return self.calibration.interval(_mean(each), self._at(level), scale)

    def describe(self, level: float) -> dict:
        """What is stored beside the mean's interval (:meth:`intervals.Calibration.describe`, and the
        level the quantile was taken at, and the spread's floor)."""
        return {**self.calibration.describe(self._at(level)), "level": float(level),
                "quantile_level": self._at(level), "spread_floor": self.floor}


def calibrate(run_dirs, level: float = 0.9) -> Calibrated:
    """The mean's cross-conformal calibration on the mean of the runs' out-of-fold predictions, for
    an interval of ``level`` (:func:`calibrate_pairs`)."""
    from . import intervals
    from .metrics import by_core, interpolation_r2

    run_dirs, _, target = _runs(run_dirs)
    oof, trained_on = mean_out_of_fold(run_dirs, target)
    calibrated = calibrate_pairs(oof["y"], oof["each"], oof["cores"], target, intervals.METHOD_CV,
                                 [f"calibrated on the mean of the out-of-fold predictions of {len(run_dirs)} runs"],
                                 level=level)
    calibrated.interpolation_r2 = interpolation_r2(by_core(oof["y"], oof["pred"], oof["cores"], trained_on))
    return calibrated


def calibrate_pairs(y, each, cores, target: str, method: str, notes=(), *, level: float = 0.9) -> Calibrated:
    """The mean's calibration for a ``level`` interval on pairs none of its models trained on:
    ``each`` holds one array of predictions per model, ``cores`` each pair's core.

    With at least two cores and a method that works core by core (``split-conformal-cores``,
    ``cross-conformal-cores``), the score is the residual over the models' spread (half their
    range) plus its median: where two models disagree on a spectrum at least one is off there, so
    its interval should be wider. Its quantile is taken at the level raised until leaving one core
    out covers ``level`` (:func:`raised_level`). On the out-of-fold pairs of 12 seen
    10-core corpora this covered 0.879 of the held-out pairs at 0.9, against 0.848 for choosing
    among the single-model scores, with narrower intervals (docs/results.md, fourteenth pass).
    Otherwise the pooled absolute score at ``level``, as for a single model."""
    from . import intervals

    intervals.check_method(method)
    intervals.check_level(level)
    half = spread(each)
    floor = max(float(np.median(half)), 1e-6)
    pred = _mean(each)
    if method == intervals.METHOD or len(set(np.asarray(cores).astype(str).tolist())) < 2:
        cal = intervals.from_predictions(y, pred, cores, target, list(notes), method=method, level=level)
        return Calibrated(cal, None, floor, level)
    scale = half + floor
    at, trial = raised_level(y, pred, cores, "normalised", "pairs", level, scale=scale)
    notes = [*notes, f"the score's quantile is taken at {at:g}: the lowest level from {level:g} at which each "
                     f"calibration core, left out in turn, was covered {level:g} on average "
                     f"({trial['coverage']:.3f} there)"]
    cal = intervals.from_predictions(y, pred, cores, target, notes, method=method, level=level, scale=scale,
                                     score="normalised")
    cal.selection = [{"score": "normalised", "weighting": "pairs", "coverage": trial["coverage"],
                      "mean_width": trial["mean_width"], "quantile_level": at}]
    return Calibrated(cal, None, floor, level, at)


class MeanPredictor:
    """The mean of the runs' predictors (``predictor(run_dir)`` of each plugin) over spectra ``x``."""

    def __init__(self, parts):
        self.parts = parts

    def each(self, x) -> list[np.ndarray]:
        """Each run's predictions of ``x``."""
        return [np.asarray(p(x), dtype=np.float64) for p in self.parts]

    def __call__(self, x) -> np.ndarray:
        return _mean(self.each(x))


def predictor(run_dirs) -> MeanPredictor:
    """The mean of the runs' predictors; ``.each(x)`` gives each run's, for :meth:`Calibrated.interval`."""
    from . import registry

    run_dirs, runs, _ = _runs(run_dirs)
    parts = []
    for d, run in runs.items():
        plugin = registry.load(run["plugin"], run.get("plugin_source"))
        if not hasattr(plugin, "predictor"):
            raise ConfigError(f"{d}: plugin {run['plugin']!r} offers no predictor(run_dir)")
        parts.append(plugin.predictor(d))
    return MeanPredictor(parts)


def _mean(values) -> np.ndarray:
    """Per-row mean of the finite values (NaN where none is)."""
    stacked = np.vstack(values)
    with warnings.catch_warnings():  # rows no run predicts stay NaN without a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.where(np.isfinite(stacked), stacked, np.nan), axis=0)


def spread(values) -> np.ndarray:
    """Per-row half range of the runs' finite predictions (0 where fewer than two runs predict)."""
    stacked = np.vstack(values)
    stacked = np.where(np.isfinite(stacked), stacked, np.nan)
    enough = np.isfinite(stacked).sum(axis=0) >= 2
    with warnings.catch_warnings():  # rows no run predicts: NaN, then 0 below
        warnings.simplefilter("ignore", RuntimeWarning)
        half = (np.nanmax(stacked, axis=0) - np.nanmin(stacked, axis=0)) / 2
    return np.where(enough, half, 0.0)


def predict(store, run_dirs, *, progress: bool = True, wait: float = 0.0, interval: float | None = None) -> str:
    """Predict every spectrum with each run and store their per-spectrum mean as one prediction run.

    Where one run predicts no value (e.g. a peak it cannot integrate) the mean is that of the
    others. ``interval`` adds a cross-conformal band calibrated on the mean of the runs'
    out-of-fold predictions. Returns the new prediction run id.
    """
    from . import domain, intervals, registry
    from .. import predictions as pred_store

    run_dirs, runs, target = _runs(run_dirs)
    calibrated, reach = None, None
    if interval is not None:
        intervals.check_level(interval)
        calibrated = calibrate(run_dirs, interval)
        calibrated.describe(interval)  # refuse an unreachable level before predicting anything
        reach = calibrated.interpolation_r2
    else:
        try:  # the training-side figure, where every run has out-of-fold predictions
            reach = calibrate(run_dirs).interpolation_r2
        except ConfigError:
            reach = None
    results = []
    for d, run in runs.items():
        result = registry.load(run["plugin"], run.get("plugin_source")).predict(store, d, progress=progress)
        if isinstance(result, (list, tuple)) or target not in result.values:
            raise ConfigError(f"{d}: plugin {run['plugin']!r} does not predict {target} over one group of spectra")
        results.append(result)
    if len({r.group for r in results}) != 1:
        raise ConfigError(f"the runs predict different spectra ({', '.join(sorted({r.group for r in results}))}); "
                          "a mean needs runs over the same channels")
    each = [np.asarray(r.values[target], dtype=np.float64) for r in results]
    values = _mean(each)
    provenance = {"runs": [str(Path(d).resolve()) for d in run_dirs], "weights": "equal",
                  "plugins": [run["plugin"] for run in runs.values()], "interpolation_r2": reach}
    kv = {r.provenance.get("tube_kv") for r in results}
    if len(kv) == 1 and None not in kv:
        provenance["tube_kv"] = kv.pop()
    far = domain.beyond({target: values}, runs[run_dirs[0]].get("training_range", {}))
    if far:
        provenance["training_range"] = far
    bounds = None
    if calibrated is not None:
        lower, upper = calibrated.interval(each, interval)
        bounds = {target: tuple(np.where(np.isfinite(values), b, np.nan) for b in (lower, upper))}
        provenance["interval"] = calibrated.describe(interval)
    return pred_store.write_run(store, {target: values}, group=results[0].group, plugin=PLUGIN,
                                provenance=provenance, wait=wait, bounds=bounds)


def training_side(store, run_id: str) -> str:
    """One line for a mean's prediction run: the training-side figure (the mean per-core R2 of the
    interpolation cores, out of fold) of the mean and of each of its runs, the figures to choose on."""
    import json

    from ..api import open as open_store
    from .training import _read_run

    provenance = json.loads(open_store(store, "predictions", run=run_id, index=False).attrs.get("provenance", "{}"))
    if provenance.get("interpolation_r2") is None:
        return ""

    def figure(run_dir):
        try:
            value = _read_run(run_dir).get("metrics", {}).get("interpolation_r2")
        except ConfigError:  # the run folder is gone
            value = None
        return "n/a" if value is None else f"{value:.3f}"

    parts = ", ".join(f"{Path(d).name} {figure(d)}" for d in provenance.get("runs", []))
    return (f"training cores out of fold, mean R2 of the interpolation cores: the mean {provenance['interpolation_r2']:.3f}"
            f" ({parts})")
