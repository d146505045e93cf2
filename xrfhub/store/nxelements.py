"""Processed line intensities (the ``elements`` kind) inside a core's NeXus file.

Each ingested element table of a core becomes one NXdata group ``elements_NNNN`` in the core's
``core`` entry: quantities (area, area_std, chi2, cps, cps_std) over ``point`` x ``line``, the
per-point columns in an NXcollection, the vendor's flags, the source and its metadata.
"""
from __future__ import annotations

import json

import h5py
import numpy as np

from ..records import ElementTable
from .nxfields import STR as _STR, dtype_name as _dtype_name, field as _field, group as _group
from .nxfields import read_column as _read_column, read_table as _read_table, text_of as _str

PREFIX = "elements_"


def write(core: h5py.Group, tables: list[ElementTable]) -> None:
    for i, table in enumerate(tables, start=1):
        g = _group(core, f"{PREFIX}{i:04d}", "NXdata")
        n, m = len(table.points), len(table.lines)
        point = g.create_dataset("point", data=np.arange(n, dtype=np.int64))
        point.make_scale("point")
        line = _field(g, "line", np.array(table.lines, dtype=object), long_name="emission line")
        line.make_scale("line")
        quantities = sorted(table.values)
        for q in quantities:
            ds = g.create_dataset(q, data=np.asarray(table.values[q], dtype=np.float64).reshape(n, m))
            ds.attrs["long_name"] = f"{q} per point and line (vendor peak fit)"
            ds.dims[0].attach_scale(point)
            ds.dims[1].attach_scale(line)
        flags = table.flags if table.flags is not None else np.full((n, m), "", dtype=object)
        _field(g, "flags", np.asarray(flags, dtype=object).reshape(n, m), long_name="per-value flags")
        points = _group(g, "points", "NXcollection")
        columns = []
        for col in table.points.columns:
            name = str(col).replace("/", "_")
            _field(points, name, table.points[col].to_numpy())
            columns.append([str(col), name, _dtype_name(table.points[col])])
        points.attrs["columns"] = json.dumps(columns)
        g.attrs.update({"signal": "area" if "area" in quantities else quantities[0],
                        "axes": np.array(["point", "line"], dtype=_STR), "point_indices": np.int32(0),
                        "line_indices": np.int32(1), "source": table.source,
                        "quantities": json.dumps(quantities), "metadata": json.dumps(table.metadata, default=str)})


def read(core: h5py.Group) -> list[ElementTable]:
    out = []
    for name in sorted(k for k in core if k.startswith(PREFIX)):
        g = core[name]
        lines = [str(x) for x in _read_column(g["line"], "str")]
        values = {q: g[q][()] for q in json.loads(g.attrs["quantities"])}
        flags = np.asarray(_read_column(g["flags"], "str"), dtype=object)
        points = _read_table(g["points"], g["points"].attrs["columns"])
        out.append(ElementTable(_str_attr(g.attrs["source"]), points, lines, values, flags,
                                json.loads(_str_attr(g.attrs["metadata"]))))
    return out


def _str_attr(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["write", "read", "PREFIX", "_str"]
