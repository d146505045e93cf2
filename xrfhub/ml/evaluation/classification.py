"""``xrfhub evaluate --target phase|phases``: diffraction classifiers compared on held-out series.

The protocol of the spectra evaluation, for patterns: the **held-out series** (``--holdout-cores``)
are the test set and are never trained on; every other labelled pattern is split by the run's seed
into training and validation inside the plugin. Every combination of a model variant, an input
(``raw`` patterns, or ``als``: the published asymmetric-least-squares background removed first)
and a seed is one cell: one ``xrfhub train`` run in ``cells/<model>/<input>/s<seed>/run``, its
scores in ``result.json``. A stopped evaluation resumes at the first cell without a result.

Models are written ``plugin[:key=value[:key=value]]``, e.g. ``mtl-phase:mode=binary`` or
``spectra1d:arch=cnn``; the defaults compare what the 001 and 003 documents compare: for phase sets
the multi-task CNN against one binary CNN per phase, for classes the binned models (003 A and B)
against two of the 1-D networks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import api
from .. import training
from ...errors import ConfigError
from .protocol import Settings
from .run import Cell, claim_folder, run_cells

TARGETS = ("phase", "phases")
INPUTS = {"raw": "none", "als": "als"}  # input name -> the plugins' ``baseline`` setting
DEFAULT_MODELS = {"phases": ("mtl-phase:mode=multitask", "mtl-phase:mode=binary"),
                  "phase": ("panosc-binned", "panosc-binned-learned", "spectra1d:arch=fcnn", "spectra1d:arch=cnn")}


@dataclass(frozen=True)
class ClassifyConfig(Settings):
    """What is compared, and at what budget. ``preset`` and ``sets`` apply to every model (a
    model's own ``key=value`` win); ``grid`` picks the patterns (``common:ID`` to test series
    measured on other grids, see ``xrfhub_xrd``)."""

    target: str = "phases"
    models: tuple[str, ...] = ()  # () = DEFAULT_MODELS[target]
    inputs: tuple[str, ...] = ("raw", "als")
    seeds: tuple[int, ...] = (0, 1, 2)
    preset: str = ""
    sets: tuple[tuple[str, str], ...] = ()
    grid: str = ""

    @classmethod
    def quick(cls, target: str = "phases") -> "ClassifyConfig":
        """Tiny models, two seeds: a smoke test of the whole report in about a minute on a CPU."""
        return cls(target=target, seeds=(0, 1), preset="tiny")

    def model_specs(self) -> list[tuple[str, str, dict[str, str]]]:
        """(label, plugin name, settings) per model variant, checked for form."""
        out = []
        for spec in self.models or DEFAULT_MODELS[self.target]:
            name, *pairs = spec.split(":")
            bad = [p for p in pairs if "=" not in p]
            if not name or bad:
                raise ConfigError(f"model {spec!r}: write plugin[:key=value[:key=value]], e.g. mtl-phase:mode=binary")
            sets = dict(p.split("=", 1) for p in pairs)
            out.append((spec.replace(":", "_").replace("=", "-"), name, sets))
        return out

    def validate(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"target {self.target!r}: diffraction evaluation predicts 'phase' (one class per "
                              "pattern) or 'phases' (a set of phases per pattern)")
        unknown = [i for i in self.inputs if i not in INPUTS]
        if unknown or not self.inputs:
            raise ConfigError(f"inputs {unknown or '()'}: choose among {', '.join(INPUTS)}")
        if not self.seeds:
            raise ConfigError("seeds: give at least one")
        labels = [label for label, _, _ in self.model_specs()]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"models: {list(self.models)} name the same variant twice")


def cells(store, holdout, config: ClassifyConfig) -> list[Cell]:
    """One cell per model variant, input and seed, each a full ``xrfhub train`` run."""
    cells = []
    for label, name, own in config.model_specs():
        for inp in config.inputs:
            for seed in config.seeds:
                sets = {**dict(config.sets), "baseline": INPUTS[inp], "seed": str(seed), **own}
                if config.grid:
                    sets.setdefault("grid", config.grid)

                def run(folder: Path, name=name, sets=sets) -> dict:
                    import shutil

                    shutil.rmtree(folder / "run", ignore_errors=True)  # an unfinished cell is redone from scratch
                    summary = training.train(name, store, stage="train", out=folder / "run", config=config.preset or None,
                                             sets=sets, target=config.target, holdout_cores=holdout, progress=False)
                    return {"metrics": summary.metrics}

                meta = {"model": label, "plugin": name, "settings": own, "input": inp, "seed": seed}
                cells.append(Cell(f"{label}/{inp}/s{seed}", run, meta, keep=True))
    return cells


def check_request(store, holdout, config: ClassifyConfig) -> None:
    """Refuse what cannot give a result before any training: unknown series or plugins."""
    from .. import registry

    config.validate()
    if not holdout:
        raise ConfigError("evaluate needs --holdout-cores: whole series to test on, never trained on")
    ds = api.open(store, "diffraction", grid=config.grid or None)
    known = set(np.unique(ds["core"].values.astype(str)))
    missing = sorted(set(holdout) - known)
    if missing and not config.grid.startswith("common"):
        raise ConfigError(f"--holdout-cores: {', '.join(missing)} not on this diffraction grid (series: "
                          f"{', '.join(sorted(known))}); pick a grid with --set grid=ID or grid=common:ID")
    for _, name, _ in config.model_specs():
        plugin = registry.load(name)
        if config.target not in plugin.targets:
            raise ConfigError(f"model {name!r} predicts {', '.join(plugin.targets)}, not {config.target!r}")


def evaluate(store, holdout_cores, out, *, config: ClassifyConfig | None = None, quick: bool = False,
             target: str = "phases", sets: dict[str, str] | None = None, restart: bool = False,
             progress: bool = True) -> Path:
    """Run (or resume) the comparison; returns the path of the Markdown summary in ``out``."""
    from .classification_report import write_report

    config = config or (ClassifyConfig.quick(target) if quick else ClassifyConfig(target=target))
    if sets:
        config = config.replace(**sets)
    holdout = tuple(dict.fromkeys(map(str, holdout_cores)))
    check_request(store, holdout, config)
    out = claim_folder(out, {"store": str(store), "holdout_cores": list(holdout), "config": config.to_dict()},
                       restart)
    results = run_cells(cells(store, holdout, config), out, progress=progress)
    return write_report(results, out, config=config, holdout=holdout, store=store)
