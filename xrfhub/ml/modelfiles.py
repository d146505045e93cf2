"""Fitted non-torch models on disk: ``model.json`` (parameters) beside ``model.npz`` (arrays).

The baseline and the log-ratio calibration are scikit-learn-sized models: a few arrays and
their settings. They are kept as JSON and an ``.npz`` read without pickle, with the arrays'
sha256 in the JSON, so a run folder holds no executable content and a file changed after
training is refused rather than silently predicting something else.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..errors import InputError

ARRAYS_FILE = "model.npz"
PARAMS_FILE = "model.json"


def save(folder, params: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and ``params`` (with the arrays' sha256) into ``folder``; returns the ``.npz``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ARRAYS_FILE
    np.savez(path, **arrays)
    params = {**params, "arrays_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (folder / PARAMS_FILE).write_text(json.dumps(params, indent=1))
    return path


def load(folder, *, format: str, names: tuple[str, ...], what: str) -> tuple[dict, dict[str, np.ndarray], Path]:
    """``(params, arrays as float64, path of the .npz)`` of a model ``save`` wrote.

    ``format`` is the value ``params["format"]`` must hold and ``names`` the arrays expected;
    ``what`` names the run kind in refusals (``"baseline"`` -> "train one with `xrfhub train
    baseline`"). Missing, damaged, changed or foreign files raise :class:`InputError`.
    """
    folder = Path(folder)
    params_path, arrays_path = folder / PARAMS_FILE, folder / ARRAYS_FILE
    for path in (params_path, arrays_path):
        if not path.is_file():
            raise InputError(path, f"missing: not a trained {what} run (train one with `xrfhub train {what}`)")
    try:
        params = json.loads(params_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(params_path, f"not valid JSON ({exc.msg})", line=exc.lineno) from None
    if params.get("format") != format:
        raise InputError(params_path, f"format {params.get('format')!r}, expected {format!r}", field="format")
    if params.get("arrays_sha256") not in (None, hashlib.sha256(arrays_path.read_bytes()).hexdigest()):
        raise InputError(arrays_path, f"sha256 differs from the one recorded in {PARAMS_FILE}: the file changed "
                         "after training; retrain", field="arrays_sha256")
    try:
        with np.load(arrays_path, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name], dtype=np.float64) for name in names}
    except (KeyError, ValueError, OSError) as exc:
        raise InputError(arrays_path, f"cannot read the model arrays ({exc}); expected {', '.join(names)}") from None
    return params, arrays, arrays_path
