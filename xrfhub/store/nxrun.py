"""A prediction run as its own NeXus file: ``runs/<run>.nxs`` in the generation.

The archival per-core files are never rewritten to add derived data; a run is one file:

    /entry (NXentry)                title = run id
      process (NXprocess)           program (plugin), version, date, parameters (JSON: model,
                                    config, targets, provenance)
        inputs (NXcollection)       core, sha256: digest of each predicted core's input counts
      values (NXdata)               key arrays, then one array per variable, one row per value
        core, scan, depth_mm        (spectra) or core, pattern_id (diffraction patterns): the key
        value_<name>                float32 (or int8 / strings for classifiers), (rows[, phase])
        core_names, core_offsets    rows of core_names[i] are core_offsets[i]:core_offsets[i+1]

Values are keyed, never by row number, so ``xrfhub rebuild`` places them onto the hub's rows
however the store has grown since; rows are grouped by core so a write that changes one core
reads just that core's slice.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import layout
from .nxfields import STR as _STR, text as _text

import h5py
import numpy as np
import pandas as pd

#: how stores before run files named a run kept in a core file (an NXprocess ``prediction_<run>``)
OLD_PREFIX = "prediction_"


@dataclass
class RunFile:
    """What a run file holds (``keys`` one row per value, grouped by core in sorted order)."""

    run_id: str
    program: str
    version: str
    date: str
    parameters: dict
    keys: pd.DataFrame
    values: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)


def write(path: Path, run: RunFile, uuid: str) -> None:
    """Write ``run`` to ``path`` (a new file in an uncommitted generation); ``uuid`` is the run's
    stable identifier (``identifiers.run_uuid``: derived above the store, which keeps no ids policy)."""
    order = np.argsort(run.keys["core"].to_numpy().astype(str), kind="stable")
    keys = run.keys.iloc[order].reset_index(drop=True)
    cores = keys["core"].to_numpy().astype(str)
    names, starts = np.unique(cores, return_index=True)
    offsets = np.append(starts, len(cores)).astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs.update({"NX_class": "NXroot", "default": "entry", "file_name": path.name,
                        "creator": f"{run.program} {run.version}"})
        entry = f.create_group("entry")
        entry.attrs.update({"NX_class": "NXentry", "default": "values"})
        entry.create_dataset("title", data=run.run_id, dtype=_STR)
        # the run's stable identifiers, as the core files carry theirs (FAIR: F1)
        entry.create_dataset("entry_identifier", data=run.run_id, dtype=_STR)
        entry.create_dataset("entry_identifier_uuid", data=uuid, dtype=_STR)
        proc = entry.create_group("process")
        proc.attrs["NX_class"] = "NXprocess"
        for name, value in (("program", run.program), ("version", run.version), ("date", run.date),
                            ("parameters", json.dumps(run.parameters, sort_keys=True, default=str))):
            proc.create_dataset(name, data=value, dtype=_STR)
        inputs = proc.create_group("inputs")
        inputs.attrs["NX_class"] = "NXcollection"
        inputs.create_dataset("core", data=_text(sorted(run.inputs)), dtype=_STR)
        inputs.create_dataset("sha256", data=_text(run.inputs[c] for c in sorted(run.inputs)), dtype=_STR)
        data = entry.create_group("values")
        first = next(iter(run.values), "")
        data.attrs.update({"NX_class": "NXdata", "signal": f"value_{first}"})
        for col in keys.columns:
            v = keys[col].to_numpy()
            if v.dtype.kind in "OUS":
                data.create_dataset(col, data=_text(v), dtype=_STR)
            else:
                data.create_dataset(col, data=v)
        for name, v in run.values.items():
            v = np.asarray(v)[order]
            if v.dtype.kind in "OUS":
                data.create_dataset(f"value_{name}", data=_text(v.ravel()).reshape(v.shape), dtype=_STR)
            else:
                data.create_dataset(f"value_{name}", data=v, compression="gzip", compression_opts=1)
        data.create_dataset("core_names", data=_text(names), dtype=_STR)
        data.create_dataset("core_offsets", data=offsets)
        data.attrs["key_columns"] = json.dumps(list(keys.columns))


def _read(ds: h5py.Dataset, sl=slice(None)) -> np.ndarray:
    v = ds[sl]
    if ds.dtype.kind == "O" or h5py.check_string_dtype(ds.dtype) is not None:
        return np.array([x.decode() if isinstance(x, bytes) else str(x) for x in np.ravel(v)],
                        dtype=object).reshape(np.shape(v))
    return v


def read(path, cores=None) -> RunFile:
    """A run file; ``cores`` limits the key and value rows to those cores (read by slice)."""
    with h5py.File(path, "r") as f:
        entry = f["entry"]
        proc = entry["process"]
        text = {n: _scalar(proc[n]) for n in ("program", "version", "date", "parameters")}
        inputs = dict(zip(_read(proc["inputs"]["core"]), _read(proc["inputs"]["sha256"])))
        data = entry["values"]
        columns = json.loads(data.attrs["key_columns"])
        names = list(_read(data["core_names"]))
        offsets = data["core_offsets"][:]
        spans = ([(offsets[i], offsets[i + 1]) for i, c in enumerate(names) if c in set(cores)]
                 if cores is not None else [(0, int(offsets[-1]))])
        keys, values = {}, {}
        for col in columns:
            keys[col] = _concat([_read(data[col], slice(a, b)) for a, b in spans], data[col])
        for name in data:
            if name.startswith("value_"):
                values[name[len("value_"):]] = _concat([_read(data[name], slice(a, b)) for a, b in spans], data[name])
        run_id = _scalar(entry["title"])
    return RunFile(run_id, text["program"], text["version"], text["date"], json.loads(text["parameters"]),
                   pd.DataFrame(keys), values, inputs)


def _scalar(ds: h5py.Dataset) -> str:
    v = ds[()]
    return v.decode() if isinstance(v, bytes) else str(v)


def _concat(parts: list[np.ndarray], ds: h5py.Dataset) -> np.ndarray:
    if parts:
        return np.concatenate(parts)
    return np.zeros((0, *ds.shape[1:]), dtype=object if h5py.check_string_dtype(ds.dtype) else ds.dtype)


def run_entry(run) -> dict:
    """A run's line in the manifest: its file, hub group, kind and the rows it predicts."""
    kind = run.parameters.get("kind", "spectra")
    entry = {"file": layout.run_file(run.run_id), "group": layout.predictions_group(run.run_id), "kind": kind,
             "created": run.date}
    if kind == "spectra":
        entry["channels"] = int(run.parameters["channels"])
    return entry


def migrate_runs(records: dict):
    """Take the runs old stores kept in core files out of the records, as run files.

    Returns (run id -> ``RunFile``, cores whose records changed and whose files must be rewritten).
    """
    found: dict[str, list] = {}
    moved = set()
    for core, rec in sorted(records.items()):
        keep = []
        for p in rec.processes:
            if p.name.startswith(OLD_PREFIX):
                found.setdefault(p.parameters["run_id"], []).append((core, p))
                moved.add(core)
            else:
                keep.append(p)
        rec.processes = keep
    runs = {}
    for run_id, parts in found.items():
        first = parts[0][1]
        keys = {"core": np.concatenate([np.full(len(next(iter(p.data.values()))), c, dtype=object) for c, p in parts])}
        key_cols = (["pattern_id"] if "pattern_id" in first.data else
                    ["source", "spectrum", "depth_mm"] if "spectrum" in first.data else ["scan", "depth_mm"])
        for k in key_cols:
            keys[k] = np.concatenate([np.asarray(p.data[k]) for _, p in parts])
        values = {k[len("value_"):]: np.concatenate([np.asarray(p.data[k]) for _, p in parts])
                  for k in first.data if k.startswith("value_")}
        params = {k: v for k, v in first.parameters.items() if k != "run_id"}
        # interval bounds were columns lower_<t> / upper_<t>; a run file keeps them as <t>_lower / <t>_upper
        bounds = {f"{k.split('_', 1)[1]}_{k.split('_', 1)[0]}": np.concatenate([np.asarray(p.data[k]) for _, p in parts])
                  for k in first.data if k.startswith(("lower_", "upper_"))}
        if bounds:
            values.update(bounds)
            params["extra"] = sorted(set(params.get("extra", [])) | set(bounds))
        runs[run_id] = RunFile(run_id, first.program, first.version, first.date, params, pd.DataFrame(keys), values)
    return runs, moved
