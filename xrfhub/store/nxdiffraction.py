"""Diffraction patterns (the ``diffraction`` kind) inside a series' NeXus file.

Each grid of a series becomes one NXdata group ``diffraction_NNNN`` in the file's ``core`` entry,
laid out as NXmonopd/NXxrd data are: ``intensity`` (pattern x two_theta) over the dimension
scales ``pattern`` and ``two_theta`` (degrees), the optional third column as ``extra`` (with
its meaning in @kind), the per-pattern columns (id, source file and line, wavelength and where it
came from, original axis, scan coordinates) in an NXcollection. Labels of the series' patterns
are a table ``pattern_labels`` (NXcollection) beside them.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd

from ..diffraction import DiffractionBlock
from .nxfields import STR as _STR, dtype_name as _dtype_name, field as _field, group as _group, read_table as _read_table

PREFIX = "diffraction_"
LABELS = "pattern_labels"


def _table(parent: h5py.Group, name: str, frame: pd.DataFrame) -> None:
    g = _group(parent, name, "NXcollection")
    columns = []
    for col in frame.columns:
        field = str(col).replace("/", "_")
        _field(g, field, frame[col].to_numpy())
        columns.append([str(col), field, _dtype_name(frame[col])])
    g.attrs["columns"] = json.dumps(columns)


def write(core: h5py.Group, blocks: dict[str, DiffractionBlock], labels: pd.DataFrame,
          compression="gzip", level=1) -> None:
    for i, (grid, block) in enumerate(blocks.items(), start=1):
        g = _group(core, f"{PREFIX}{i:04d}", "NXdata")
        n, m = block.intensity.shape
        pattern = g.create_dataset("pattern", data=np.arange(n, dtype=np.int64))
        pattern.make_scale("pattern")
        tt = _field(g, "two_theta", block.two_theta, units="degrees", long_name="scattering angle 2-theta")
        tt.make_scale("two_theta")
        chunks = (max(1, min(n, 64)), m)
        ds = g.create_dataset("intensity", data=block.intensity, chunks=chunks, compression=compression,
                              compression_opts=level, shuffle=True)
        ds.attrs.update({"units": "counts", "long_name": "diffracted intensity"})
        ds.dims[0].attach_scale(pattern)
        ds.dims[1].attach_scale(tt)
        if block.extra is not None:
            extra = g.create_dataset("extra", data=block.extra, chunks=chunks, compression=compression,
                                     compression_opts=level, shuffle=True)
            kinds = sorted(set(block.coords["extra_kind"]) - {""})
            extra.attrs["kind"] = ";".join(kinds) or "unknown"
        _table(g, "patterns", block.coords)
        g.attrs.update({"signal": "intensity", "axes": np.array(["pattern", "two_theta"], dtype=_STR),
                        "pattern_indices": np.int32(0), "two_theta_indices": np.int32(1), "grid": grid,
                        "scan_names": json.dumps(block.scan_names)})
    if labels is not None and not labels.empty:
        _table(core, LABELS, labels)


def read(core: h5py.Group) -> tuple[dict[str, DiffractionBlock], pd.DataFrame]:
    blocks = {}
    for name in sorted(k for k in core if k.startswith(PREFIX)):
        g = core[name]
        coords = _read_table(g["patterns"], g["patterns"].attrs["columns"])
        extra = g["extra"][()] if "extra" in g else None
        block = DiffractionBlock(g["two_theta"][()].astype(np.float64), g["intensity"][()], coords, extra,
                                 json.loads(g.attrs["scan_names"]))
        blocks[str(g.attrs["grid"])] = block
    labels = _read_table(core[LABELS], core[LABELS].attrs["columns"]) if LABELS in core else pd.DataFrame()
    return blocks, labels
