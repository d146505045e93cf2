"""NeXus fields as the store writes and reads them: groups, columns, strings, tables.

The bottom of the NeXus modules (``nexus``, ``nxscan``, ``nxlab``, ``nxelements``,
``nxdiffraction``, ``nxrun``): they all write columns the same way, so the helpers live here, not
privately in one of them.
"""
from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pandas as pd

STR = h5py.string_dtype("utf-8")
#: the file and memory types h5py gives a ``str`` attribute (a scalar variable-length UTF-8 string)
_STR_FILE_TYPE = h5py.h5t.py_create(STR, logical=True)
_STR_MEM_TYPE = h5py.h5t.py_create(STR)
_BAD_NAME = re.compile(r"[^A-Za-z0-9_]")


def nexus_name(name: str, taken=()) -> str:
    """A NeXus-valid object name (letters, digits, underscore; no leading digit), unique in ``taken``."""
    out = _BAD_NAME.sub("_", name) or "_"
    if out[0].isdigit():
        out = "_" + out
    base, i = out, 2
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    return out


def scalar(parent: h5py.Group, name: str, value: str):
    """One text field (a scalar variable-length UTF-8 string)."""
    return parent.create_dataset(name, data=str(value), dtype=STR)


def set_attrs(obj, attrs: dict) -> None:
    """Attributes of an object this write just created, stored exactly as ``obj.attrs[k] = v`` stores them.

    ``str`` values (nearly all of a scan entry's ~65 attributes) go straight to ``h5a.create``
    with the types h5py would choose: h5py's own path first looks for an attribute to replace,
    guesses the type and builds two type objects per attribute, twice the cost. Any other value
    takes h5py's path.
    """
    oid = obj.id
    for key, value in attrs.items():
        if type(value) is not str or not key.isascii():
            obj.attrs[key] = value
            continue
        attr = h5py.h5a.create(oid, key.encode(), _STR_FILE_TYPE, h5py.h5s.create_simple(()))
        try:
            attr.write(np.array(value, dtype=STR), mtype=_STR_MEM_TYPE)
        finally:
            attr.close()


def group(parent: h5py.Group, name: str, nx_class: str, **attrs) -> h5py.Group:
    g = parent.create_group(name)
    set_attrs(g, {"NX_class": nx_class, **attrs})
    return g


def text(values) -> np.ndarray:
    """Object array of str for a variable-length UTF-8 dataset (None/NaN become "")."""
    return np.array(["" if v is None or (isinstance(v, float) and v != v) else str(v)
                     for v in values], dtype=object)


def field(parent: h5py.Group, name: str, values, *, units: str = "", long_name: str = ""):
    """Write one column as a whole array; strings as variable-length UTF-8."""
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        ds = parent.create_dataset(name, data=text(arr.ravel()).reshape(arr.shape), dtype=STR)
    else:
        ds = parent.create_dataset(name, data=arr)
    if units or long_name:
        set_attrs(ds, {k: v for k, v in (("units", units), ("long_name", long_name)) if v})
    return ds


def read_column(ds: h5py.Dataset, dtype: str):
    if ds.dtype.kind == "O" or h5py.check_string_dtype(ds.dtype) is not None:
        return np.asarray(ds.asstr()[()], dtype=object)
    return ds[()].astype(dtype, copy=False)


def text_of(ds) -> str:
    value = ds[()]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def dtype_name(series: pd.Series) -> str:
    """The column's dtype as a string ``astype`` understands ("object", "str", "float64", ...)."""
    name = str(series.dtype)
    return "object" if name == "category" or series.dtype.kind in "US" else name


def read_table(group: h5py.Group, columns_json) -> pd.DataFrame:
    """A table written column by column; @columns lists (column, field path, dtype) in order."""
    columns = json.loads(columns_json)
    return pd.DataFrame({col: pd.Series(read_column(group[field], dtype)).astype(dtype)
                         for col, field, dtype in columns})
