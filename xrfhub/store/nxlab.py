"""A core's lab samples (the ``samples`` kind) inside its NeXus file's ``core`` entry.

``lab`` is an NXdata over ``sample``: the fixed columns (top, bottom, mid in mm; core, line,
sample id, source) and every numeric property in wt% with the unit as the file wrote it
(@unit_as_written); ``lab_flags`` (NXcollection) holds the PANGAEA-style flag of each value.
@columns (JSON: column, field, dtype) restores both tables exactly.
"""
from __future__ import annotations

import json

import h5py
import numpy as np

from ..records import CoreRecord
from .nxfields import STR as _STR, dtype_name as _dtype_name, field as _field, group as _group
from .nxfields import nexus_name, read_table as _read_table

#: Lab columns with a fixed field name and unit; every other numeric column is a property (wt%).
LAB_FIXED = {"top_mm": ("top", "mm"), "bottom_mm": ("bottom", "mm"), "mid_mm": ("mid", "mm"),
             "core": ("core", ""), "line": ("line", ""), "sample_id": ("sample_id", ""),
             "source": ("source", "")}
LAB_UNIT = "wt%"


def write(entry: h5py.Group, record: CoreRecord) -> None:
    """The record's lab samples (``lab``) and their flags (``lab_flags``) in the core entry."""
    if not (len(record.lab.columns) or len(record.lab_flags.columns) or record.lab_units):
        return
    lab = _group(entry, "lab", "NXdata")
    m = len(record.lab)
    sample = lab.create_dataset("sample", data=np.arange(m, dtype=np.int64))
    sample.attrs["long_name"] = "lab sample index"
    sample.make_scale("sample")
    columns, taken, props = [], {"sample"}, []
    for col in record.lab.columns:
        field, units = LAB_FIXED.get(col, (None, None))
        is_prop = field is None and record.lab[col].dtype.kind in "fiu"
        field = nexus_name(field or str(col), taken)
        taken.add(field)
        ds = _field(lab, field, record.lab[col].to_numpy(), units=LAB_UNIT if is_prop else units,
                    long_name=str(col))
        if is_prop:
            props.append(field)
            ds.attrs["unit_as_written"] = record.lab_units.get(col, "")
        ds.dims[0].attach_scale(sample)
        columns.append([str(col), field, _dtype_name(record.lab[col])])
    lab.attrs["signal"] = props[0] if props else "sample"
    if len(props) > 1:
        lab.attrs["auxiliary_signals"] = np.array(props[1:], dtype=_STR)
    lab.attrs.update({"axes": np.array(["sample"], dtype=_STR), "sample_indices": np.int32(0),
                      "columns": json.dumps(columns),
                      "units_as_written": json.dumps(record.lab_units)})

    flags = _group(entry, "lab_flags", "NXcollection")
    fcols, taken = [], set()
    for col in record.lab_flags.columns:
        field = nexus_name(str(col), taken)
        taken.add(field)
        _field(flags, field, record.lab_flags[col].to_numpy(), long_name=f"quality flag of {col}")
        fcols.append([str(col), field, _dtype_name(record.lab_flags[col])])
    flags.attrs["columns"] = json.dumps(fcols)


def read(entry: h5py.Group, record: CoreRecord) -> None:
    """Fill the record's lab samples, units and flags from the core entry (nothing if it has none)."""
    if "lab" not in entry:
        return
    lab = entry["lab"]
    record.lab = _read_table(lab, lab.attrs["columns"])
    record.lab_units = json.loads(lab.attrs["units_as_written"])
    record.lab_flags = _read_table(entry["lab_flags"], entry["lab_flags"].attrs["columns"])
