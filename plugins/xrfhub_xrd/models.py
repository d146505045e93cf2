"""The diffraction classifiers by name: one place that turns (name, config, grid) into a module.

========================  ==============================================  =======================
name                      model                                           labels
========================  ==============================================  =======================
panosc-binned             ``BinnedVote`` (003 Model A)                     classes ``(N,)``
panosc-binned-learned     ``BinnedLearned`` (003 Model B, two classes)     classes ``(N,)``
spectra1d                 ``FCNN``/``CNN``/``Transformer``/``LSTM``/       classes ``(N,)``
                          ``ResNet`` by ``arch`` (003's 1-D models)
mtl-phase                 ``MultiTaskPhase`` or ``BinaryPhaseCNNs``        multi-hot ``(N, K)``
                          (inspired by 001)
========================  ==============================================  =======================

Every module takes prepared (scaled) intensities ``(N, P)`` on the training grid.
"""
from __future__ import annotations

import numpy as np
from torch import nn

from xrfhub.errors import ConfigError

from .binned import BinnedLearned, BinnedVote, BinSubnets, believability, bin_layout
from .config import (BinnedLearnedConfig, BinnedVoteConfig, MultiTaskConfig, Spectra1DConfig,
                     XrdConfig)
from .multitask import (BinaryPhaseCNNs, MultiTaskPhase, PhaseTrunk, build_phase_model,
                        tailored_bce)
from .spectra1d import CNN, FCNN, LSTM, ResNet, Transformer, build_spectra1d

__all__ = ["BinnedVote", "BinnedLearned", "BinSubnets", "believability", "bin_layout", "FCNN",
           "CNN", "Transformer", "LSTM", "ResNet", "MultiTaskPhase", "BinaryPhaseCNNs",
           "PhaseTrunk", "tailored_bce", "build_model", "count_parameters"]


def build_model(model_name: str, config: XrdConfig, two_theta: np.ndarray,
                outputs: int) -> nn.Module:
    """The module of ``model_name`` for patterns on ``two_theta``.

    ``outputs`` is the number of classes, or of phases for ``mtl-phase``.
    """
    if isinstance(config, BinnedVoteConfig) and model_name == "panosc-binned":
        return BinnedVote(two_theta, outputs, config.bins, config.hidden, config.vote)
    if isinstance(config, BinnedLearnedConfig) and model_name == "panosc-binned-learned":
        if outputs != 2:
            raise ConfigError(f"panosc-binned-learned is the published binary model and takes "
                              f"exactly 2 classes, got {outputs}; use panosc-binned or "
                              "spectra1d for more")
        return BinnedLearned(two_theta, config.bins, config.hidden)
    if isinstance(config, Spectra1DConfig) and model_name == "spectra1d":
        return build_spectra1d(config, len(two_theta), outputs)
    if isinstance(config, MultiTaskConfig) and model_name == "mtl-phase":
        return build_phase_model(config, outputs)
    raise ConfigError(f"model {model_name!r} cannot be built from a {type(config).__name__}")


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers and do not count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
