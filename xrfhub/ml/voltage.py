"""Tube voltage in training and prediction: which spectra a model can take, and saying so.

Spectra measured at 10, 30 and 50 kV share core and depth but not their shape (the tube excites
different lines), so a model trained on one voltage's spectra can only predict spectra of that
voltage. Models here are trained *per voltage*: a run's ``tube_kv`` names the spectra it is
fine-tuned on and predicts. Its lab pairs are the mean spectra the store aligned with the lab
samples, at the voltage chosen at ingest (``--align-kv``); a run for another voltage would learn
from one voltage and predict another, so :func:`check_pair_voltage` refuses it.
"""
from __future__ import annotations

import numpy as np

from .. import api
from ..errors import ConfigError, StoreError


def pair_voltage(store) -> float | None:
    """The tube voltage (kV) of the mean spectra paired with lab samples (None: not recorded)."""
    alignment = api.manifest(store).get("alignment") or {}
    kv = alignment.get("tube_kv")
    return None if kv is None else float(kv)


def check_pair_voltage(store, tube_kv: float | None) -> None:
    """Refuse a fine-tune for ``tube_kv`` on a store whose lab pairs are of another voltage."""
    paired = pair_voltage(store)
    if tube_kv is None or paired is None or np.isclose(paired, float(tube_kv)):
        return
    raise ConfigError(f"{store}: its lab samples are paired with {paired:g} kV spectra (ingest --align-kv), "
                      f"but this run is for {float(tube_kv):g} kV spectra (tube_kv): it would learn from one "
                      f"voltage and predict another. Train with --set tube_kv={paired:g}, or ingest again with "
                      f"--align-kv {float(tube_kv):g} for a {float(tube_kv):g} kV model.")


def prediction_coverage(store, run_id: str) -> str:
    """One line: how many spectra of each voltage prediction run ``run_id`` covers.

    A model predicts the spectra of its own voltage; the others stay NaN, and the line says so
    rather than letting a user believe every spectrum was predicted.
    """
    try:
        ds = api.open(store, "predictions", run=run_id, index=False)
    except StoreError:  # not a spectra prediction run (e.g. diffraction): nothing to say
        return ""
    if "tube_kv" not in ds.coords or not ds.data_vars:
        return ""
    kv = ds["tube_kv"].values.astype(float)
    done = np.zeros(len(kv), dtype=bool)
    for name in ds.data_vars:
        values = ds[name].values
        if values.ndim == 1 and values.dtype.kind == "f":
            done |= np.isfinite(values)
    parts, left = [], []
    for v in np.unique(kv[np.isfinite(kv)]):
        at = np.isclose(kv, v)
        n = int((done & at).sum())
        (parts if n else left).append(f"{n or int(at.sum())} at {v:g} kV")
    line = "predicted " + (", ".join(parts) or "no spectra")
    if left:
        line += (f"; not predicted: {', '.join(left)} (a model takes the voltage it was trained on; "
                 "train one per voltage with --set tube_kv=KV on a store aligned at that voltage)")
    return line
