"""MAX as an xrfhub model plugin: pre-train, fine-tune, predict and saliency from a store.

Splits follow DESIGN section 6: held-out cores are never seen (not even by pre-training);
validation picks the epoch; held-out metrics are only reported. Validation is a seeded fifth of
the other cores' labelled pairs (``val_split=pairs``, the published recipe and ``base``), or of
those cores themselves (``val_split=cores``, ``tiny``): pairs of cores the model trains on cannot
tell how it does on a new core. ``refit`` then trains on every training core up to the chosen epoch.
``folds=K`` cross-fits instead: K models on folds of whole cores, their mean the prediction
(:mod:`xrfhub_max.crossfit`).
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
from xrfhub.ml import ddp, torchddp
from xrfhub.errors import ConfigError
from xrfhub.ml.loaders import (BatchStream, hub_counts, labelled_samples, predict_spectra, select_rows,
                               split_pairs, split_summary)
from xrfhub.ml.metrics import regression_metrics
from xrfhub.ml.registry import FittedRegressor, Predictions, RunSummary

from . import crossfit
from .config import PRESETS, MaxConfig

#: Pre-training runs shorter than this get a warning on their reconstruction picture.
SHORT_PRETRAIN_EPOCHS = 20

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class MaxRunConfig(MaxConfig):
    """MAX's model and recipe, plus how the plugin feeds it from the store."""

    tube_kv: float = 10.0  # spectra of this voltage are pre-trained on, paired and predicted
    val_fraction: float = 0.2  # of the labelled pairs of the training cores (fine-tuning)
    val_split: str = "pairs"  # pairs | cores: validation draws pairs, or whole training cores
    refit: bool = False  # with val_split=cores: after choosing the epoch, train on every training core to it
    pretrain_val_fraction: float = 0.05  # of the training spectra, for picking the epoch
    loader: str = "auto"  # auto | memory | stream
    pretrain_spectra: int = 0  # pre-train on at most this many spectra, drawn by seed (0: all)
    folds: int = 0  # >= 2: cross-fit that many models on folds of whole cores, predict with their mean

    def validate(self) -> None:
        super().validate()
        if self.folds == 1 or self.folds < 0:
            raise ConfigError(f"folds must be 0 (one model) or at least 2, got {self.folds}")
        if self.folds and self.refit:
            raise ConfigError("folds and refit are two ways to use the validation cores; choose one")
        if self.val_split not in ("pairs", "cores"):
            raise ConfigError(f"val_split must be 'pairs' or 'cores', got {self.val_split!r}")
        if self.refit and self.val_split != "cores":
            raise ConfigError("refit trains on the validation cores after the epoch is chosen on them: it needs "
                              "val_split=cores")


class _Epochs:
    """A per-epoch view of a BatchStream in the shape the engine wants (x, or (x, y))."""

    def __init__(self, stream: BatchStream, with_targets: bool = False):
        self.stream, self.with_targets = stream, with_targets

    def __call__(self, epoch: int):
        self.stream.set_epoch(epoch)
        return self

    def __len__(self):
        return len(self.stream)

    def __iter__(self):
        for x, y, _rows in self.stream:
            yield (x, y) if self.with_targets else x


class MaxPlugin:
    """The masked autoencoder for XRF spectra (MAX) and its CaCO3/TOC regressor."""

    name = "max"
    description = "MAX: masked autoencoder pre-trained on spectra, fine-tuned to lab properties"
    stages = ("pretrain", "finetune")
    targets = ("*",)
    config = MaxRunConfig
    # the tiny preset validates its fine-tune on whole training cores: adopted by the rule fixed
    # before the runs (calibration-core R2 over the three c10 corpora, docs/results.md, fourth
    # pass); ``base`` keeps the published recipe's random 80/20 split of the pairs
    presets = {name: {**cfg.to_dict(), **({"val_split": "cores"} if name == "tiny" else {})}
               for name, cfg in PRESETS.items()}
    distributed = torchddp  # trains under torchrun (DDP) with this process-group backend; only rank 0 writes

    @staticmethod
    def _ranks() -> dict:
        """Engine options under a torchrun process group: DDP, each rank a slice of every batch."""
        return {"wrap": torchddp.wrap, "split_batches": True} if ddp.active() else {}

    # ------------------------------------------------------------------ training

    def train(self, store, *, stage, out, config, target=None, init=None, holdout_cores=(), progress=True,
              resume=False):
        if stage not in self.stages:
            raise ConfigError(f"plugin 'max' has no stage {stage!r}; stages: {', '.join(self.stages)}")
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if stage == "pretrain":
            metrics = self._pretrain(store, out, config, tuple(holdout_cores), progress, resume, init)
        else:
            if not target:
                raise ConfigError("fine-tuning needs --target (a lab property of the store, e.g. CaCO3)")
            metrics, out_of_fold = self._finetune(store, out, config, target, init, tuple(holdout_cores),
                                                  progress, resume)
        run = {"plugin": self.name, "stage": stage, "target": target, "store": str(store),
               "holdout_cores": list(holdout_cores), "init": str(init) if init else None,
               "config": dataclasses.asdict(config), "metrics": metrics, "xrfhub_version": xrfhub.__version__,
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if ddp.is_writer():
            (out / RUN_FILE).write_text(json.dumps(run, indent=1, default=str))
        notes = []
        if config.val_split == "cores" and metrics.get("validation_shares_training_cores"):
            notes.append("val_split=cores, but fewer than 3 training cores: the epoch was chosen on pairs of "
                         "the cores it trained on, which says little of a new core")
        if metrics.get("folds_fallback"):
            notes.append(f"folds={config.folds}, but only {len(metrics['folds_fallback'])} labelled core(s) outside "
                         f"the held-out ones ({', '.join(metrics['folds_fallback'])}): one model was fine-tuned, "
                         f"not {config.folds} cross-fitted ones")
        summary = RunSummary(out, self.name, stage, target, metrics, warnings=notes)
        summary.out_of_fold = out_of_fold if stage == "finetune" else None
        return summary

    def _pretrain(self, store, out: Path, config: MaxRunConfig, holdout, progress, resume=False,
                  init=None) -> dict:
        import torch

        from . import engine, published
        from .model import MaxAutoencoder

        ds = xrfhub.open(store, "spectra", index=False)
        self._check_channels(ds.sizes["channel"], config)
        rows = select_rows(ds, exclude_cores=holdout, tube_kv=config.tube_kv)
        if len(rows) == 0:
            raise ConfigError(f"no {config.tube_kv:g} kV spectra outside the held-out cores to pre-train on")
        rng = np.random.default_rng(config.seed)
        if 0 < config.pretrain_spectra < len(rows):  # a budget: a seeded draw, kept in store order
            rows = np.sort(rng.choice(rows, config.pretrain_spectra, replace=False))
        is_val = rng.random(len(rows)) < config.pretrain_val_fraction
        counts = hub_counts(store, ds.attrs["group"])
        stream = dict(array=counts, batch_size=config.batch, mode=config.loader, seed=config.seed)
        train = _Epochs(BatchStream(rows=rows[~is_val], **stream))
        val = _Epochs(BatchStream(rows=rows[is_val], shuffle=False, **stream)) if is_val.any() else None
        engine.seed_everything(config.seed)
        model, transform = MaxAutoencoder(config), None
        if init is not None and published.is_published(init):  # continue from the published weights
            transform = self._import(model, init, config, out)
        model = model.to(engine.pick_device(config.device))
        result = engine.pretrain(model, config, train, val, out, transform=transform, progress=progress,
                                 resume=resume, **self._ranks())
        shown = np.sort(rng.choice(rows[is_val] if is_val.any() else rows, min(4, len(rows)), replace=False))
        sample = np.asarray(ds["counts"][shown].values, dtype=np.float32)
        names = [f"{c} at {d:g} mm" for c, d in zip(ds["core"].values[shown], ds["depth_mm"].values[shown])]
        # a few epochs make a blurred reconstruction that says little of the model: say so on it
        note = (f"after {config.epochs} epoch(s) only: an early reconstruction, not what the model can do"
                if config.epochs < SHORT_PRETRAIN_EPOCHS else "")
        if ddp.is_writer():
            engine.reconstruction_png(model, torch.from_numpy(sample), out / "reconstruction.png",
                                      ds["energy"].values, transform=self._transform(out), seed=config.seed,
                                      labels=names, max_kev=float(config.tube_kv), note=note)
        return {"best_epoch": result.best_epoch, "best_loss": float(result.best_loss),
                "n_train_spectra": int((~is_val).sum()), "n_val_spectra": int(is_val.sum())}

    def _finetune(self, store, out: Path, config: MaxRunConfig, target, init, holdout, progress,
                  resume=False) -> dict:
        from xrfhub.ml.voltage import check_pair_voltage

        check_pair_voltage(store, config.tube_kv)  # pairs of one voltage, predictions of another
        if config.folds:
            x, y, cores, _ = labelled_samples(store, target, exclude_cores=holdout)
            if len(set(cores)) >= crossfit.MIN_CORES:
                return self._crossfit(store, x, y, cores, out, config, target, init, holdout, progress, resume)
            # like val_split=cores under three training cores: one model, and the run says so
            metrics, _ = self._finetune(store, out, dataclasses.replace(config, folds=0), target, init, holdout,
                                        progress, resume)
            metrics["folds_fallback"] = sorted(set(map(str, cores)))
            if ddp.is_writer():
                (out / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
            return metrics, None
        x, y, cores, is_val = split_pairs(store, target, exclude_cores=holdout, seed=config.seed,
                                          val_fraction=config.val_fraction, by=config.val_split)
        split = split_summary(cores, is_val)
        # validating on a core costs training that core: choose the epoch without it, then train
        # on every training core up to that epoch (scikit-learn's refit), at most twice the time
        refit = config.refit and config.val_split == "cores" and not split["validation_shares_training_cores"]
        fitted = self.fit_pairs(x[~is_val], y[~is_val], x[is_val], y[is_val], target=target, config=config,
                                out=out / "epoch-choice" if refit else out, init=init, progress=progress,
                                resume=resume)
        metrics = {"target": target, "best_epoch": fitted.best_epoch, "validation_split": config.val_split,
                   **split,
                   "validation": regression_metrics(y[is_val], fitted.predict(x[is_val]), fitted.train_mean)}
        if refit:
            fitted = self.fit_pairs(x, y, x[:0], y[:0], target=target, config=config, out=out, init=init,
                                    progress=progress, resume=resume, stop_epoch=fitted.best_epoch)
            metrics["refit"] = {"epoch": fitted.best_epoch, "pairs": int(len(y)),
                                "note": "validation above is the epoch-choice model's (epoch-choice/); this "
                                        "model trained on the validation cores too"}
        if holdout:
            hx, hy, _, _ = labelled_samples(store, target, cores=holdout)
            if len(hy):
                metrics["held_out"] = regression_metrics(hy, fitted.predict(hx), fitted.train_mean)
        if ddp.is_writer():
            (out / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
        return metrics, None

    def _crossfit(self, store, x, y, cores, out: Path, config: MaxRunConfig, target, init, holdout, progress,
                  resume):
        metrics, members, out_of_fold = crossfit.fit(self, x, y, cores, target=target, config=config, out=out,
                                                     init=init, progress=progress, resume=resume)
        if holdout:
            hx, hy, _, _ = labelled_samples(store, target, cores=holdout)
            if len(hy):
                mean = crossfit.mean_predictor([m.predict for m in members])
                metrics["held_out"] = regression_metrics(hy, mean(hx), float(np.mean(y)))
        if ddp.is_writer():
            (out / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
        return metrics, out_of_fold

    def fit_pairs(self, x, y, x_val, y_val, *, target, config: MaxRunConfig, out, init=None, progress=False,
                  resume=False, stop_epoch: int | None = None) -> FittedRegressor:
        """Fine-tune on arrays (raw counts, wt%): from the autoencoder of run ``init``, or from
        scratch without it. The epoch is chosen on ``(x_val, y_val)``. This is what ``train``
        runs after splitting the store's pairs, and what ``xrfhub evaluate`` calls per cell."""
        from . import checkpoint as ckpt
        from . import engine, published
        from .model import MaxAutoencoder, MaxRegressor

        out = Path(out)
        self._check_channels(np.shape(x)[1], config)
        engine.seed_everything(config.seed)
        transform = None
        if init is not None and published.is_published(init):  # the published (MAE-layout) weights
            model = MaxRegressor(config)
            transform = self._import(model, init, config, out)
        elif init is not None:
            autoencoder = MaxAutoencoder(config)
            ckpt.load_weights(autoencoder, Path(init) / ckpt.BEST_FILE)
            model = MaxRegressor.from_autoencoder(autoencoder)
            transform = self._transform(Path(init))
        else:
            model = MaxRegressor(config)
        model = model.to(engine.pick_device(config.device))
        train = engine.in_memory_batches(x, y, config.batch, seed=config.seed)
        val = engine.in_memory_batches(x_val, y_val, config.batch, shuffle=False) if len(y_val) else None
        # the published head predicts wt% itself: its targets are not z-scored
        stats = {"mean": 0.0, "std": 1.0, "count": int(len(y))} if config.head == "sigmoid100" else None
        result = engine.finetune(model, config, train, val, out, transform=transform, target_stats=stats,
                                 progress=progress, resume=resume, stop_epoch=stop_epoch, **self._ranks())
        stats = ckpt.read_json(out / ckpt.TARGET_STATS_FILE)
        transform = self._transform(out)

        def predict(spectra):
            if len(spectra) == 0:
                return np.zeros(0)
            batches = engine.in_memory_batches(spectra, None, config.batch, shuffle=False)
            return np.clip(engine.predict(model, batches, transform, stats), 0, 100)

        return FittedRegressor(predict, float(np.mean(y)), result.best_epoch)

    def import_config(self, init) -> dict:
        """The configuration outside weights (``--init FILE.pth``) imply: their architecture,
        head and the authors' channel transform. ``xrfhub train`` layers presets and --set on it."""
        from . import published

        state, _ = published.read_state(init)
        return published.inferred_config(state)

    @staticmethod
    def _import(model, init, config, out: Path):
        """Load the published weights into ``model``, record the import in the run folder and
        return the transform the model must be fed with (None: the configuration's default)."""
        from . import published

        state, source = published.read_state(init)
        record = published.load_into(model, state, source)
        if ddp.is_writer():
            out.mkdir(parents=True, exist_ok=True)
            (out / published.IMPORT_FILE).write_text(json.dumps(published.describe(record, config), indent=1))
        return published.transform_for(config)

    @staticmethod
    def _check_channels(n: int, config: MaxConfig) -> None:
        if n != config.channels:
            raise ConfigError(f"the store's spectra have {n} channels but the config says {config.channels}; "
                              f"pass --set channels={n} (and a patch size that divides it)")

    @staticmethod
    def _transform(run_dir: Path):
        from . import checkpoint as ckpt
        from .transforms import Transform

        return Transform.from_dict(ckpt.read_json(Path(run_dir) / ckpt.TRANSFORM_FILE))

    # ------------------------------------------------------------------ using a run

    def load(self, run_dir):
        """The trained model of a run folder, its config, transform and target statistics (the
        first fold model of a cross-fitted run: :meth:`members` has them all)."""
        run, config, members = self.members(run_dir)
        return (run, config, *members[0])

    def members(self, run_dir):
        """``(run, config, [(model, transform, target stats), ...])``: the run's one model, or
        the K fold models of a cross-fitted run, whose mean is its prediction."""
        from . import checkpoint as ckpt
        from . import engine
        from .model import MaxAutoencoder, MaxRegressor

        run_dir = Path(run_dir)
        run = json.loads((run_dir / RUN_FILE).read_text())
        config = MaxRunConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in run["config"].items()})
        members = []
        for folder in crossfit.member_dirs(run_dir):
            model = (MaxRegressor if run["stage"] == "finetune" else MaxAutoencoder)(config)
            ckpt.load_weights(model, folder / ckpt.BEST_FILE)
            model = model.to(engine.pick_device(config.device)).eval()
            stats = ckpt.read_json(folder / ckpt.TARGET_STATS_FILE) if run["stage"] == "finetune" else None
            members.append((model, self._transform(folder), stats))
        return run, config, members

    def predictor(self, run_dir):
        """The fine-tuned model of a run as raw counts -> target values (for calibrated intervals)."""
        run, config, members = self.members(run_dir)
        if run["stage"] != "finetune":
            raise ConfigError(f"{run_dir} is a pre-training run; it predicts no target")
        predict = _batch_predictor(members)

        def predictor(spectra):
            if len(spectra) == 0:
                return np.zeros(0)
            spectra = np.asarray(spectra, dtype=np.float32)
            return np.concatenate([predict(spectra[i:i + config.batch]) for i in range(0, len(spectra), config.batch)])

        return predictor

    def predict(self, store, run_dir, *, progress=True) -> Predictions:
        from . import checkpoint as ckpt

        run, config, members = self.members(run_dir)
        if run["stage"] != "finetune":
            raise ConfigError(f"{run_dir} is a pre-training run; predict with a fine-tuned run (--init it first)")
        group, values = predict_spectra(store, _batch_predictor(members), tube_kv=config.tube_kv,
                                        batch_size=config.batch, progress=progress)
        digest = hashlib.sha256(b"".join((f / ckpt.BEST_FILE).read_bytes()
                                         for f in crossfit.member_dirs(run_dir))).hexdigest()
        return Predictions(group, {run["target"]: values},
                           {"run_dir": str(Path(run_dir).resolve()), "checkpoint_sha256": digest,
                            "config": run["config"], "trained": run["created"], "stage": run["stage"],
                            "tube_kv": config.tube_kv})

    def saliency(self, store, run_dir, *, cores=None, limit: int = 512, shifts: int | None = None):
        """|d MSE / d input| per channel, averaged over shifted patch grids, normalised per
        spectrum and averaged over a selection; returns ``(saliency, n_spectra)``.

        The patch embedding cuts a spectrum every ``patch`` channels and weights the channels of a
        patch by the position inside it, so a plain gradient rises and falls with the patch grid
        and its maxima sit at patch edges, not at emission lines. Each spectrum is therefore also
        fed shifted right by 1 .. ``shifts - 1`` channels (edge-padded; default: every offset of
        the grid) and the gradients, taken with respect to the unshifted channels, are averaged:
        every channel meets every position in a patch once and the grid cancels out.
        """
        from . import engine

        run, config, members = self.members(run_dir)
        if run["stage"] == "finetune":
            x, y, _, _ = labelled_samples(store, run["target"], cores=cores)
        else:
            ds = xrfhub.open(store, "spectra", index=False)
            rows = select_rows(ds, cores=cores, tube_kv=config.tube_kv)
            x, y = np.asarray(ds["counts"].values[rows[:limit]], dtype=np.float32), None
        x, y = x[:limit], None if y is None else y[:limit]
        if len(x) == 0:
            raise ConfigError("no spectra in the selection to compute saliency on")
        shifts = config.patch if shifts is None else max(1, min(int(shifts), config.patch))
        offsets = np.unique(np.linspace(0, config.patch, shifts, endpoint=False).astype(int))
        # a cross-fitted run's saliency is its fold models' mean, as its prediction is
        total = sum(_saliency_sum(model, transform, None if y is None else engine.normalised_targets(y, stats),
                                  x, offsets, config) for model, transform, stats in members)
        return (total / (len(x) * len(members))).astype(np.float32), len(x)


def _batch_predictor(members):
    """One batch of raw counts -> the mean of the members' de-normalised predictions."""
    from . import engine

    def predict(x):
        return np.mean([engine.predict(model, [x], transform, stats) for model, transform, stats in members], axis=0)
    return predict


def _saliency_sum(model, transform, y, x, offsets, config) -> np.ndarray:
    """Per-channel saliency of one model, each spectrum's normalised to 1 at its maximum, summed."""
    import torch

    from . import engine

    device = next(model.parameters()).device
    total = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, len(x), config.batch):
        inputs = transform(engine.to_device(x[start:start + config.batch], device).float())
        inputs = inputs.detach().requires_grad_(True)
        target = None if y is None else torch.as_tensor(y[start:start + config.batch], device=device).float()
        grad = torch.zeros_like(inputs)
        for offset in offsets:
            shifted = _shift_right(inputs, int(offset))
            if target is None:
                loss = model(shifted, generator=config.seed)[0]
            else:
                loss = torch.nn.functional.mse_loss(model(shifted), target)
            grad += torch.autograd.grad(loss, inputs)[0].abs()
        grad = grad / grad.amax(dim=1, keepdim=True).clamp_min(1e-12)
        total += grad.sum(0).double().cpu().numpy()
    return total


def _shift_right(x, offset: int):
    """``x`` moved ``offset`` channels up the energy axis, the first channel repeated below it;
    the top ``offset`` channels fall off (at 10 kV they are empty). Differentiable in ``x``; the
    repeated padding is detached, so channel 0 gets the gradient of its own position only."""
    import torch

    if offset == 0:
        return x
    return torch.cat([x[:, :1].detach().expand(-1, offset), x[:, :-offset]], dim=1)


plugin = MaxPlugin()
