"""Validation of core files: our own structural checks, and nexusformat's ``nxcheck``.

``validate_core_file`` checks what ``schemas/NXxrf_core_scan.nxdl.xml`` requires plus what NXDL
cannot say (shapes agree across groups, depth strictly increasing, units present, the ``core``
entry complete). ``nxcheck`` runs nexusformat's validator - the same functions the ``nxcheck``
command calls - on every scan entry against our application definition and on the whole file
against the NeXus base classes, and sums the errors it reports.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
from pathlib import Path

import h5py
import numpy as np

from ..errors import StoreError
from .nexus import CORE_ENTRY
from .nxfields import text_of as _str
from .nxscan import SCAN_GROUPS, SCHEMA_NAME, column_field, scan_entries
from .layout import SPECTRUM_COORDS

#: scalar fields every scan entry must hold
SCAN_SCALARS = ("definition", "title", "entry_identifier", "entry_identifier_uuid", "instrument/name",
                "instrument/source/type", "instrument/source/probe",
                "instrument/source/anode_material", "sample/name", "sample/section")
#: per-point fields every scan entry must hold -> their units ("" for none), from the layout
POINT_FIELDS: dict[str, str] = {
    **{column_field(col): units for col, (_dtype, units, _long) in SPECTRUM_COORDS.items()},
    column_field("header"): "", column_field("warnings"): "",
}


def schema_dir() -> Path:
    """Folder of our NXDL files: ``$XRFHUB_SCHEMAS`` if set, else ``<repo>/schemas``."""
    env = os.environ.get("XRFHUB_SCHEMAS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "schemas"


def schema_path() -> Path:
    return schema_dir() / f"{SCHEMA_NAME}.nxdl.xml"


# --------------------------------------------------------------------------- our own validator
def validate_core_file(path) -> list[str]:
    """Problems found in the core file at ``path``; an empty list means it is valid."""
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        return [f"{path}: cannot be opened as HDF5: {exc}"]
    with f:
        problems = _check_root(f)
        for name in f:
            obj = f[name]
            if not isinstance(obj, h5py.Group) or _nx_class(obj) != "NXentry":
                problems.append(f"/{name}: the root may only hold NXentry groups")
        for name in scan_entries(f):
            problems += [f"/{name}: {p}" for p in _check_scan(f[name])]
        undeclared = [n for n in f if n != CORE_ENTRY and n not in scan_entries(f)]
        problems += [f"/{n}: entry without definition = {SCHEMA_NAME!r}" for n in undeclared]
        if CORE_ENTRY in f:
            problems += [f"/{CORE_ENTRY}: {p}" for p in _check_core(f[CORE_ENTRY])]
        else:
            problems.append(f"/{CORE_ENTRY}: required entry is missing")
    return problems


def _nx_class(obj) -> str:
    value = obj.attrs.get("NX_class", "")
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_root(f: h5py.File) -> list[str]:
    problems = []
    if _nx_class(f) != "NXroot":
        problems.append("/: @NX_class must be 'NXroot'")
    for attr in ("file_name", "file_time", "creator", "default"):
        if attr not in f.attrs:
            problems.append(f"/: required attribute @{attr} is missing")
    default = f.attrs.get("default")
    if default is not None and str(default) not in f:
        problems.append(f"/: @default names {default!r}, which is not an entry")
    return problems


def _check_scan(entry: h5py.Group) -> list[str]:
    problems = []
    for sub, nx_class in SCAN_GROUPS.items():
        if sub not in entry:
            problems.append(f"required group {sub} ({nx_class}) is missing")
        elif _nx_class(entry[sub]) != nx_class:
            problems.append(f"{sub} must be {nx_class}, not {_nx_class(entry[sub]) or 'unclassed'}")
    for field in SCAN_SCALARS:
        if field not in entry:
            problems.append(f"required field {field} is missing")
    if "definition" in entry and _str(entry["definition"]) != SCHEMA_NAME:
        problems.append(f"definition must be {SCHEMA_NAME!r}")
    if "data" not in entry or "counts" not in entry["data"]:
        return problems + ["required field data/counts is missing"]
    data = entry["data"]
    counts = data["counts"]
    if counts.ndim != 2 or counts.dtype != np.uint32:
        problems.append(f"data/counts must be 2-D uint32, got {counts.ndim}-D {counts.dtype}")
        return problems
    n, n_ch = counts.shape
    if counts.attrs.get("units") != "counts":
        problems.append("data/counts: @units must be 'counts'")
    expect = {"signal": "counts", "axes": ["depth", "energy"], "depth_indices": 0,
              "energy_indices": 1}
    for attr, value in expect.items():
        got = data.attrs.get(attr)
        got = [str(a) for a in got] if isinstance(got, np.ndarray) else got
        if got != value:
            problems.append(f"data: @{attr} must be {value!r}, got {got!r}")
    for field, units in {**_point_fields(entry), "data/energy": "keV"}.items():
        if field not in entry:
            problems.append(f"required field {field} is missing")
            continue
        ds = entry[field]
        want = (n_ch,) if field == "data/energy" else (n,)
        if ds.shape != want:
            problems.append(f"{field}: shape {ds.shape}, expected {want} like data/counts")
        if units and ds.attrs.get("units") != units:
            problems.append(f"{field}: @units must be {units!r}, got {ds.attrs.get('units')!r}")
    for axis in ("depth", "energy"):
        if axis in data and "long_name" not in data[axis].attrs:
            problems.append(f"data/{axis}: @long_name is missing")
    if "data/depth" in entry and entry["data/depth"].shape == (n,):
        depth = entry["data/depth"][()]
        if not np.isfinite(depth).all():
            problems.append("data/depth: has non-finite values")
        elif np.any(np.diff(depth) <= 0):
            i = int(np.flatnonzero(np.diff(depth) <= 0)[0])
            problems.append(f"data/depth: not strictly increasing at point {i + 1} "
                            f"({depth[i + 1]} after {depth[i]})")
    for key in ("start_time", "end_time"):
        if key in entry and not _ZONED.match(_str(entry[key])):
            problems.append(f"{key}: {_str(entry[key])!r} is not an ISO 8601 time with a zone")
    problems += _check_columns(entry)
    return problems


_ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _point_fields(entry: h5py.Group) -> dict[str, str]:
    """POINT_FIELDS where this file keeps them: files of layout 1 (per-point fields in
    ``points/`` and ``raw_headers/``, ``calibration_offset``) say so in their @columns."""
    if "points" not in entry or "columns" not in entry["points"].attrs:
        return POINT_FIELDS
    try:
        where = {col: target for col, target, _dtype in json.loads(entry["points"].attrs["columns"])}
    except (ValueError, TypeError):
        return POINT_FIELDS
    return {where.get(col, column_field(col)): SPECTRUM_COORDS[col][1] if col in SPECTRUM_COORDS else ""
            for col in (*SPECTRUM_COORDS, "header", "warnings")}


def _check_columns(entry: h5py.Group) -> list[str]:
    table = "points" if "points" in entry else "data"  # layout 1 kept the table in points/
    raw = entry[table].attrs.get("columns") if table in entry else None
    if raw is None:
        return [f"{table}: @columns (JSON) is missing"]
    try:
        columns = json.loads(raw)
    except ValueError:
        return [f"{table}: @columns is not valid JSON"]
    listed = {c[0] for c in columns}
    problems = [f"{table}: @columns does not list {c!r}" for c in SPECTRUM_COORDS if c not in listed]
    problems += [f"{table}: @columns names {t}, which is missing" for _c, t, _d in columns
                 if t not in entry]
    return problems


def _check_core(core: h5py.Group) -> list[str]:
    problems = []
    if _nx_class(core) != "NXentry":
        problems.append("@NX_class must be 'NXentry'")
    if "sample/name" not in core:
        problems.append("required field sample/name (core id) is missing")
    if "sources" not in core:
        problems.append("required group sources (NXcollection) is missing")
    else:
        table = core["sources"]
        missing = [f for f in ("name", "file_name", "checksum", "algorithm", "format", "size") if f not in table]
        problems += [f"sources: required field {f} is missing" for f in missing]
        if not missing:
            n = table["name"].shape[0]
            if any(table[f].shape != (n,) for f in ("file_name", "checksum", "format", "size")):
                problems.append("sources: name, file_name, checksum, format and size must have one row per file")
            sums = table["checksum"]
            bad = ([c for c in sums.asstr()[()] if not re.fullmatch(r"[0-9a-f]{64}", c)] if sums.size else [])
            if bad:
                problems.append(f"sources/checksum: {len(bad)} value(s) are not sha256 hex digests")
    if "lab" in core:
        problems += _check_lab(core)
    for name, g in core.items():
        if isinstance(g, h5py.Group) and _nx_class(g) == "NXprocess":
            for field in ("name", "program", "version", "date", "sequence_index",
                          "parameters/data", "results"):
                if field not in g:
                    problems.append(f"{name}: required field {field} is missing")
            if "parameters/data" in g:
                try:
                    json.loads(_str(g["parameters/data"]))
                except ValueError:
                    problems.append(f"{name}/parameters/data: not valid JSON")
    return problems


def _check_lab(core: h5py.Group) -> list[str]:
    lab, problems = core["lab"], []
    if "sample" not in lab:
        return ["lab: required field sample is missing"]
    m = lab["sample"].shape[0]
    for key in ("columns", "units_as_written", "signal"):
        if key not in lab.attrs:
            problems.append(f"lab: required attribute @{key} is missing")
    for name, ds in lab.items():
        if ds.shape != (m,):
            problems.append(f"lab/{name}: shape {ds.shape}, expected ({m},) like lab/sample")
        if name in ("top", "bottom", "mid") and ds.attrs.get("units") != "mm":
            problems.append(f"lab/{name}: @units must be 'mm'")
        if "unit_as_written" in ds.attrs and ds.attrs.get("units") != "wt%":
            problems.append(f"lab/{name}: @units must be 'wt%'")
    if "lab_flags" not in core:
        problems.append("required group lab_flags is missing")
    else:
        for name, ds in core["lab_flags"].items():
            if ds.shape != (m,):
                problems.append(f"lab_flags/{name}: shape {ds.shape}, expected ({m},)")
    return problems


# ------------------------------------------------------------------------- nexusformat nxcheck
_LOCK = threading.Lock()  # nexusformat's validator keeps global state (logger, class cache)
_TOTAL = re.compile(r"Total number of errors: (\d+)")


def nxcheck(path, appdef=None) -> tuple[int, str]:
    """Run nexusformat's ``nxcheck`` on a core file; return (number of errors, report text).

    Each scan entry is checked against ``appdef`` (default: our NXxrf_core_scan definition,
    i.e. ``nxcheck -p /<scan> -a schemas/NXxrf_core_scan.nxdl.xml FILE``) and the whole file
    against the NeXus base classes (``nxcheck FILE``). The count is the sum of the
    ``Total number of errors`` lines of those runs (nxcheck itself exits 0 even with errors);
    a run that ends without that line counts as one error.
    """
    from nexusformat.nexus.validate import logger, validate_application, validate_file

    path = Path(path)
    appdef = Path(appdef) if appdef is not None else schema_path()
    if not appdef.is_file():
        raise StoreError(f"{appdef}: application definition not found (set XRFHUB_SCHEMAS to the "
                         "folder holding NXxrf_core_scan.nxdl.xml)")
    if not path.is_file():
        raise StoreError(f"{path}: no such core file")
    try:
        with h5py.File(path, "r") as f:
            entries = scan_entries(f)
    except (OSError, ValueError) as exc:
        return 1, f"{path}: cannot be opened as HDF5: {exc}\nTotal number of errors: 1\n"

    runs = [(f"-p /{e} -a {appdef.name}", lambda e=e: validate_application(
        str(path), path=f"/{e}", application=str(appdef))) for e in entries]
    runs.append(("base classes", lambda: validate_file(str(path))))
    errors, report = 0, []
    with _LOCK:
        old_handlers, old_level = logger.handlers[:], logger.level
        buffer = io.StringIO()
        handler = logging.StreamHandler(buffer)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.handlers = [handler]
        logger.setLevel(logging.WARNING)
        try:
            for label, run in runs:
                buffer.seek(0)
                buffer.truncate()
                run()
                text = buffer.getvalue()
                found = _TOTAL.findall(text)
                errors += int(found[-1]) if found else 1
                report.append(f"== nxcheck {label}\n{text.strip()}\n")
        finally:
            logger.handlers, logger.level = old_handlers, old_level
    if not entries:
        report.insert(0, f"(no entry with definition = {SCHEMA_NAME!r}: only base classes checked)")
    return errors, "\n".join(report)
