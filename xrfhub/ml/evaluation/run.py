"""Running the protocol: one folder per cell (a training run and its scores), resumable.

A *cell* is one training run of the protocol: a pre-training, a learning-rate candidate, a point of
a data-amount curve, a few-shot run or a sweep run. Each writes ``cells/<key>/result.json`` when
done; an interrupted evaluation started again skips finished cells and resumes the unfinished one
from its last epoch (the MAX engine checkpoints every epoch). Plugins are reached through the
registry: pre-training runs through ``xrfhub.ml.training.train`` as ``xrfhub train`` does, fine-tunes
through each plugin's ``fit_pairs`` on the protocol's splits.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ... import api
from .. import registry, training
from ...errors import ConfigError
from ..loaders import labelled_samples
from ..metrics import regression_metrics
from . import mean
from .protocol import ALL, EvalConfig, Pairs, amounts_for, check_no_leak, make_splits

CELLS = "cells"
HELD_OUT_FILE = "held_out_predictions.csv"  # written by the diffraction plugins next to run.json
RESULT = "result.json"
SETTINGS = "evaluation.json"
MODELS = ("max", "scratch", "baseline", "logratio")  # MAX, the same ViT from scratch, Lee et al. 2022, log-ratios
_MODEL_FILES = ("model.safetensors", "best.safetensors", "optimizer.safetensors", "trainer_state.json")


@dataclass
class Cell:
    key: str  # also its folder under cells/
    run: Callable[[Path], dict]
    meta: dict = field(default_factory=dict)
    keep: bool = False  # keep the model files (pre-trained autoencoders are used by later cells)


def load_pairs(store, target: str) -> Pairs:
    x, y, cores, _ = labelled_samples(store, target)
    return Pairs(np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float64), np.asarray(cores).astype(str))


def check_inputs(store, holdout, config: EvalConfig) -> dict[str, Pairs]:
    """The pairs of every target, after checking the store can carry the protocol."""
    if not holdout:
        raise ConfigError("evaluate needs --holdout-cores: whole cores to test on, never trained on")
    spectra = api.open(store, "spectra", index=False)
    known = set(np.unique(spectra["core"].values.astype(str)))
    missing = sorted(set(holdout) - known)
    if missing:
        raise ConfigError(f"--holdout-cores: {', '.join(missing)} not in the store (its cores with spectra: "
                          f"{', '.join(sorted(known)[:12])}{' ...' if len(known) > 12 else ''})")
    pairs = {}
    for target in config.targets:
        p = load_pairs(store, target)
        held = np.isin(p.cores, holdout)
        if held.sum() < 2 or (~held).sum() < 10:
            raise ConfigError(f"{target}: {int((~held).sum())} labelled pairs outside and {int(held.sum())} inside "
                              "the held-out cores; the protocol needs at least 10 and 2")
        pairs[target] = p
    return pairs


class Evaluation:
    """The cells of one evaluation and what they need (pairs, splits, configurations)."""

    def __init__(self, store, holdout, out, config: EvalConfig, progress: bool = True):
        self.store, self.holdout, self.out, self.config = store, tuple(holdout), Path(out), config
        self.progress = progress
        self.pairs = check_inputs(store, self.holdout, config)
        self.splits = {(t, s): make_splits(p.cores, self.holdout, s, config)
                       for t, p in self.pairs.items() for s in set(config.seeds) | set(config.sweep_seeds)}
        for (target, _), split in self.splits.items():
            check_no_leak(self.pairs[target].cores, split, self.holdout)
        self.max = registry.load("max")
        self.max_config()  # refuse a configuration the cells cannot run before any cell is trained
        self.baseline = registry.load("baseline") if config.baseline else None
        self.logratio = registry.load("logratio") if config.logratio else None
        # the log-ratio calibration integrates peaks: it needs the energy axis of the paired spectra
        samples = api.open(store, "samples", index=False)
        self.energy = api.open(store, "spectra", index=False, channels=samples.sizes.get("channel"))["energy"].values

    # -- configurations ------------------------------------------------------------------------
    def max_config(self, **values):
        sets = dict(self.config.model_sets)
        sets.update({k: str(v) for k, v in values.items()})
        cfg = registry.build_config(self.max, self.config.preset, sets)
        if getattr(cfg, "folds", 0):  # fit_pairs fits one model on the protocol's split
            raise ConfigError("folds cross-fits a run of `xrfhub train`; the evaluation makes its own splits: "
                              "drop --set folds")
        return cfg

    @staticmethod
    def variant(mask: float, transform: str) -> str:
        return f"mask{mask:g}-{transform}"

    def variants(self) -> list[tuple[float, str]]:
        c = self.config
        found = [(c.mask_ratio, c.transform)] + [(r, c.transform) for r in c.mask_ratios] \
            + [(c.mask_ratio, t) for t in c.transforms]
        return list(dict.fromkeys(found))

    def autoencoder(self, mask: float, transform: str) -> Path:
        return self.out / CELLS / "pretrain" / self.variant(mask, transform)

    # -- the cells ------------------------------------------------------------------------------
    def cells(self) -> list[Cell]:
        c = self.config
        cells = [self._pretrain_cell(m, t) for m, t in self.variants()]
        for target in c.targets:
            for model in ("max", "scratch"):
                if len(c.finetune_lrs) > 1:
                    cells += [self._fit_cell("tune", model, target, ALL, c.protocol_seed, lr=lr)
                              for lr in c.finetune_lrs]
            for seed in c.seeds:
                n_train = len(self.splits[target, seed].train)
                for amount in amounts_for(c.amounts, n_train):
                    for model in self.models():
                        cells.append(self._fit_cell("amount", model, target, amount, seed))
                    if self.averaged():
                        cells.append(self._mean_cell("amount", target, seed, amount))
                pool = len(self.splits[target, seed].fewshot_pool)
                for amount in amounts_for(c.fewshot_amounts, pool):
                    cells.append(self._fit_cell("fewshot", "max", target, amount, seed))
            if c.interval > 0:
                for seed in c.seeds:
                    cells += [self._interval_cell(model, target, seed) for model in self.models()]
                    if self.averaged():
                        cells.append(self._mean_cell("interval", target, seed))
            for mask, transform in self.variants():
                if (mask, transform) == (c.mask_ratio, c.transform):
                    continue  # the main autoencoder's runs are the data-amount runs at "all"
                for seed in c.sweep_seeds:
                    cells.append(self._fit_cell("sweep", "max", target, ALL, seed, variant=(mask, transform)))
        return cells

    def models(self) -> list[str]:
        """The models of the data-amount curves: MAX and scratch always, the baselines when asked."""
        return [m for m in MODELS if m in ("max", "scratch") or (m == "baseline" and self.baseline is not None)
                or (m == "logratio" and self.logratio is not None)]

    def averaged(self) -> bool:
        """Whether the mean of MAX and the log-ratio calibration is scored (when both are fitted)."""
        return set(mean.PARTS) <= set(self.models())

    def _mean_cell(self, kind: str, target: str, seed: int, amount=None) -> Cell:
        """The per-pair mean of the parts' finished cells of the same kind, split and seed (no fit)."""
        label = f"n{amount}/s{seed}" if kind == "amount" else f"s{seed}"
        keys = [f"{kind}/{model}/{target}/{label}" for model in mean.PARTS]
        meta = {"kind": kind, "model": mean.MODEL, "target": target, "seed": seed}
        if kind == "amount":
            meta["amount"] = amount

        def run(folder: Path) -> dict:
            parts = [read_result(self.out, key) for key in keys]
            if kind == "amount":
                return mean.amount_result(keys, parts)
            return mean.interval_result(keys, parts, target, self.config.interval_method, self.config.interval)

        return Cell(f"{kind}/{mean.MODEL}/{target}/{label}", run, meta)

    def _pretrain_cell(self, mask: float, transform: str) -> Cell:
        c = self.config
        sets = dict(c.model_sets)
        sets.update(mask_ratio=str(mask), transform=transform, epochs=str(c.pretrain_epochs), lr=str(c.pretrain_lr),
                    pretrain_spectra=str(c.pretrain_spectra), seed=str(c.protocol_seed),
                    warmup_epochs=str(max(c.pretrain_epochs / 10, 0.5)))

        def run(folder: Path) -> dict:
            summary = training.train("max", self.store, stage="pretrain", out=folder, config=c.preset, sets=sets,
                                     holdout_cores=self.holdout, progress=False, resume=True)
            return {"metrics": summary.metrics}

        key = f"pretrain/{self.variant(mask, transform)}"
        return Cell(key, run, {"kind": "pretrain", "mask_ratio": mask, "transform": transform}, keep=True)

    def chosen_lr(self, model: str, target: str) -> float:
        """The fine-tune learning rate with the lowest validation RMSE among the candidates."""
        lrs = self.config.finetune_lrs
        if len(lrs) == 1:
            return lrs[0]
        scores = {lr: read_result(self.out, f"tune/{model}/{target}/lr{lr:g}")["val"]["rmse"] for lr in lrs}
        return min(scores, key=scores.get)

    def _fit_cell(self, kind: str, model: str, target: str, amount, seed: int, lr: float | None = None,
                  variant: tuple[float, str] | None = None) -> Cell:
        c = self.config
        label = f"lr{lr:g}" if kind == "tune" else f"n{amount}/s{seed}"
        if variant is not None:
            label = f"{self.variant(*variant)}/{label}"
        key = f"{kind}/{model}/{target}/{label}"
        meta = {"kind": kind, "model": model, "target": target, "amount": amount, "seed": seed}
        if variant is not None:
            meta.update(mask_ratio=variant[0], transform=variant[1])

        def run(folder: Path) -> dict:
            pairs, split = self.pairs[target], self.splits[target, seed]
            if kind == "fewshot":
                draw = split.fewshot(amount, seed)
                cut = max(1, int(round(c.val_fraction * len(draw)))) if len(draw) > 1 else 0
                train_idx, val_idx, test_idx = draw[cut:], draw[:cut], split.fewshot_test
            else:
                train_idx, val_idx, test_idx = split.amount(amount), split.val, split.test
            val_idx = np.random.default_rng([seed, 3]).permutation(val_idx)[: c.val_limit]
            train, val, test = pairs.take(train_idx), pairs.take(val_idx), pairs.take(test_idx)
            chosen = lr if lr is not None else (self.chosen_lr(model, target) if model in ("max", "scratch") else None)
            start = time.perf_counter()
            fitted, epochs = self._fit(model, target, train, val, folder, seed, chosen, variant, kind)
            result = {"n_train": len(train), "n_val": len(val), "lr": chosen, "epochs": epochs,
                      "best_epoch": fitted.best_epoch, "seconds": round(time.perf_counter() - start, 2)}
            val_pred = np.asarray(fitted.predict(val.x), dtype=np.float64)
            result["val"] = regression_metrics(val.y, val_pred, fitted.train_mean)
            result["val_y"], result["val_pred"] = val.y.tolist(), val_pred.tolist()  # for the derived mean
            if kind != "tune":  # learning-rate candidates are never scored on the test cores
                pred = np.asarray(fitted.predict(test.x), dtype=np.float64)
                result["test"] = regression_metrics(test.y, pred, fitted.train_mean)
                result["test_index"] = test_idx.tolist()
                result["y"], result["pred"] = test.y.tolist(), pred.tolist()
                result["train_mean"] = fitted.train_mean
                if kind == "amount" and model == "max":
                    result["zero_shot_index"] = split.fewshot_test.tolist()
            return result

        return Cell(key, run, meta)

    def _interval_cell(self, model: str, target: str, seed: int) -> Cell:
        """Calibrated intervals: whole cores of the training part are held apart (seeded), the model
        is fitted on the rest, calibrated on them (split conformal) and scored on the held-out cores."""
        from .. import intervals

        c = self.config
        if c.interval_method not in (intervals.METHOD, intervals.METHOD_CORES):
            raise ConfigError(f"interval_method={c.interval_method}: the evaluation holds calibration cores apart; "
                              f"use {intervals.METHOD} or {intervals.METHOD_CORES}")

        def run(folder: Path) -> dict:
            pairs, split = self.pairs[target], self.splits[target, seed]
            inside = np.concatenate([split.train, split.val])
            cal_cores = intervals.choose_cores(pairs.cores[inside], seed=seed, fraction=c.calibration_fraction)
            in_cal = np.isin(pairs.cores, cal_cores)
            train_idx, cal_idx = split.train[~in_cal[split.train]], np.sort(inside[in_cal[inside]])
            val_idx = np.random.default_rng([seed, 3]).permutation(split.val[~in_cal[split.val]])[: c.val_limit]
            train, val, cal, test = (pairs.take(i) for i in (train_idx, val_idx, cal_idx, split.test))
            chosen = self.chosen_lr(model, target) if model != "baseline" else None
            start = time.perf_counter()
            fitted, epochs = self._fit(model, target, train, val, folder, seed, chosen, None, "interval")
            cal_pred = np.asarray(fitted.predict(cal.x), dtype=np.float64)  # kept for the mean of two models
            calibration = intervals.calibrate(fitted.predict, cal.x, cal.y, cal.cores, target,
                                              method=c.interval_method, level=c.interval, pred=cal_pred)
            pred = np.asarray(fitted.predict(test.x), dtype=np.float64)
            lower, upper = calibration.interval(pred, c.interval)
            return {"n_train": len(train), "n_val": len(val), "n_calibration": len(cal), "lr": chosen,
                    "epochs": epochs, "calibration_cores": cal_cores, "seconds": round(time.perf_counter() - start, 2),
                    "val": regression_metrics(val.y, fitted.predict(val.x), fitted.train_mean),
                    "train_mean": fitted.train_mean,
                    "test": regression_metrics(test.y, pred, fitted.train_mean),
                    **intervals.held_out(test.y, lower, upper, test.cores, c.interval, calibration.describe(c.interval)),
                    # the pairs behind the interval, so that the mean of two models is calibrated on them too
                    "calibration_pairs": {"y": cal.y.tolist(), "pred": cal_pred.tolist(),
                                          "cores": cal.cores.tolist()},
                    "y": test.y.tolist(), "pred": pred.tolist(), "cores": test.cores.tolist()}

        return Cell(f"interval/{model}/{target}/s{seed}", run,
                    {"kind": "interval", "model": model, "target": target, "seed": seed})

    def _fit(self, model: str, target: str, train: Pairs, val: Pairs, folder: Path, seed: int, lr, variant, kind):
        c = self.config
        if model == "baseline":
            cfg = registry.build_config(self.baseline, None, {"seed": str(seed)})
            fitted = self.baseline.fit_pairs(train.x, train.y, val.x, val.y, target=target, config=cfg, out=folder,
                                             groups=train.cores)
            return fitted, None
        if model == "logratio":
            cfg = registry.build_config(self.logratio, None, {"seed": str(seed)})
            fitted = self.logratio.fit_pairs(train.x, train.y, val.x, val.y, target=target, config=cfg, out=folder,
                                             groups=train.cores, energy=self.energy)
            return fitted, None
        epochs = c.epochs_for(len(train))
        mask, transform = variant or (c.mask_ratio, c.transform)
        cfg = self.max_config(mask_ratio=mask, transform=transform, finetune_lr=lr, epochs=epochs, batch=c.batch,
                              seed=seed)
        init = None if model == "scratch" else self.autoencoder(mask, transform)
        fitted = self.max.fit_pairs(train.x, train.y, val.x, val.y, target=target, config=cfg, out=folder,
                                    init=init, progress=False, resume=True)
        return fitted, epochs

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> list[dict]:
        """Run every unfinished cell in order; returns every cell's result."""
        return run_cells(self.cells(), self.out, progress=self.progress)


def run_cells(cells: list[Cell], out: Path, *, progress: bool = True) -> list[dict]:
    """Run the cells without a ``result.json`` in order (a progress bar over all of them), each
    result written atomically; model files of cells not marked ``keep`` are dropped after."""
    from tqdm.auto import tqdm

    todo = [cell for cell in cells if not (out / CELLS / cell.key / RESULT).is_file()]
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="evaluate", unit="run", disable=not progress)
    for cell in todo:
        bar.set_postfix_str(cell.key)
        folder = out / CELLS / cell.key
        folder.mkdir(parents=True, exist_ok=True)
        result = {"cell": cell.key, **cell.meta, **cell.run(folder)}
        write_json_atomic(folder / RESULT, result)
        if not cell.keep:
            for name in _MODEL_FILES:  # a lost result then retrains from the start
                (folder / name).unlink(missing_ok=True)
        bar.update(1)
    bar.close()
    return [read_result(out, cell.key) for cell in cells]


def read_result(out, key: str) -> dict:
    path = Path(out) / CELLS / key / RESULT
    if not path.is_file():
        raise ConfigError(f"{path}: missing; run the evaluation (it resumes) before reading this cell")
    return json.loads(path.read_text())


def write_json_atomic(path: Path, value: Any) -> None:
    """Write then rename, so an interrupted run never leaves a half result that looks finished."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1, default=float))
    tmp.replace(path)


def claim_folder(out, settings: dict, restart: bool = False) -> Path:
    """Make ``out`` the folder of an evaluation with ``settings`` (JSON-able) and record them there.

    A folder that holds another evaluation's results is refused unless ``restart`` (which
    forgets its finished cells): resuming only makes sense with the same settings.
    """
    out = Path(out)
    if restart:
        clear(out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / SETTINGS
    if saved.is_file() and not restart and json.loads(saved.read_text()) != json.loads(json.dumps(settings)):
        raise ConfigError(f"{out} holds an evaluation with other settings ({saved}); give the same settings "
                          "to resume it, another --out, or --restart to start over")
    saved.write_text(json.dumps(settings, indent=1))
    return out


def clear(out) -> None:
    """Forget every finished cell (``--restart``)."""
    shutil.rmtree(Path(out) / CELLS, ignore_errors=True)
