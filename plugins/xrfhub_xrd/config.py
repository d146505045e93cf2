"""Configurations of the diffraction classifiers: architecture and recipe, a frozen dataclass each.

The defaults are the published recipes of source document 003 (PaNOSC binned models and the
1-D comparison models, DESIGN section 7) where the source gives a number, and our own choices,
marked as such, where it does not (the 1-D models' iteration count, every size of the
multi-task model "inspired by" source document 001). A configuration is data: it round-trips
through JSON (``to_dict``/``from_dict``) and ``replace`` checks the keys it is given. Nothing here
imports torch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping

from xrfhub.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
SCALINGS = ("minmax", "none")
BASELINES = ("none", "als")
ARCHS = ("fcnn", "cnn", "transformer", "lstm", "resnet")
MTL_MODES = ("multitask", "binary")
VOTES = ("hard", "soft")


@dataclass(frozen=True)
class XrdConfig:
    """What every diffraction recipe shares: seed, device and how patterns are prepared.

    ``scaling="minmax"`` maps each pattern to [0, 1] (its own minimum to 0, maximum to 1) before
    noise is added: the published noise U[0,1)/12 or /6 only has a meaning relative to a known
    range, and exposure differences between patterns stop mattering. ``baseline="als"`` first
    subtracts the asymmetric-least-squares background of the published preprocessing
    (``als_lambda``, ``als_p``, ``als_iterations``); off by default because it is data
    preparation the caller may already have done.
    """

    seed: int = 0
    device: str = "auto"
    scaling: str = "minmax"
    baseline: str = "none"
    als_lambda: float = 1e5
    als_p: float = 0.002
    als_iterations: int = 10

    def __post_init__(self):
        self.validate()

    # -- construction and serialisation -----------------------------------------------------
    def replace(self, **overrides: Any) -> "XrdConfig":
        """A copy with ``overrides`` applied; unknown keys raise ConfigError."""
        _check_keys(type(self), overrides)
        return dataclasses.replace(self, **{k: _tuples(v) for k, v in overrides.items()})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _lists(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "XrdConfig":
        _check_keys(cls, data)
        return cls(**{k: _tuples(v) for k, v in data.items()})

    # -- checks -------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError when the values cannot build the model or run the recipe."""
        _choice(self, "device", DEVICES)
        _choice(self, "scaling", SCALINGS)
        _choice(self, "baseline", BASELINES)
        _integer(self, "seed", minimum=0)
        _integer(self, "als_iterations", minimum=1)
        _positive(self, "als_lambda")
        if not 0.0 < self.als_p < 1.0:
            raise ConfigError(f"als_p is an asymmetry weight in (0, 1), got {self.als_p!r}")


@dataclass(frozen=True)
class BinnedVoteConfig(XrdConfig):
    """003 Model A: ``bins`` per-bin MLPs 2 -> ``hidden`` -> classes, believability-weighted votes.

    Published recipe: Adam(``lr`` 8e-3, ``weight_decay`` 2e-5), ``iterations`` 700 full-batch
    steps on the curves plus ``copies`` 10 noisy copies each with U[0,1) * ``noise`` (1/12).
    ``vote="hard"`` counts each point's predicted class, as we read 003; ``"soft"`` (ours) sums
    the points' class probabilities. Hard votes let a bin's featureless points, which its
    subnet must still assign to some class, vote as one block: on toy patterns with three
    classes they lose a third of the accuracy that soft votes keep.
    """

    bins: int = 15
    hidden: int = 150
    vote: str = "hard"
    lr: float = 8e-3
    weight_decay: float = 2e-5
    iterations: int = 700
    copies: int = 10
    noise: float = 1 / 12

    def validate(self) -> None:
        super().validate()
        _integer(self, "bins", minimum=1)
        _integer(self, "hidden", minimum=1)
        _choice(self, "vote", VOTES)
        _recipe(self)


@dataclass(frozen=True)
class BinnedLearnedConfig(XrdConfig):
    """003 Model B: the per-bin subnets with BatchNorm + sigmoid and a learned Linear(2B -> 1).

    Published recipe: BCE, Adam(2e-3, 2e-5), at most ``iterations`` 550 full-batch steps, stopping
    once the loss is below ``stop_loss`` (0.15) or the row accuracy above ``stop_accuracy``
    (0.99). Training data as Model A (the curves plus noisy copies).
    """

    bins: int = 15
    hidden: int = 150
    lr: float = 2e-3
    weight_decay: float = 2e-5
    iterations: int = 550
    stop_loss: float = 0.15
    stop_accuracy: float = 0.99
    copies: int = 10
    noise: float = 1 / 12

    def validate(self) -> None:
        super().validate()
        _integer(self, "bins", minimum=1)
        _integer(self, "hidden", minimum=1)
        _recipe(self)
        if self.stop_loss < 0 or not 0.0 < self.stop_accuracy <= 1.0:
            raise ConfigError("stop_loss must be >= 0 and stop_accuracy in (0, 1], got "
                              f"{self.stop_loss!r} and {self.stop_accuracy!r}")


@dataclass(frozen=True)
class Spectra1DConfig(XrdConfig):
    """003's 1-D comparison models, ``arch`` one of fcnn, cnn, transformer, lstm, resnet.

    Published: LayerNorm(P) input, sigmoid + BCE for two classes, Adam(2e-3, 2e-5), full-batch,
    noisy copies with U[0,1)/6. Ours: softmax + cross-entropy for more than two classes, and
    ``iterations`` 300 (the source gives no count). ``resnet_channels``/``resnet_blocks`` are
    ours too: the source names only the k7 stem and k3 blocks.
    """

    arch: str = "cnn"
    lr: float = 2e-3
    weight_decay: float = 2e-5
    iterations: int = 300
    copies: int = 10
    noise: float = 1 / 6
    fcnn_hidden: tuple[int, ...] = (256, 512, 64)
    cnn_channels: tuple[int, int, int] = (64, 64, 4)
    transformer_width: int = 256
    transformer_heads: int = 8
    transformer_ff: int = 256
    transformer_layers: int = 2
    lstm_width: int = 512
    lstm_layers: int = 2
    resnet_width: int = 512
    resnet_channels: int = 32
    resnet_blocks: int = 3

    def validate(self) -> None:
        super().validate()
        _choice(self, "arch", ARCHS)
        _recipe(self)
        if len(self.cnn_channels) != 3:
            raise ConfigError(f"cnn_channels holds the 3 conv widths, got {self.cnn_channels!r}")
        for size in (*self.fcnn_hidden, *self.cnn_channels):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ConfigError(f"layer sizes must be positive integers, got {size!r}")
        for name in ("transformer_width", "transformer_heads", "transformer_ff",
                     "transformer_layers", "lstm_width", "lstm_layers", "resnet_width",
                     "resnet_channels", "resnet_blocks"):
            _integer(self, name, minimum=1)
        if self.transformer_width % self.transformer_heads:
            raise ConfigError(f"transformer_width ({self.transformer_width}) must be divisible "
                              f"by transformer_heads ({self.transformer_heads})")
        if self.transformer_width % 2:
            raise ConfigError("transformer_width must be even (sin-cos positions)")


@dataclass(frozen=True)
class MultiTaskConfig(XrdConfig):
    """Phase presence from one pattern, inspired by source document 001 (sizes are ours).

    ``mode="multitask"``: a shared 1-D CNN trunk (one Conv-BN-ReLU-MaxPool2 block per entry of
    ``channels``, kernel ``kernel``) pooled to ``pooled_length`` positions (1 = global pooling;
    we keep 16 because where a peak sits is what names a phase), then one head per phase
    (Linear -> ``head_hidden`` -> ReLU -> 1 logit). ``mode="binary"``: the baseline of 001, one
    independent CNN of the same shape per phase. Loss: sum over phases of ``task_weights[k]``
    times BCE with positive weight n_neg/n_pos from the training frequencies (the "tailored
    cross-entropy"; ``positive_weighting=False`` gives plain BCE). AdamW(``lr``,
    ``weight_decay``), ``epochs`` passes in shuffled batches of ``batch``; ``threshold`` turns
    probabilities into presence.
    """

    mode: str = "multitask"
    channels: tuple[int, ...] = (16, 32, 64)
    kernel: int = 7
    pooled_length: int = 16
    head_hidden: int = 32
    task_weights: tuple[float, ...] | None = None
    positive_weighting: bool = True
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 60
    batch: int = 64
    copies: int = 0
    noise: float = 1 / 12
    threshold: float = 0.5

    def validate(self) -> None:
        super().validate()
        _choice(self, "mode", MTL_MODES)
        if not self.channels:
            raise ConfigError("channels needs at least one conv block width")
        for size in self.channels:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ConfigError(f"conv widths must be positive integers, got {size!r}")
        for name in ("kernel", "pooled_length", "head_hidden", "epochs", "batch"):
            _integer(self, name, minimum=1)
        _integer(self, "copies", minimum=0)
        _positive(self, "lr")
        if self.weight_decay < 0 or self.noise < 0:
            raise ConfigError("weight_decay and noise must be >= 0")
        if self.task_weights is not None and any(w < 0 for w in self.task_weights):
            raise ConfigError(f"task_weights must be >= 0, got {self.task_weights!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold!r}")


# The model names the recipes know, with the configuration each one takes.
CONFIGS: dict[str, type[XrdConfig]] = {
    "panosc-binned": BinnedVoteConfig,
    "panosc-binned-learned": BinnedLearnedConfig,
    "spectra1d": Spectra1DConfig,
    "mtl-phase": MultiTaskConfig,
}


def config_for(model_name: str, config: XrdConfig | Mapping[str, Any] | None = None) -> XrdConfig:
    """The configuration of ``model_name``: defaults, a mapping of overrides, or a config object."""
    if model_name not in CONFIGS:
        raise ConfigError(f"unknown diffraction model {model_name!r}; choose one of "
                          f"{', '.join(CONFIGS)}")
    kind = CONFIGS[model_name]
    if config is None:
        return kind()
    if isinstance(config, XrdConfig):
        if type(config) is not kind:
            raise ConfigError(f"model {model_name!r} takes a {kind.__name__}, got "
                              f"{type(config).__name__}")
        return config
    return kind.from_dict(config)


# -- helpers ---------------------------------------------------------------------------------
def _check_keys(kind: type, keys) -> None:
    valid = [f.name for f in fields(kind)]
    unknown = sorted(k for k in keys if k not in valid)
    if unknown:
        raise ConfigError(f"unknown {kind.__name__} key(s) {unknown}; valid keys: "
                          f"{', '.join(valid)}")


def _tuples(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _lists(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _choice(config, name: str, options: tuple[str, ...]) -> None:
    if getattr(config, name) not in options:
        raise ConfigError(f"{name} must be one of {options}, got {getattr(config, name)!r}")


def _integer(config, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _positive(config, name: str) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a number > 0, got {value!r}")


def _recipe(config) -> None:
    """The fields every full-batch recipe has: lr, weight_decay, iterations, copies, noise."""
    _positive(config, "lr")
    _integer(config, "iterations", minimum=1)
    _integer(config, "copies", minimum=0)
    if config.weight_decay < 0 or config.noise < 0:
        raise ConfigError("weight_decay and noise must be >= 0, got "
                          f"{config.weight_decay!r} and {config.noise!r}")
