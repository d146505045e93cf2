"""The ``elements`` kind: vendor peak-fit tables of every core over ``point`` x ``line``."""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .records import CoreRecord
from .store import layout


def elements_dataset(records: dict[str, CoreRecord]) -> xr.Dataset | None:
    """All element tables over ``point`` x ``line``: lines are the union, NaN where a table lacks one."""
    tables = [t for c in sorted(records) for t in records[c].elements]
    if not tables:
        return None
    lines = sorted({ln for t in tables for ln in t.lines}, key=_line_order)
    quantities = sorted({q for t in tables for q in t.values})
    n = sum(len(t.points) for t in tables)
    data = {q: np.full((n, len(lines)), np.nan) for q in quantities}
    flags = np.full((n, len(lines)), "", dtype=object)
    row = 0
    for t in tables:
        cols = [lines.index(ln) for ln in t.lines]
        rows = slice(row, row + len(t.points))
        for q, v in t.values.items():
            data[q][rows, cols] = v
        if t.flags is not None:
            flags[rows, cols] = t.flags
        row += len(t.points)
    points = pd.concat([t.points.assign(source=t.source) for t in tables], ignore_index=True)
    coords = {}
    for col in points.columns:
        values = points[col].to_numpy()
        if points[col].dtype.kind in "fiub":
            coords[col] = ((layout.POINT,), values)
        else:
            coords[col] = ((layout.POINT,), np.array(["" if v is None or v != v else str(v) for v in values],
                                                     dtype=object))
    coords["line"] = ((layout.LINE,), np.array(lines, dtype=object), {"long_name": "emission line"})
    variables = {q: ((layout.POINT, layout.LINE), v, {"long_name": f"{q} (vendor peak fit)"})
                 for q, v in data.items()}
    variables["flags"] = ((layout.POINT, layout.LINE), flags, {"long_name": "'negative' where the area is < 0"})
    return xr.Dataset(variables, coords=coords, attrs={"kind": "elements"})


def _line_order(line: str):
    from .lines import atomic_number, element_of

    try:
        return (atomic_number(element_of(line)), line)
    except (ValueError, KeyError):
        return (999, line)
