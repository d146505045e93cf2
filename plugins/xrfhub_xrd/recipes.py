"""Train a diffraction classifier from arrays and use, save and reload it: ``fit`` and ``Fitted``.

    fitted = fit("panosc-binned", intensity, labels, two_theta)            # published recipe
    fitted = fit("spectra1d", x, y, tth, {"arch": "fcnn", "iterations": 50})
    fitted.predict(new_patterns)          # class labels (N,), or presence (N, K) for mtl-phase
    fitted.predict_proba(new_patterns)    # (N, classes) vote shares / probabilities, or (N, K)
    fitted.save("run/");  Fitted.load("run/")

``fit`` checks the arrays, prepares the patterns (``data.prepare``: optional ALS background,
per-pattern min-max scaling), adds the recipe's noisy copies, builds the model of
``models.build_model`` and runs its loop from ``training``, all seeded by ``config.seed``: the
same inputs and seed give the same model. The torch RNG state of the caller is left as it was.
The store-facing plugin sits on top of this module; nothing here knows the store.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from xrfhub.errors import InputError, StoreError

from . import training
from .binned import BinnedLearned, BinnedVote
from .config import MultiTaskConfig, Spectra1DConfig, XrdConfig, config_for
from .data import ARRAYS, check_multihot, check_patterns, encode_classes, noisy_copies, prepare
from .models import build_model

WEIGHTS_FILE = "model.safetensors"
META_FILE = "fitted.json"
FORMAT = 1


@dataclass
class Fitted:
    """A trained diffraction classifier with everything needed to predict and to reload it.

    ``classes`` are the class labels in the order of ``predict_proba``'s columns (phase indices
    0..K-1 for ``mtl-phase``); ``two_theta`` the grid new patterns must share; ``history`` the
    training loss per iteration (per epoch for ``mtl-phase``); ``info`` facts of the run (e.g.
    Model B's stopping iteration, Model A's bin accuracies); ``fit_seconds`` the wall time.
    """

    model_name: str
    config: XrdConfig
    model: nn.Module
    two_theta: np.ndarray
    classes: list
    history: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    fit_seconds: float = 0.0

    @property
    def multilabel(self) -> bool:
        return self.model_name == "mtl-phase"

    # -- prediction ---------------------------------------------------------------------------
    @torch.no_grad()
    def predict_proba(self, intensity, two_theta=None, source: str = ARRAYS) -> np.ndarray:
        """``(N, classes)`` class scores summing to 1 (vote shares for the binned models), or
        ``(N, K)`` independent presence probabilities for ``mtl-phase``."""
        x = self._prepared(intensity, two_theta, source)
        self.model.eval()
        device = next(self.model.parameters()).device
        outputs = []
        for start in range(0, len(x), self._chunk()):
            batch = torch.from_numpy(x[start:start + self._chunk()]).to(device)
            outputs.append(self._scores(batch).float().cpu().numpy())
        return np.concatenate(outputs).astype(np.float64)

    def predict(self, intensity, two_theta=None, source: str = ARRAYS) -> np.ndarray:
        """Class labels ``(N,)`` (ties go to the earlier class), or 0/1 presence ``(N, K)``."""
        return self.decide(self.predict_proba(intensity, two_theta, source))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """``predict``'s answer from ``predict_proba``'s scores (for callers that need both)."""
        if self.multilabel:
            return (proba >= self.config.threshold).astype(np.int64)
        return np.asarray(self.classes)[proba.argmax(axis=1)]

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.model, (BinnedVote, BinnedLearned)):
            return self.model.vote(x)
        logits = self.model(x)
        if self.multilabel:
            return torch.sigmoid(logits)
        if logits.shape[1] == 1:
            p = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - p, p], dim=1)
        return torch.softmax(logits, dim=1)

    def _chunk(self) -> int:
        if isinstance(self.model, (BinnedVote, BinnedLearned)):
            return training.chunk_size(len(self.two_theta) * self.config.hidden)
        return 512

    def _prepared(self, intensity, two_theta, source: str) -> np.ndarray:
        grid = self.two_theta if two_theta is None else two_theta
        x, grid = check_patterns(intensity, grid, source)
        if grid.shape != self.two_theta.shape or not np.allclose(grid, self.two_theta,
                                                                  rtol=0, atol=1e-6):
            raise InputError(source, f"patterns must be on the training grid ({len(self.two_theta)}"
                             f" points, {self.two_theta[0]:g}-{self.two_theta[-1]:g} deg); "
                             "interpolate them onto it first", field="two_theta")
        return prepare(x, self.config)

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The module's tensors (weights, BatchNorm statistics, bin weights) as CPU copies."""
        return {k: v.detach().cpu().clone().contiguous()
                for k, v in self.model.state_dict().items()}

    def save(self, directory: str | PathLike) -> Path:
        """Write ``model.safetensors`` and ``fitted.json`` (model, config, classes, grid,
        history) into ``directory``; returns it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(self.state_dict(), str(directory / WEIGHTS_FILE),
                  metadata={"model": self.model_name, "format": str(FORMAT)})
        meta = {"format": FORMAT, "model": self.model_name, "config": self.config.to_dict(),
                "classes": self.classes, "two_theta": self.two_theta.tolist(),
                "history": self.history, "info": self.info, "fit_seconds": self.fit_seconds}
        (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | PathLike, device: str = "cpu") -> "Fitted":
        """Rebuild a saved classifier (on ``device``) from ``Fitted.save``'s two files."""
        directory = Path(directory)
        meta_path, weights_path = directory / META_FILE, directory / WEIGHTS_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            with safe_open(str(weights_path), framework="pt") as fh:
                state = {k: fh.get_tensor(k) for k in fh.keys()}
        except (OSError, ValueError) as e:
            raise StoreError(f"{directory}: not a saved diffraction classifier "
                             f"({WEIGHTS_FILE} + {META_FILE}): {e}") from e
        if meta.get("format") != FORMAT:
            raise StoreError(f"{meta_path}: format {meta.get('format')!r}, this xrfhub reads "
                             f"{FORMAT}")
        config = config_for(meta["model"], meta["config"])
        grid = np.asarray(meta["two_theta"], dtype=np.float64)
        model = build_model(meta["model"], config, grid, len(meta["classes"]))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise StoreError(f"{weights_path}: weights do not fit the saved configuration: "
                             f"{e}") from e
        model.to(training.pick_device(device)).eval()
        return cls(meta["model"], config, model, grid, list(meta["classes"]),
                   list(meta["history"]), dict(meta["info"]), float(meta["fit_seconds"]))


def fit(model_name: str, intensity, labels, two_theta,
        config: XrdConfig | Mapping[str, Any] | None = None, progress: bool = False,
        source: str = ARRAYS) -> Fitted:
    """Train ``model_name`` on patterns ``intensity (N, P)`` over ``two_theta (P,)`` degrees.

    ``labels`` are class labels ``(N,)`` (any integers or strings) for ``panosc-binned``,
    ``panosc-binned-learned`` and ``spectra1d``, or a 0/1 phase-presence matrix ``(N, K)`` for
    ``mtl-phase``. ``config`` is the model's configuration object, a mapping of overrides of its
    published defaults (e.g. ``{"iterations": 20}``), or None for the defaults. ``source`` names
    where the arrays came from, for error messages.
    """
    config = config_for(model_name, config)
    x, grid = check_patterns(intensity, two_theta, source)
    if model_name == "mtl-phase":
        y = check_multihot(labels, len(x), source)
        classes = list(range(y.shape[1]))
    else:
        y, classes = encode_classes(labels, len(x), source)
    started = time.perf_counter()
    x = prepare(x, config)
    rng = np.random.default_rng(config.seed)
    x, y = noisy_copies(x, y, config.copies, config.noise, rng)
    device = training.pick_device(config.device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.seed)
        model = build_model(model_name, config, grid, len(classes)).to(device)
        xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        if model_name == "panosc-binned":
            history, info = training.train_vote(model, xt, yt, config, progress)
            info["bin_accuracy"] = model.bin_accuracy.cpu().tolist()
            info["bin_weights"] = model.weights.cpu().tolist()
        elif model_name == "panosc-binned-learned":
            history, info = training.train_learned(model, xt, yt, config, progress)
        elif isinstance(config, Spectra1DConfig):
            history, info = training.train_classifier(model, xt, yt, len(classes), config,
                                                      progress)
        else:
            assert isinstance(config, MultiTaskConfig)
            history, info = training.train_phases(model, xt, yt, config, progress)
    info["training_patterns"] = int(len(x))
    seconds = time.perf_counter() - started
    return Fitted(model_name, config, model.eval(), grid, classes, history, info, seconds)
