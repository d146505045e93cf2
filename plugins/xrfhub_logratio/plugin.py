"""Log-ratio calibration (Weltje & Tjallingii 2008; MLC, Weltje et al. 2015) as an xrfhub model plugin.

Same protocol as the other plugins: held-out cores are removed before anything is fitted or
chosen; the labelled pairs of the other cores are split by seed into a training and a validation
part; the denominator (and numerator or ridge strength) is chosen by cross-validation over whole
training cores (:mod:`.model`); validation and held-out scores are only reported.

Intensities come from the store's element tables when it has them (``source=auto``), else from
net peak areas integrated on the spectra at xraylib line energies (:mod:`.features`). Predictions
are written back like any plugin's: per spectrum (spectra source) or per element-table point.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import xrfhub
from xrfhub.errors import ConfigError
from xrfhub.ml.metrics import regression_metrics
from xrfhub.ml.registry import FittedRegressor, Predictions, RunSummary

from .features import DEFAULT_ELEMENTS, PeakAreas, table_pairs
from .model import ARRAYS_FILE, FORMS, TRANSFORMS, LogRatioModel

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
SOURCES = ("auto", "elements", "spectra")


@dataclass(frozen=True)
class LogRatioConfig:
    """Settings of a log-ratio calibration; every default is stated in the plugin's docs (README)."""

    form: str = "mlc"  # mlc: all log-ratios to one denominator (ridge); alr: one log-ratio (W&T 2008)
    source: str = "auto"  # auto: element tables when the store has them, else peak areas of spectra
    target_transform: str = "auto"  # auto: logit or log by CV when 0 <= y < 100, else log; log; logit (wt%); none
    elements: tuple[str, ...] = ()  # element symbols; empty: every table line, or Al Si S Cl K Ca Ti Mn Fe
    denominators: tuple[str, ...] = ()  # candidates for the denominator; empty: every line used
    alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # ridge strengths tried (mlc), per standardised sample
    folds: int = 5  # cross-validation folds of whole training cores
    min_detected: float = 0.8  # a line is used when detected (> 0) in this fraction of training samples
    min_counts: float = 20.0  # ... and its median training area is at least this (counting statistics)
    max_denominators: int = 6  # denominator candidates: the strongest lines (median area); ignored with denominators
    half_width_kev: float = 0.12  # peak window half-width for spectra (about a 10 kV peak's FWHM)
    window_mm: float = 5.0  # element-table points within this distance of a sample's mid-depth are paired
    tube_kv: float = 10.0  # spectra of this voltage are paired and predicted (spectra source)
    seed: int = 0
    val_fraction: float = 0.2
    batch: int = 1024  # spectra per prediction batch
    drift: bool = False  # correct intensities per instrument state (tube, head, date) before calibrating
    drift_reference: str = ""  # the state others are corrected to; empty: the state with the most points
    drift_tolerance_mm: float = 0.5  # points of one core this close in depth, in two states, are one material
    date_breaks: tuple[str, ...] = ()  # dates of tube or head changes the files do not record (ISO dates)

    def validate(self) -> None:
        def bad(key, expected):
            raise ConfigError(f"config key {key!r}: expected {expected}, got {getattr(self, key)!r}")

        if self.form not in FORMS:
            bad("form", " or ".join(FORMS))
        if self.source not in SOURCES:
            bad("source", ", ".join(SOURCES))
        if self.target_transform not in TRANSFORMS:
            bad("target_transform", ", ".join(TRANSFORMS))
        if self.folds < 2:
            bad("folds", "at least 2")
        if not 0 < self.min_detected <= 1:
            bad("min_detected", "a fraction in (0, 1]")
        if not self.alphas or min(self.alphas) < 0:
            bad("alphas", "a comma-separated list of non-negative numbers")
        if not self.half_width_kev > 0:
            bad("half_width_kev", "a positive number (keV)")
        if not self.window_mm >= 0:
            bad("window_mm", "a non-negative distance (mm)")
        if not 0 < self.val_fraction < 1:
            bad("val_fraction", "a fraction between 0 and 1")
        if self.batch < 1:
            bad("batch", "a positive integer")
        if not self.drift_tolerance_mm >= 0:
            bad("drift_tolerance_mm", "a non-negative distance (mm)")
        if self.min_counts < 0:
            bad("min_counts", "a non-negative number of counts")
        if self.max_denominators < 1:
            bad("max_denominators", "a positive integer")


def _has(store, kind: str) -> bool:
    from xrfhub.store import hub, layout

    gen, _ = xrfhub.api.resolve(store)
    return kind in hub.groups(f"{gen}/{layout.HUB}")


def _source(store, config: LogRatioConfig) -> str:
    if config.source != "auto":
        if not _has(store, config.source):
            raise ConfigError(f"source={config.source}: the store holds no {config.source}")
        return config.source
    if _has(store, "elements"):
        return "elements"
    if _has(store, "spectra"):
        return "spectra"
    raise ConfigError("the store holds neither element tables nor spectra to calibrate")


def _peaks_for(store, config: LogRatioConfig, channels: int | None = None) -> PeakAreas:
    ds = xrfhub.open(store, "spectra", index=False, channels=channels)
    return PeakAreas(ds["energy"].values, config.elements or DEFAULT_ELEMENTS, config.half_width_kev)


def _model_peaks(run_dir, model, peaks: PeakAreas) -> PeakAreas:
    """``peaks`` if they integrate the lines the run's model was fitted on, else a refusal."""
    if peaks.lines != model.lines:
        raise ConfigError(f"the run in {run_dir} was trained on lines {model.lines}, the config gives {peaks.lines}")
    return peaks


def _pairs(store, target, config, source, *, cores=None, exclude_cores=None):
    """(intensities, y, cores, lines, how) of the labelled samples of the selected cores."""
    if source == "elements":
        return table_pairs(store, target, lines=config.elements, window_mm=config.window_mm, cores=cores,
                           exclude_cores=exclude_cores)
    from xrfhub.ml.loaders import labelled_samples

    x, y, core, _ = labelled_samples(store, target, cores=cores, exclude_cores=exclude_cores)
    samples = xrfhub.open(store, "samples", index=False)
    peaks = _peaks_for(store, config, samples.sizes.get("channel"))
    return peaks(x), y, core, peaks.lines, {"pairing": "the store's alignment (mean matched spectra)",
                                             "peak_areas": peaks.describe()}


def _drift_pairs(store, target, config, source, holdout, out, progress):
    """Pairs from drift-corrected point intensities; the correction is fitted on training cores only,
    saved beside the model and recorded in the metrics. Returns the pairs and a held-out getter."""
    from . import drift
    from .points import paired, point_intensities

    areas, points, lines, _ = point_intensities(store, config, source, progress=progress)
    states, columns = drift.instrument_states(points, config.date_breaks)
    core = points["core"].to_numpy().astype(str)
    train = ~np.isin(core, list(holdout))
    correction = drift.fit_correction(areas[train], core[train], points["depth_mm"].to_numpy(float)[train],
                                      states[train], reference=config.drift_reference,
                                      tolerance_mm=config.drift_tolerance_mm, lines=lines)
    correction["state_columns"] = columns
    drift.save(correction, out)
    corrected = drift.apply_correction(areas, states, correction)
    x, y, cores = paired(store, target, corrected, points, window_mm=config.window_mm, exclude_cores=holdout)
    how = {"pairing": f"points within +-{config.window_mm} mm of the sample's mid-depth, drift-corrected "
                      "intensities averaged", "drift": correction}

    def held():
        return paired(store, target, corrected, points, window_mm=config.window_mm, cores=holdout)[:2]

    return x, y, cores, lines, how, held


class LogRatioPlugin:
    """Log-ratio calibration of element intensities to any lab property."""

    name = "logratio"
    description = ("log-ratio calibration (Weltje & Tjallingii 2008; MLC): element intensities -> any lab "
                   "property, denominator chosen by core-grouped cross-validation")
    stages = ("train",)
    targets = ("*",)
    config = LogRatioConfig
    presets = {"alr": {"form": "alr"}, "mlc": {"form": "mlc"}}

    # ------------------------------------------------------------------ training

    def train(self, store, *, stage, out, config, target=None, init=None, holdout_cores=(), progress=True):
        if stage not in self.stages:
            raise ConfigError(f"plugin 'logratio' has no stage {stage!r}; stages: {', '.join(self.stages)}")
        if not target:
            raise ConfigError("logratio needs --target (a lab property of the store, e.g. CaCO3 or Ca)")
        if init is not None:
            raise ConfigError("logratio fits from scratch; --init is only for plugins with a pre-training stage")
        config.validate()
        holdout = tuple(holdout_cores)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        source = _source(store, config)
        # held-out cores are removed here, before any choice (denominator, ridge, zero floors, drift) is made
        if config.drift:
            x, y, cores, lines, how, held = _drift_pairs(store, target, config, source, holdout, out, progress)
        else:
            x, y, cores, lines, how = _pairs(store, target, config, source, exclude_cores=holdout)
            held = None
        if len(y) < 5:
            raise ConfigError(f"{len(y)} labelled {target} samples paired outside the held-out cores; "
                              "log-ratio calibration needs at least 5")
        is_val = np.random.default_rng(config.seed).random(len(y)) < config.val_fraction
        if is_val.all() or not is_val.any():
            is_val = np.arange(len(y)) % 5 == 0
        fit = ~is_val
        model = self._model(lines, target, config).fit(x[fit], y[fit], cores[fit])
        model.save(out)
        train_mean = float(y[fit].mean())
        metrics = {"target": target, "source": source, "features": how, "model": model.params(),
                   "training": regression_metrics(y[fit], model.predict(x[fit]), train_mean),
                   "validation": regression_metrics(y[is_val], model.predict(x[is_val]), train_mean)}
        if holdout:
            try:
                hx, hy = held() if held is not None else _pairs(store, target, config, source, cores=holdout)[:2]
            except ConfigError as exc:  # held-out cores without paired lab values: say so, score nothing
                metrics["held_out_note"] = str(exc)
            else:
                metrics["held_out"] = regression_metrics(hy, model.predict(hx), train_mean)
        (out / METRICS_FILE).write_text(json.dumps(metrics, indent=1, default=float))
        run = {"plugin": self.name, "stage": stage, "target": target, "store": str(store),
               "holdout_cores": list(holdout), "init": None, "config": dataclasses.asdict(config),
               "metrics": metrics, "xrfhub_version": xrfhub.__version__,
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        (out / RUN_FILE).write_text(json.dumps(run, indent=1, default=str))
        return RunSummary(out, self.name, stage, target, metrics)

    @staticmethod
    def _model(lines, target, config: LogRatioConfig) -> LogRatioModel:
        return LogRatioModel(lines, form=config.form, transform=config.target_transform, target=target,
                             denominators=config.denominators, alphas=config.alphas, n_folds=config.folds,
                             min_detected=config.min_detected, min_counts=config.min_counts,
                             max_denominators=config.max_denominators)

    def fit_pairs(self, x, y, x_val, y_val, *, target, config: LogRatioConfig, out=None, init=None, progress=False,
                  resume=False, groups=None, energy=None) -> FittedRegressor:
        """Fit on raw spectra already split by ``xrfhub evaluate``: peak areas on ``energy`` (keV per
        channel), denominator chosen over ``groups`` (the core of each pair). Validation pairs are unused."""
        if init is not None:
            raise ConfigError("logratio fits from scratch; it has no pre-trained model to start from")
        if energy is None:
            raise ConfigError("logratio's fit_pairs needs the spectra's energy axis (energy=) to integrate peaks")
        config.validate()
        peaks = PeakAreas(energy, config.elements or DEFAULT_ELEMENTS, config.half_width_kev)
        groups = np.arange(len(y)).astype(str) if groups is None else np.asarray(groups)
        model = self._model(peaks.lines, target, config).fit(peaks(np.asarray(x)), np.asarray(y), groups)
        if out is not None:
            model.save(out)
        return FittedRegressor(lambda counts: model.predict(peaks(np.asarray(counts))), float(np.mean(y)))

    # ------------------------------------------------------------------ using a run

    def load(self, run_dir):
        run_dir = Path(run_dir)
        run = json.loads((run_dir / RUN_FILE).read_text())
        known = {f.name for f in dataclasses.fields(LogRatioConfig)}
        config = LogRatioConfig(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in run["config"].items() if k in known})
        return run, config, LogRatioModel.load(run_dir)

    def predictor(self, run_dir):
        """The fitted calibration of a run as raw counts -> values, for calibrated intervals and
        ``fit.png``. Only a run fitted on peak areas of the spectra has one: a run on element tables,
        or drift-corrected per instrument state, reads inputs a spectrum alone does not carry.
        The peak windows are laid on the energy axis of the store the run was trained on (``run.json``):
        training calls this on that store, to score calibration and held-out cores."""
        run, config, model = self.load(run_dir)
        source = run["metrics"]["source"]
        if source != "spectra" or config.drift:
            why = "drift-corrected intensities" if config.drift else "the store's element tables"
            raise ConfigError(f"the logratio run in {run_dir} was fitted on {why}, not on spectra, so it cannot "
                              "score the mean spectra that calibrate intervals; train it with "
                              "--set source=spectra (and without drift) for --calibration-cores or "
                              "--interval-method")
        samples = xrfhub.open(run["store"], "samples", index=False)
        peaks = _model_peaks(run_dir, model, _peaks_for(run["store"], config, samples.sizes.get("channel")))
        return lambda counts: model.predict(peaks(np.asarray(counts)))

    def predict(self, store, run_dir, *, progress=True) -> Predictions:
        run, config, model = self.load(run_dir)
        source = run["metrics"]["source"]
        provenance = {"run_dir": str(Path(run_dir).resolve()),
                      "model_sha256": hashlib.sha256((Path(run_dir) / ARRAYS_FILE).read_bytes()).hexdigest(),
                      "config": run["config"], "trained": run["created"], "stage": run["stage"],
                      "source": source, "equation": model.equation(), "denominator": model.used[model.denominator]}
        if config.drift:
            from . import drift
            from .points import point_intensities

            correction = drift.load(run_dir)
            areas, points, _, group = point_intensities(store, config, source, lines=model.lines, progress=progress)
            states, _ = drift.instrument_states(points, config.date_breaks)
            corrected = drift.apply_correction(areas, states, correction)
            values = np.full(len(areas), np.nan, dtype=np.float32)
            ok = np.isfinite(corrected).all(axis=1)
            values[ok] = model.predict(corrected[ok])
            known = set(correction["log_factors"]) | {correction["reference"]}
            provenance["drift"] = {"reference": correction["reference"], "corrected_states": sorted(correction["log_factors"]),
                                   "states_left_as_measured": sorted(set(states.astype(str)) - known)
                                   + sorted(correction["uncorrected_states"])}
            return Predictions(group, {run["target"]: values}, provenance)
        if source == "elements":
            from xrfhub.predictions_elements import GROUP

            el = xrfhub.open(store, "elements", index=False)
            have = list(el["line"].values.astype(str))
            missing = [line for line in model.lines if line not in have]
            if missing:
                raise ConfigError(f"the store's element table lacks line(s) {', '.join(missing)} the model in "
                                  f"{run_dir} was trained on")
            areas = el["area"].values[:, [have.index(line) for line in model.lines]].astype(np.float64)
            values = np.full(len(areas), np.nan, dtype=np.float32)
            ok = el["valid"].values.astype(bool) if "valid" in el.coords else np.ones(len(areas), bool)
            values[ok] = model.predict(areas[ok])
            return Predictions(GROUP, {run["target"]: values}, provenance)
        from xrfhub.ml.loaders import predict_spectra

        peaks = _model_peaks(run_dir, model, _peaks_for(store, config))
        group, values = predict_spectra(store, lambda counts: model.predict(peaks(counts)), tube_kv=config.tube_kv,
                                        batch_size=config.batch, progress=progress)
        return Predictions(group, {run["target"]: values}, {**provenance, "tube_kv": config.tube_kv})


plugin = LogRatioPlugin()
