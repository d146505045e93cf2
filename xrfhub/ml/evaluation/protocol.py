"""The evaluation protocol as data: what is trained on what, and scored on what (DESIGN section 6).

Everything here is plain numpy and deterministic, so the splits can be tested on their own:

- the **held-out cores** are the test set. Pre-training never sees their spectra; the data-amount
  runs never see their pairs;
- the pairs of the other cores are split 80/20 by seed into a training part and a validation part;
  the validation part chooses epochs and the learning rate, never the test set;
- a data amount ``n`` takes the first ``n`` pairs of a seeded permutation of the training part, so
  the subsets of one seed are nested (10 within 50 within 100 ...);
- few-shot: the held-out pairs are split once (protocol seed, not the run's seed) into a pool
  that few-shot runs may train on and a fixed **few-shot test part** that no run trains on. Zero-shot
  and few-shot scores are both taken on that part.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ...errors import ConfigError

ALL = "all"  # a data amount: every pair of the training part


class Settings:
    """What the evaluation settings share: ``--set`` overrides converted to the fields' types."""

    def replace(self, **values):
        """A copy with ``--set``-style string values converted to the fields' types."""
        current = dataclasses.asdict(self)
        unknown = sorted(set(values) - set(current))
        if unknown:
            raise ConfigError(f"unknown evaluation setting(s) {unknown}; valid: {', '.join(current)}")
        out = {}
        for key, raw in values.items():
            default = current[key]
            try:
                out[key] = _convert(raw, default, pairs=key in ("model_sets", "sets"))
            except ValueError as exc:
                raise ConfigError(f"evaluation setting {key}={raw!r}: {exc}") from None
        return dataclasses.replace(self, **out)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EvalConfig(Settings):
    """The protocol and its compute budget. Defaults are what ran on a 2-core CPU (docs/results.md);
    raise the budget with ``--set`` on a GPU (``pretrain_spectra=0`` is every spectrum)."""

    targets: tuple[str, ...] = ("CaCO3", "TOC")
    seeds: tuple[int, ...] = (0, 1, 2)
    amounts: tuple = (10, 50, 100, 500, 1000, ALL)
    fewshot_amounts: tuple = (10, 50, 100, 250)
    fewshot_test_fraction: float = 0.3
    val_fraction: float = 0.2
    val_limit: int = 150  # validation pairs scored each epoch (a seeded subset of the part)
    preset: str = "tiny"
    model_sets: tuple[tuple[str, str], ...] = ()  # extra MAX config, e.g. (("width", "64"),)
    mask_ratio: float = 0.5
    transform: str = "instance"
    mask_ratios: tuple[float, ...] = (0.3, 0.5, 0.7)  # swept with `transform`
    transforms: tuple[str, ...] = ("instance", "channel", "log")  # swept at `mask_ratio`
    sweep_seeds: tuple[int, ...] = (0, 1, 2)
    pretrain_spectra: int = 16000
    pretrain_epochs: int = 5
    pretrain_lr: float = 1e-4
    finetune_lrs: tuple[float, ...] = (1e-4, 1e-3)  # chosen on validation, per model and target
    finetune_budget: int = 2500  # pair presentations aimed at per fine-tune (sets the epochs)
    min_epochs: int = 3
    max_epochs: int = 30
    batch: int = 32
    baseline: bool = True
    logratio: bool = True  # the log-ratio calibration (Weltje & Tjallingii 2008; MLC) beside MAX and the baseline
    bootstrap: int = 1000
    protocol_seed: int = 0
    interval: float = 0.0  # a coverage level (e.g. 0.9) adds calibrated-interval runs per model and seed; 0: none
    calibration_fraction: float = 0.25  # of the training cores, held apart to calibrate those intervals
    interval_method: str = "split-conformal"  # or "split-conformal-cores" (xrfhub.ml.intervals)

    @classmethod
    def quick(cls) -> "EvalConfig":
        """A reduced protocol that runs in a few minutes on a CPU (smoke test of the whole report)."""
        micro = (("width", "32"), ("depth", "1"), ("heads", "2"), ("decoder_width", "32"),
                 ("decoder_depth", "1"), ("decoder_heads", "2"))
        return cls(seeds=(0, 1), amounts=(10, ALL), fewshot_amounts=(10,), mask_ratios=(0.5, 0.7),
                   transforms=("instance", "log"), sweep_seeds=(0,), model_sets=micro, pretrain_spectra=400,
                   pretrain_epochs=2, finetune_lrs=(1e-3,), finetune_budget=300, min_epochs=1, max_epochs=4,
                   val_limit=64, bootstrap=200)

    def epochs_for(self, n_pairs: int) -> int:
        """Epochs of a fine-tune on ``n_pairs``: about ``finetune_budget`` presentations, within
        ``[min_epochs, max_epochs]`` (small sets get more passes, large ones at least two)."""
        wanted = -(-self.finetune_budget // max(int(n_pairs), 1))
        return int(min(self.max_epochs, max(self.min_epochs, wanted)))


def _convert(raw, default, pairs: bool = False):
    """A ``--set`` string as the type of ``default`` (tuples are comma-separated)."""
    if not isinstance(raw, str):
        return raw
    if isinstance(default, bool):
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError("expected true or false")
        return raw.lower() in ("true", "1", "yes")
    if not isinstance(default, tuple):
        return type(default)(raw)
    items = [item.strip() for item in raw.split(",") if item.strip()]
    kind = type(default[0]) if default else str
    if pairs:  # model_sets: "width=64,depth=2"
        return tuple(tuple(item.split("=", 1)) for item in items)
    if kind is float:
        return tuple(float(item) for item in items)
    if kind is int:  # seeds and data amounts (which may say "all")
        return tuple(_amount(item) for item in items)
    return tuple(items)


def _amount(value: str):
    if value == ALL:
        return ALL
    number = float(value)
    return int(number) if number.is_integer() else number


# ---------------------------------------------------------------------------- splits


@dataclass
class Pairs:
    """Labelled pairs of one target: mean matched spectra, values (wt%) and their cores."""

    x: np.ndarray
    y: np.ndarray
    cores: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index) -> "Pairs":
        return Pairs(self.x[index], self.y[index], self.cores[index])


@dataclass
class Splits:
    """Indices into a target's pairs, for one seed. ``test`` and ``fewshot_*`` are seed-free."""

    train: np.ndarray  # permuted: the first n are the data amount n
    val: np.ndarray
    test: np.ndarray  # every pair of the held-out cores
    fewshot_pool: np.ndarray  # permuted, of the held-out pairs
    fewshot_test: np.ndarray
    notes: list[str] = field(default_factory=list)

    def amount(self, n) -> np.ndarray:
        """The training pairs of data amount ``n`` (an int or "all")."""
        return self.train if n == ALL else self.train[: int(n)]

    def fewshot(self, n, seed: int) -> np.ndarray:
        """``n`` pool pairs for a few-shot run of ``seed`` (nested within a seed)."""
        order = np.random.default_rng([seed, 7]).permutation(self.fewshot_pool)
        return order if n == ALL else order[: int(n)]


def make_splits(cores: np.ndarray, holdout, seed: int, config: EvalConfig) -> Splits:
    """The protocol's splits of pairs whose cores are ``cores`` (see the module docstring)."""
    cores = np.asarray(cores).astype(str)
    held = np.isin(cores, list(holdout))
    inside, outside = np.flatnonzero(~held), np.flatnonzero(held)
    rng = np.random.default_rng([seed, 1])
    is_val = rng.random(len(inside)) < config.val_fraction
    if len(inside) >= 2 and (is_val.all() or not is_val.any()):
        is_val = np.arange(len(inside)) % 5 == 0
    train = rng.permutation(inside[~is_val])
    val = inside[is_val]
    fixed = np.random.default_rng([config.protocol_seed, 2])
    shuffled = fixed.permutation(outside)
    n_test = int(round(config.fewshot_test_fraction * len(shuffled)))
    return Splits(train=train, val=val, test=outside, fewshot_pool=np.sort(shuffled[n_test:]),
                  fewshot_test=np.sort(shuffled[:n_test]))


def amounts_for(config_amounts, available: int) -> list:
    """The data amounts that fit ``available`` pairs (larger ones are dropped; "all" is kept last)."""
    out = [n for n in config_amounts if n != ALL and int(n) < available]
    return out + [ALL] if ALL in config_amounts or not out else out


def check_no_leak(cores: np.ndarray, splits: Splits, holdout) -> None:
    """Raise if a held-out core's pair is in the training or validation part, or the few-shot
    test part overlaps the few-shot pool: the invariant every run relies on."""
    cores = np.asarray(cores).astype(str)
    seen = np.concatenate([splits.train, splits.val])
    leaked = sorted(set(cores[seen]) & set(holdout))
    if leaked:
        raise AssertionError(f"held-out core(s) {leaked} in the training or validation part")
    if np.intersect1d(splits.fewshot_pool, splits.fewshot_test).size:
        raise AssertionError("the few-shot test part overlaps the few-shot pool")
    if np.intersect1d(splits.train, splits.val).size:
        raise AssertionError("a pair is in both the training and the validation part")
