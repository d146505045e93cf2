"""The diffraction classifiers as xrfhub model plugins: trained from the store, predicting into it.

Four plugins, one per recipe of ``recipes.fit``: ``panosc-binned`` and ``panosc-binned-learned``
(003 Models A and B), ``spectra1d`` (003's 1-D models, ``arch`` = fcnn|cnn|transformer|lstm|resnet)
for target ``phase`` (one class per pattern, the store's ``label``), and ``mtl-phase`` (001's
multi-task presence CNN) for target ``phases`` (the store's ``phase_present`` matrix).

Protocol (as for the spectra models, DESIGN section 6): the patterns of one grid
(``diffraction/<grid>``) are read; unlabelled patterns are never trained on; the series named
by ``--holdout-cores`` are the test set, scored and never trained on; the other labelled
patterns are split by ``seed`` into training and validation (``val_fraction``, per class for
class targets so every class with two or more patterns keeps one in training). The recipes
have no use for a validation set while training (full-batch steps, or fixed epochs), so
validation is only reported. A config is the model's published defaults (``config.py``) plus
the store-facing fields ``grid``, ``val_fraction`` and, for the full-batch recipes, ``epochs``
(one full-batch step is one pass over the training set, so ``--epochs N`` means
``iterations=N``).
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
from xrfhub.diffraction import PATTERN_COLUMNS
from xrfhub.errors import ConfigError
from xrfhub.ml.registry import Predictions, RunSummary

from . import report
from .config import CONFIGS, BinnedLearnedConfig, BinnedVoteConfig, MultiTaskConfig, Spectra1DConfig

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
HELD_OUT_FILE = "held_out_predictions.csv"
PHASE, PHASES = "phase", "phases"


# ---------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class StoreSettings:
    """What every diffraction plugin adds to its model's configuration: where the data comes
    from and how the labelled patterns are split (``seed`` is the model's own, shared)."""

    grid: str = ""  # the diffraction grid id ("" = the only one, or the last one listed)
    val_fraction: float = 0.2

    def validate(self) -> None:
        super().validate()  # the model configuration's checks (next in the MRO)
        if not isinstance(self.grid, str):
            raise ConfigError(f"grid must be a grid id (text), got {self.grid!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")

    def model_config(self, model_name: str):
        """The recipe's own configuration object, without the store-facing fields."""
        kind = CONFIGS[model_name]
        return kind(**{f.name: getattr(self, f.name) for f in dataclasses.fields(kind)})


@dataclass(frozen=True)
class FullBatchSettings(StoreSettings):
    """Store fields of the full-batch recipes, whose ``iterations`` are passes over the data."""

    epochs: int | None = None  # None: the recipe's ``iterations``; N: iterations = N

    def validate(self) -> None:
        super().validate()
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(self.epochs, int)
                                        or self.epochs < 1):
            raise ConfigError(f"epochs must be a positive integer (full-batch passes), got {self.epochs!r}")

    def model_config(self, model_name: str):
        config = super().model_config(model_name)
        return config if self.epochs is None else config.replace(iterations=self.epochs)


@dataclass(frozen=True)
class PanoscBinnedSettings(FullBatchSettings, BinnedVoteConfig):
    """003 Model A (published recipe) + store fields."""


@dataclass(frozen=True)
class PanoscBinnedLearnedSettings(FullBatchSettings, BinnedLearnedConfig):
    """003 Model B (published recipe) + store fields."""


@dataclass(frozen=True)
class Spectra1DSettings(FullBatchSettings, Spectra1DConfig):
    """003's 1-D models (published recipe, ``arch`` picks one) + store fields."""


@dataclass(frozen=True)
class MtlPhaseSettings(StoreSettings, MultiTaskConfig):
    """001-inspired multi-task presence CNN (``epochs`` is its own) + store fields."""


def _load_config(kind: type, saved: dict):
    known = {f.name for f in dataclasses.fields(kind)}
    return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in known})


# ---------------------------------------------------------------------------- the store side


def diffraction_grids(store) -> list[str]:
    """Grid ids of the store's diffraction groups, in the hub's order."""
    from xrfhub.api import resolve
    from xrfhub.store import hub, layout

    gen, _ = resolve(store)
    return [g.split("/", 1)[1] for g in hub.groups(f"{gen}/{layout.HUB}").get("diffraction", [])]


def pick_grid(store, grid: str) -> str:
    """``grid`` checked against the store ("" = the only grid, or the last one listed).

    ``"common"`` (every grid resampled onto one axis) and ``"common:ID"`` (onto grid ID's axis)
    are kept as given: the store keeps patterns as measured, and a run trained that way
    resamples on demand and records it.
    """
    grids = diffraction_grids(store)
    if not grids:
        raise ConfigError(f"{store}: the store holds no diffraction patterns; ingest some first "
                          "(xrfhub ingest FOLDER --wavelength ...)")
    grid = grid.removeprefix("diffraction/")
    if not grid:
        return grids[-1]
    name, _, onto = grid.partition(":")
    if name == "common" and (not onto or onto in grids):
        return grid
    wanted = onto if name == "common" else grid
    if wanted not in grids:
        raise ConfigError(f"no diffraction grid {wanted!r} in {store}; grids: {', '.join(grids)} "
                          "(set grid=ID, grid=common or grid=common:ID, or leave it empty for the last)")
    return grid


def is_common(grid: str) -> bool:
    return grid.split(":", 1)[0] == "common"


def read_patterns(store, grid: str):
    """The patterns of ``grid`` as an in-memory dataset. On a common grid, angles a pattern was
    not measured at (NaN after resampling) take that pattern's lowest measured intensity, so
    every model sees finite inputs; ``attrs["filled_points"]`` counts them."""
    ds = xrfhub.open(store, "diffraction", grid=grid).load()
    if not is_common(grid):
        return ds
    gaps = ~np.isfinite(ds["intensity"].values)
    ds["intensity"].values[...] = fill_unmeasured(ds["intensity"].values)
    if "phase_present" in ds:
        # patterns of grids without phase sets (e.g. class-labelled ramps) have none to learn
        # from; a phase missing from a labelled series' list is absent from its patterns
        known = ds["phase_present"].notnull().any("phase").values
        ds = ds.assign_coords(phase_labelled=("pattern", known & (ds["label"].values.astype(str) != "")))
        ds["phase_present"] = ds["phase_present"].fillna(0)
    ds.attrs["filled_points"] = int(gaps.sum())
    return ds


def fill_unmeasured(x: np.ndarray) -> np.ndarray:
    """Patterns with each NaN (an angle not measured) set to that pattern's lowest intensity
    (0 for a pattern with none): the background level, which adds no peak."""
    gaps = ~np.isfinite(x)
    if not gaps.any():
        return x
    low = np.min(np.where(gaps, np.inf, x), axis=1, keepdims=True)
    return np.where(gaps, np.where(np.isfinite(low), low, 0.0), x)


def scan_coordinate(ds) -> str | None:
    """The first per-pattern scan coordinate (e.g. ``pressure_step``) with any finite value."""
    dim = "pattern"
    for name in sorted(ds.coords):
        c = ds[name]
        if (c.dims == (dim,) and name not in (*PATTERN_COLUMNS, "core", "label", "grid")
                and c.dtype.kind in "fiu" and np.isfinite(np.asarray(c.values, dtype=float)).any()):
            return name
    return None


def split(labels_key: np.ndarray, pool: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Validation mask over the rows in ``pool``: per value of ``labels_key`` (stratified),
    ``round(fraction * n)`` rows drawn by ``seed``, leaving at least one for training."""
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(pool), dtype=bool)
    for key in sorted(set(labels_key[pool].tolist())):
        rows = np.flatnonzero(pool & (labels_key == key))
        take = min(int(round(fraction * len(rows))), len(rows) - 1)
        if take > 0:
            is_val[rng.permutation(rows)[:take]] = True
    return is_val


class XrdPlugin:
    """What the four diffraction plugins share; subclasses name the recipe and its settings."""

    name = ""
    description = ""
    stages = ("train",)
    targets: tuple[str, ...] = (PHASE,)
    config: type = StoreSettings
    presets: dict[str, dict] = {}

    # ------------------------------------------------------------------ training

    def train(self, store, *, stage, out, config, target=None, init=None, holdout_cores=(), progress=True,
              resume=False) -> RunSummary:
        from .recipes import fit

        if stage not in self.stages:
            raise ConfigError(f"plugin {self.name!r} has no stage {stage!r}; stages: {', '.join(self.stages)}")
        target = target or self.targets[0]
        if target not in self.targets:
            raise ConfigError(f"plugin {self.name!r} predicts {', '.join(self.targets)}, not {target!r}"
                              + ("; train mtl-phase for phase sets" if target == PHASES else
                                 "; train panosc-binned, panosc-binned-learned or spectra1d for classes"
                                 if target == PHASE else ""))
        if init is not None or resume:
            raise ConfigError(f"plugin {self.name!r} trains from scratch in one go: no --init, no --resume")
        if not isinstance(config, self.config):
            raise ConfigError(f"plugin {self.name!r} takes a {self.config.__name__}, got {type(config).__name__}")
        config.validate()
        grid = pick_grid(store, config.grid)
        ds = read_patterns(store, grid)
        y, labelled, names = self._labels(ds, target, grid)
        cores = ds["core"].values.astype(str)
        holdout = tuple(dict.fromkeys(map(str, holdout_cores)))
        unknown = [c for c in holdout if c not in set(cores)]
        if unknown:
            raise ConfigError(f"--holdout-cores {', '.join(unknown)}: no such series on grid {grid}; "
                              f"series: {', '.join(sorted(set(cores)))}")
        held = np.isin(cores, holdout)
        pool = labelled & ~held
        if pool.sum() < 2:
            raise ConfigError(f"fewer than 2 labelled patterns on grid {grid} outside the held-out series; "
                              "label more patterns (xrfhub ingest LABELS.csv) or hold out less")
        key = ds["label"].values.astype(str)
        is_val = split(key, pool, config.val_fraction, config.seed)
        fit_rows = pool & ~is_val
        x, tt = ds["intensity"].values, ds["two_theta"].values
        fitted = fit(self.name, x[fit_rows], y[fit_rows], tt, config.model_config(self.name), progress,
                     source=f"{store} (diffraction/{grid})")
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        fitted.save(out)
        proba = fitted.predict_proba(x, tt)
        pred = fitted.decide(proba)
        roles = np.where(held & labelled, "held_out", np.where(fit_rows, "training",
                                                               np.where(is_val, "validation", "unlabelled")))
        if not labelled.all():
            roles = np.where(held & ~labelled, "held_out_unlabelled", roles)
        metrics = self._metrics(ds, target, y, pred, proba, roles, fitted, names, holdout)
        ramps = metrics.pop("_ramps")
        picture = report.figure(out / ("ramp.png" if ramps else "confusion.png"),
                                title=f"{self.name} ({target}) on {grid}", ramps=ramps,
                                scores=metrics.get("held_out") or metrics.get("validation"), classes=fitted.classes)
        metrics["figure"] = picture.name if picture else None
        (out / METRICS_FILE).write_text(json.dumps(metrics, indent=1, default=str))
        if held.any():
            report.held_out_table(ds, held, y if target == PHASE else None, pred, proba, fitted.classes,
                                  names, scan=scan_coordinate(ds)).to_csv(out / HELD_OUT_FILE, index=False)
        run = {"plugin": self.name, "stage": stage, "target": target, "store": str(store),
               "holdout_cores": list(holdout), "init": None, "grid": grid, "phases": names,
               "resampling": ({k: v for k, v in ds.attrs.items() if k != "kind"} if is_common(grid) else None),
               "config": dataclasses.asdict(config), "metrics": metrics, "xrfhub_version": xrfhub.__version__,
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        (out / RUN_FILE).write_text(json.dumps(run, indent=1, default=str))
        return RunSummary(out, self.name, stage, target, metrics)

    def _labels(self, ds, target: str, grid: str):
        """(training labels per pattern, labelled mask, phase names or None) for ``target``."""
        label = ds["label"].values.astype(str)
        labelled = label != ""
        if not labelled.any():
            raise ConfigError(f"no pattern on grid {grid} is labelled; ingest a labels table "
                              "(pattern_id,label) with or after the patterns")
        if target == PHASE:
            return label, labelled, None
        if "phase_present" not in ds:
            raise ConfigError(f"target 'phases' needs phase-set labels, but grid {grid} has class labels; "
                              "train a class model (spectra1d, panosc-binned) with --target phase")
        if "phase_labelled" in ds.coords:  # a common grid: only patterns labelled with phase sets
            labelled = labelled & ds["phase_labelled"].values
        return ds["phase_present"].values.astype(np.int64), labelled, [str(p) for p in ds["phase"].values]

    def _metrics(self, ds, target, y, pred, proba, roles, fitted, names, holdout) -> dict:
        scores = {}
        for part in ("training", "validation", "held_out"):
            rows = roles == part
            if part == "held_out" and not holdout:
                continue
            scores[part] = (report.class_scores(y[rows], pred[rows], fitted.classes) if target == PHASE
                            else report.phase_scores(y[rows], pred[rows], names, proba[rows]))
        ramps = []
        scan = scan_coordinate(ds)
        if target == PHASE and scan is not None:
            true = np.where(np.isin(roles, ("unlabelled", "held_out_unlabelled")), "", y)
            ramps = report.ramp_reports(ds["core"].values, np.asarray(ds[scan].values, dtype=float), scan,
                                        true, pred, roles)
        kinds, counts = np.unique(roles, return_counts=True)
        cores = ds["core"].values.astype(str)
        return {"target": target, "model": self.name, "classes": [str(c) for c in fitted.classes],
                "phases": names, "split": {**dict(zip(kinds.tolist(), counts.tolist())),
                                           "training_series": sorted(set(cores[roles == "training"])),
                                           "validation_patterns": sorted(ds["pattern_id"].values[
                                               roles == "validation"].astype(str).tolist())},
                **scores, "ramp_report": report.public(ramps), "_ramps": ramps,
                "fit": {"seconds": fitted.fit_seconds, "final_loss": fitted.history[-1] if fitted.history else None,
                        "steps": len(fitted.history), **fitted.info}}

    # ------------------------------------------------------------------ using a run

    def load(self, run_dir):
        """The run's record, its configuration and its fitted model."""
        from .recipes import Fitted

        run_dir = Path(run_dir)
        path = run_dir / RUN_FILE
        if not path.is_file():
            raise ConfigError(f"{run_dir}: not a training run folder (no {RUN_FILE})")
        run = json.loads(path.read_text())
        if run.get("plugin") != self.name:
            raise ConfigError(f"{run_dir} is a {run.get('plugin')!r} run, not {self.name!r}")
        return run, _load_config(self.config, run["config"]), Fitted.load(run_dir)

    def predict(self, store, run_dir, *, progress=True) -> Predictions | list[Predictions]:
        """Every pattern of the run's grid: the class (or presence per phase) and its confidence.

        A run trained on a common grid predicts every grid of the store, each resampled onto
        the training axis as in training; it returns one :class:`Predictions` per grid.
        """
        from xrfhub.diffraction import on_common_grid

        from .recipes import WEIGHTS_FILE

        run, config, fitted = self.load(run_dir)
        grid, grids = run["grid"], diffraction_grids(store)
        digest = hashlib.sha256((Path(run_dir) / WEIGHTS_FILE).read_bytes()).hexdigest()
        provenance = {"run_dir": str(Path(run_dir).resolve()), "model_sha256": digest, "target": run["target"],
                      "phases": run.get("phases") or [], "classes": run["metrics"]["classes"],
                      "config": run["config"], "trained": run["created"], "stage": run["stage"],
                      "holdout_cores": run["holdout_cores"]}
        if not is_common(grid):
            if grid not in grids:
                raise ConfigError(f"{store} holds no diffraction grid {grid!r}, which {run_dir} was trained on; "
                                  "the model only reads patterns on its training grid")
            ds = xrfhub.open(store, "diffraction", grid=grid)
            return Predictions(f"diffraction/{grid}", self._values(fitted, run["target"], ds, f"{store} ({grid})"),
                               provenance)
        out = []
        for g in grids:
            ds = on_common_grid([xrfhub.open(store, "diffraction", grid=g)], fitted.two_theta)
            out.append(Predictions(f"diffraction/{g}", self._values(fitted, run["target"], ds, f"{store} ({g})",
                                                                    fill=True),
                                   {**provenance, "resampled_onto": "training grid of the run"}))
        return out

    @staticmethod
    def _values(fitted, target: str, ds, source: str, fill: bool = False) -> dict:
        tt = ds["two_theta"].values
        step = 1024  # patterns per batch: bounds memory whatever the grid holds
        parts = []
        for i in range(0, ds.sizes["pattern"], step):
            x = np.asarray(ds["intensity"][i:i + step].values, dtype=np.float64)
            if fill:  # as read_patterns does for training
                x = fill_unmeasured(x)
            parts.append(fitted.predict_proba(x.astype(np.float32), tt, source=source))
        proba = np.concatenate(parts) if parts else np.zeros((0, len(fitted.classes)))
        if target == PHASE:  # as Fitted.predict: the most probable class, ties to the earlier
            return {PHASE: np.asarray(fitted.classes)[proba.argmax(axis=1)].astype(str).astype(object),
                    f"{PHASE}_confidence": proba.max(axis=1).astype(np.float32)}
        present = proba >= fitted.config.threshold
        return {PHASES: present.astype(np.int8), f"{PHASES}_probability": proba.astype(np.float32),
                # the least certain of the phase decisions
                f"{PHASES}_confidence": np.where(present, proba, 1 - proba).min(axis=1).astype(np.float32)}


# ---------------------------------------------------------------------------- the four plugins


class PanoscBinned(XrdPlugin):
    name = "panosc-binned"
    description = ("PaNOSC Model A (003): per-bin MLPs on (2-theta, intensity) points, believability-weighted "
                   "votes; one class per pattern (torch)")
    config = PanoscBinnedSettings
    presets = {"published": {}, "tiny": {"iterations": 5, "bins": 5, "hidden": 16, "copies": 1}}


class PanoscBinnedLearned(XrdPlugin):
    name = "panosc-binned-learned"
    description = ("PaNOSC Model B (003): per-bin subnets with a learned combination, early stop on loss or "
                   "accuracy; one of two classes per pattern (torch)")
    config = PanoscBinnedLearnedSettings
    presets = {"published": {}, "tiny": {"iterations": 5, "bins": 5, "hidden": 16, "copies": 1}}


class Spectra1D(XrdPlugin):
    name = "spectra1d"
    description = ("003's 1-D pattern classifiers (arch = fcnn, cnn, transformer, lstm, resnet); one class per "
                   "pattern (torch)")
    config = Spectra1DSettings
    presets = {"published": {}, "tiny": {"arch": "fcnn", "iterations": 20, "fcnn_hidden": (32,), "copies": 1}}


class MtlPhase(XrdPlugin):
    name = "mtl-phase"
    description = ("Multi-task phase-presence CNN after 001 (mode = multitask or binary), per-task weighted BCE; "
                   "which phases are in each pattern (torch)")
    targets = (PHASES,)
    config = MtlPhaseSettings
    presets = {"published": {}, "tiny": {"epochs": 3, "channels": (8,), "head_hidden": 8, "batch": 16}}


panosc_binned = PanoscBinned()
panosc_binned_learned = PanoscBinnedLearned()
spectra1d = Spectra1D()
mtl_phase = MtlPhase()
