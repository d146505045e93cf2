"""The NeXus/HDF5 archive form of one core: write, read, summarise and checksum ``<core>.nxs``.

One file per core (DESIGN section 4). Each scan is an NXentry conforming to our application
definition ``schemas/NXxrf_core_scan.nxdl.xml``, whose doc strings describe every field::

    /                     NXroot  @default @creator @file_name @file_time ...
      <scan>/             NXentry, definition = "NXxrf_core_scan", entry_identifier = scan name,
                          entry_identifier_uuid (stable, see xrfhub.identifiers)
        instrument/       source (tube: anode, voltage, current), filter, slit, detector
                          (live/real time, per-spectrum calibration gain/zero/source)
        sample/           core id, core_uuid, section[, igsn]
        data/             NXdata: counts[n, channels] (@interpretation = "spectrum") over
                          depth[n] (mm) and energy (keV), both HDF5 dimension scales; every other
                          per-spectrum column (position, section_top, scan, run, date, valid,
                          source, raw_header, reader_warnings, ...) as a field over depth;
                          @columns (JSON: column, field, dtype) restores the table
      core/               NXentry for the core as a whole, written last (always present):
        sample/ sources/ (a table: one row per file) lab/ (NXdata over sample) lab_flags/ <process>/

Per-point fields sit in NXdata rather than an NXcollection because validators (pynxtools, punx)
do not look inside an NXcollection, and a field they cannot see cannot be required. Times are
NX_DATE_TIME only when the sources give a time zone; scanner files usually give local time
without one, which is then kept as written in ``local_start_time`` / ``local_end_time``.

Every per-spectrum value is kept as an array of length n, so ``read_core`` restores the record
exactly; a core with lab samples and no scan has only ``core``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .. import __version__, identifiers
from ..errors import StoreError
from ..records import Calibration, CoreRecord, Process, SourceFile, SpectraBlock
from .layout import SPECTRA_CHUNK_ROWS, SPECTRUM_COORD_DEFAULTS, SPECTRUM_COORDS

SCHEMA_NAME = "NXxrf_core_scan"
CORE_ENTRY = "core"
#: version of this file layout, kept in the root attribute ``xrfhub_layout``
LAYOUT_VERSION = 2  # 2: per-point fields in data/, calibration_zero, uuids, zoned times

#: Where each per-spectrum column lives in a scan entry. Columns not listed go to ``points/``.
COLUMN_FIELDS: dict[str, str] = {
    "depth_mm": "data/depth", "position_mm": "data/position",
    "section_top_mm": "data/section_top", "composite_depth_mm": "data/composite_depth",
    "tube_kv": "instrument/source/voltage", "tube_ma": "instrument/source/current",
    "filter": "instrument/filter/description",
    "slit_cc_mm": "instrument/slit/x_gap", "slit_dc_mm": "instrument/slit/y_gap",
    "detector": "instrument/detector/description",
    "live_time_s": "instrument/detector/live_time", "real_time_s": "instrument/detector/real_time",
    "energy_gain_kev": "instrument/detector/calibration_gain",
    # "_offset" is a reserved NeXus suffix (an offset of a field named before it); PyMca's word
    # for the energy of channel 0 is "zero"
    "energy_offset_kev": "instrument/detector/calibration_zero",
    "calibration_source": "instrument/detector/calibration_source",
    "header": "data/raw_header", "warnings": "data/reader_warnings",
}

#: Groups of a scan entry: path -> NeXus class (NXslit is not allowed in NXinstrument).
SCAN_GROUPS: dict[str, str] = {
    "instrument": "NXinstrument", "instrument/source": "NXsource",
    "instrument/filter": "NXfilter", "instrument/slit": "NXaperture",
    "instrument/detector": "NXdetector", "sample": "NXsample", "data": "NXdata",
}


def column_field(col: str) -> str:
    """Where a per-spectrum column known to the layout lives in a scan entry (unknown ones go to
    ``data/`` under a NeXus-safe name chosen at write time)."""
    return COLUMN_FIELDS.get(col, f"data/{col}")

#: Lab columns with a fixed field name and unit; every other numeric column is a property (wt%).
LAB_FIXED = {"top_mm": ("top", "mm"), "bottom_mm": ("bottom", "mm"), "mid_mm": ("mid", "mm"),
             "core": ("core", ""), "line": ("line", ""), "sample_id": ("sample_id", ""),
             "source": ("source", "")}
LAB_UNIT = "wt%"

from .nxfields import STR as _STR  # noqa: E402 - the shared NeXus field helpers
from .nxfields import dtype_name as _dtype_name, field as _field, group as _group  # noqa: E402
from .nxfields import read_column as _read_column, read_table as _read_table, text as _text  # noqa: E402
from .nxfields import text_of as _str  # noqa: E402

_THREADS = min(4, os.cpu_count() or 1)
_BAD_NAME = re.compile(r"[^A-Za-z0-9_]")


# ----------------------------------------------------------------------------------- helpers
def nexus_name(name: str, taken=()) -> str:
    """A NeXus-valid object name (letters, digits, underscore; no leading digit), unique in ``taken``."""
    out = _BAD_NAME.sub("_", name) or "_"
    if out[0].isdigit():
        out = "_" + out
    base, i = out, 2
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    return out


def _scalar(parent: h5py.Group, name: str, value: str):
    return parent.create_dataset(name, data=str(value), dtype=_STR)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# ------------------------------------------------------------------------------------- write
def write_core(path, record: CoreRecord, *, compression="gzip", level=1) -> None:
    """Write ``record`` as a complete NeXus file at ``path`` (replacing any file there).

    Whole columns are written at once (no per-point HDF5 calls); ``counts`` gets ``compression``
    (gzip level ``level`` by default) with shuffle and chunks of whole spectra. Raises
    ``StoreError`` naming the file when the record cannot be archived (e.g. depth not strictly
    increasing in a scan, counts that do not fit uint32).
    """
    path = Path(path)
    _check_record(path, record)
    try:
        with h5py.File(path, "w", track_order=True) as f:  # creation order = entry order
            taken = {CORE_ENTRY}
            entries = []
            for scan, block in record.scans.items():
                name = nexus_name(scan, taken)
                taken.add(name)
                entries.append(name)
                _write_scan(f, name, scan, record, block, compression, level)
            _write_core_entry(f, record)
            from . import nxelements

            nxelements.write(f[CORE_ENTRY], record.elements)
            if record.diffraction or not record.pattern_labels.empty:
                from . import nxdiffraction

                nxdiffraction.write(f[CORE_ENTRY], record.diffraction, record.pattern_labels, compression, level)
            _root_attrs(f, path, default=entries[0] if entries else CORE_ENTRY)
    except StoreError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise StoreError(f"{path}: cannot write the core file: {exc}") from exc


def _check_record(path: Path, record: CoreRecord) -> None:
    if not record.core:
        raise StoreError(f"{path}: the core record has no core id")
    for scan, block in record.scans.items():
        where = f"{path}: scan {scan!r}"
        if len(block) == 0:
            raise StoreError(f"{where}: has no spectra; drop empty scans before writing")
        missing = [c for c in SPECTRUM_COORDS if c not in block.coords.columns]
        if missing:
            raise StoreError(f"{where}: coords lack the columns {missing}")
        depth = block.coords["depth_mm"].to_numpy(dtype=np.float64)
        if not np.isfinite(depth).all():
            raise StoreError(f"{where}: depth_mm has non-finite values at rows "
                             f"{np.flatnonzero(~np.isfinite(depth))[:5].tolist()}")
        bad = np.flatnonzero(np.diff(depth) <= 0)
        if bad.size:
            i = int(bad[0])
            raise StoreError(f"{where}: depth_mm must be strictly increasing; row {i + 1} has "
                             f"{depth[i + 1]} after {depth[i]} (sort the rows or split the scan)")
        counts = block.counts
        if counts.dtype != np.uint32:
            if counts.dtype.kind not in "iu" or (counts.size and (counts.min() < 0 or
                                                                 counts.max() > 2**32 - 1)):
                raise StoreError(f"{where}: counts must be non-negative integers fitting uint32, "
                                 f"got {counts.dtype}")


def _root_attrs(f: h5py.File, path: Path, default: str) -> None:
    f.attrs.update({
        "NX_class": "NXroot", "default": default, "file_name": path.name,
        "file_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "creator": f"xrfhub {__version__}", "creator_version": __version__,
        "HDF5_Version": h5py.version.hdf5_version, "h5py_version": h5py.version.version,
        "xrfhub_layout": LAYOUT_VERSION})


def nominal_energy(coords: pd.DataFrame, n_channels: int) -> np.ndarray:
    """The scan's energy axis: median gain and offset over the points with a usable calibration
    that is not the default guess (all usable ones if none; the default scale if none is)."""
    gain = coords["energy_gain_kev"].to_numpy(dtype=np.float64)
    offset = coords["energy_offset_kev"].to_numpy(dtype=np.float64)
    usable = np.array([not Calibration(g, o).degenerate for g, o in zip(gain, offset)], dtype=bool)
    measured = usable & (coords["calibration_source"].to_numpy() != "default")
    ok = measured if measured.any() else usable
    if not ok.any():
        return Calibration().energy(n_channels)
    return Calibration(float(np.median(gain[ok])), float(np.median(offset[ok]))).energy(n_channels)


def _unique_text(values, empty: str = "unknown") -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values if str(v))) or empty


def scan_times(dates) -> dict[str, str]:
    """``start_time``/``end_time`` when every date carries a time zone (NX_DATE_TIME requires
    one); otherwise ``local_start_time``/``local_end_time`` as written, since the zone of a
    scanner's local clock is not known and is not guessed. Empty when no date is known."""
    parsed = []
    for d in dates:
        if not d:
            continue
        try:
            parsed.append((_dt.datetime.fromisoformat(d), d))
        except ValueError:
            parsed.append((None, d))
    if not parsed:
        return {}
    if all(p is not None and p.tzinfo is not None for p, _ in parsed):
        parsed.sort(key=lambda x: x[0])
        return {"start_time": parsed[0][0].isoformat(), "end_time": parsed[-1][0].isoformat()}
    texts = sorted(d for _, d in parsed)
    return {"local_start_time": texts[0], "local_end_time": texts[-1]}


def _write_scan(f, name, scan, record, block: SpectraBlock, compression, level) -> None:
    coords = block.coords
    if "header" not in coords.columns or "warnings" not in coords.columns:
        coords = coords.copy()
        for extra in ("header", "warnings"):
            if extra not in coords.columns:
                coords[extra] = ""
    # every column looked up once: a DataFrame lookup costs ~0.1 ms, and a scan entry asked
    # for each column two or three times (a tenth of writing the entry)
    series = dict(coords.items())
    arrays = {col: s.to_numpy() for col, s in series.items()}
    n, n_ch = block.counts.shape
    entry = _group(f, name, "NXentry", default="data")
    _scalar(entry, "definition", SCHEMA_NAME)
    _scalar(entry, "title", f"{record.core} {scan}")
    _scalar(entry, "entry_identifier", scan)
    _scalar(entry, "entry_identifier_uuid", identifiers.scan_uuid(record.core, scan)).attrs["version"] = "5"
    for key, value in scan_times(_text(arrays["date"])).items():
        _scalar(entry, key, value)
    groups = {"": entry}
    for sub, nx_class in SCAN_GROUPS.items():
        parent, _, leaf = sub.rpartition("/")
        groups[sub] = _group(groups[parent], leaf, nx_class)

    _scalar(groups["instrument"], "name", _unique_text(arrays["instrument"]))
    anode = _unique_text(arrays["anode"]) if "anode" in arrays else "unknown"
    for key, value in (("type", "Fixed Tube X-ray"), ("probe", "x-ray"), ("anode_material", anode)):
        _scalar(groups["instrument/source"], key, value)
    sample = groups["sample"]
    _scalar(sample, "name", record.core)
    _scalar(sample, "core_uuid", identifiers.core_uuid(record.core))
    _scalar(sample, "section", _unique_text(arrays["section"], empty=""))
    if record.igsn:
        _scalar(sample, "igsn", record.igsn)

    data = groups["data"]
    data.attrs.update({"signal": "counts", "axes": np.array(["depth", "energy"], dtype=_STR),
                       "depth_indices": np.int32(0), "energy_indices": np.int32(1)})
    ds_counts = _write_counts(data, np.ascontiguousarray(block.counts, dtype=np.uint32),
                              compression, level)
    # interpretation = spectrum: H5Web and silx draw each row as a spectrum, not an image
    ds_counts.attrs.update({"units": "counts", "long_name": "counts per channel",
                            "interpretation": "spectrum"})
    energy = _field(data, "energy", nominal_energy(coords, n_ch), units="keV",
                    long_name="energy (nominal scale of the scan)")

    columns = []
    taken = {"counts", "energy"} | {t.split("/", 1)[1] for t in COLUMN_FIELDS.values() if t.startswith("data/")}
    in_data = {}
    for col in series:
        dtype = _dtype_name(series[col])
        target = COLUMN_FIELDS.get(col)
        if target is None:
            target = "data/" + nexus_name(col, taken)
            taken.add(target.split("/")[1])
        parent, _, leaf = target.rpartition("/")
        _kind, units, long_name = SPECTRUM_COORDS.get(col, ("", "", ""))
        values = arrays[col]
        if dtype == "bool":
            values = values.astype(bool)
        ds = _field(groups[parent], leaf, values, units=units, long_name=long_name)
        if parent == "data":
            in_data[leaf] = ds
        columns.append([col, target, dtype])
    data.attrs["columns"] = json.dumps(columns)

    depth = in_data["depth"]
    depth.make_scale("depth")
    energy.make_scale("energy")
    ds_counts.dims[0].attach_scale(depth)
    ds_counts.dims[1].attach_scale(energy)
    # the fields just written rather than the group's members opened again, in the group's
    # own order (by name), in which the depth scale's references were always attached
    for key in sorted(in_data, key=lambda k: k.encode("utf-8")):
        if key not in ("counts", "depth", "energy"):
            in_data[key].dims[0].attach_scale(depth)


def _write_core_entry(f, record: CoreRecord) -> None:
    entry = _group(f, CORE_ENTRY, "NXentry")
    _scalar(entry, "title", f"xrfhub core {record.core}")
    _scalar(entry, "entry_identifier", record.core)
    _scalar(entry, "entry_identifier_uuid", identifiers.core_uuid(record.core)).attrs["version"] = "5"
    sample = _group(entry, "sample", "NXsample")
    _scalar(sample, "name", record.core)
    _scalar(sample, "core_uuid", identifiers.core_uuid(record.core))
    if record.igsn:
        _scalar(sample, "igsn", record.igsn)

    # One row per source file rather than one NXnote each: an HDF5 group costs ~1 ms to
    # create, and a core scanned point by point has thousands of source files.
    sources = _group(entry, "sources", "NXcollection")
    src = record.sources
    _field(sources, "name", [s.name for s in src], long_name="source file name in the store")
    _field(sources, "file_name", [s.path for s in src], long_name="path the file was read from")
    _field(sources, "checksum", [s.sha256 for s in src], long_name="sha256 of the file's bytes")
    _scalar(sources, "algorithm", "sha256")
    _field(sources, "format", [s.format for s in src], long_name="reader that parsed the file")
    _field(sources, "size", np.array([s.size for s in src], dtype=np.int64), units="bytes")

    if len(record.lab.columns) or len(record.lab_flags.columns) or record.lab_units:
        _write_lab(entry, record)

    taken = {"sample", "sources", "lab", "lab_flags"}
    for i, p in enumerate(record.processes):
        name = nexus_name(p.name, taken)
        taken.add(name)
        _write_process(entry, name, i + 1, p)


def _write_lab(entry, record: CoreRecord) -> None:
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


def _write_process(entry, name: str, index: int, p: Process) -> None:
    g = _group(entry, name, "NXprocess")
    for key in ("name", "program", "version", "date"):
        _scalar(g, key, getattr(p, key))
    g.create_dataset("sequence_index", data=np.int64(index))
    # a prediction run is one run over many cores: its UUID comes from the run id, shared by all
    run = p.parameters.get("run_id") if isinstance(p.parameters, dict) else None
    _scalar(g, "run_uuid", identifiers.run_uuid(str(run) if run else f"{p.name}@{p.date}"))
    note = _group(g, "parameters", "NXnote")
    _scalar(note, "type", "application/json")
    try:
        _scalar(note, "data", json.dumps(p.parameters, default=_json_default))
    except TypeError as exc:
        raise StoreError(f"process {p.name!r}: parameters are not JSON serialisable: {exc}") from exc
    results = _group(g, "results", "NXparameters")
    keys, taken = [], set()
    for key, arr in p.data.items():
        field = nexus_name(str(key), taken)
        taken.add(field)
        _field(results, field, np.asarray(arr))
        keys.append([str(key), field])
    results.attrs["keys"] = json.dumps(keys)


# ------------------------------------------------------------------------------------ counts
def _write_counts(group: h5py.Group, counts: np.ndarray, compression, level) -> h5py.Dataset:
    """``counts`` in chunks of whole spectra.

    With gzip, the chunks are shuffled and deflated here in threads (zlib frees the GIL) and
    written with ``write_direct_chunk``: the bytes are exactly what HDF5's own shuffle + deflate
    pipeline stores, so any HDF5 reader decodes them, at about twice the speed on two cores.
    """
    n, n_ch = counts.shape
    rows = min(n, SPECTRA_CHUNK_ROWS)
    if compression != "gzip":
        filters = {"compression": compression, "shuffle": True} if compression else {}
        return group.create_dataset("counts", data=counts, chunks=(rows, n_ch), **filters)
    ds = group.create_dataset("counts", shape=counts.shape, dtype="<u4", chunks=(rows, n_ch),
                              compression="gzip", compression_opts=level, shuffle=True)
    counts = counts.astype("<u4", copy=False)

    def encode(start):
        block = counts[start:start + rows]
        if len(block) < rows:  # HDF5 stores edge chunks at full size
            block = np.concatenate([block, np.zeros((rows - len(block), n_ch), "<u4")])
        planes = block.view(np.uint8).reshape(-1, 4).T  # the shuffle filter: byte planes
        return start, zlib.compress(planes.tobytes(), level)

    starts = range(0, n, rows)
    if len(starts) == 1:  # most scans fit one chunk: a thread pool would cost more than it saves
        ds.id.write_direct_chunk((0, 0), encode(0)[1])
        return ds
    with ThreadPoolExecutor(_THREADS) as pool:
        for start, chunk in pool.map(encode, starts):
            ds.id.write_direct_chunk((start, 0), chunk)
    return ds


# -------------------------------------------------------------------------------------- read
def _open(path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: cannot open the core file (damaged or not HDF5): {exc}") from exc


def scan_entries(f: h5py.File) -> list[str]:
    """Names of the entries conforming to NXxrf_core_scan, in file order."""
    return [name for name, obj in f.items() if isinstance(obj, h5py.Group)
            and "definition" in obj and _str(obj["definition"]) == SCHEMA_NAME]


def read_core(path) -> CoreRecord:
    """Read one core file back into the ``CoreRecord`` it was written from (exact round trip)."""
    with _open(path) as f:
        try:
            if CORE_ENTRY not in f:
                raise StoreError(f"{path}: not an xrfhub core file (no '/{CORE_ENTRY}' entry)")
            core = f[CORE_ENTRY]
            record = CoreRecord(core=_str(core["sample/name"]))
            if "igsn" in core["sample"]:
                record.igsn = _str(core["sample/igsn"])
            for name in scan_entries(f):
                scan, block = _read_scan(f[name])
                record.scans[scan] = block
            _read_core_entry(core, record)
            from . import nxelements

            record.elements = nxelements.read(core)
            from . import nxdiffraction

            record.diffraction, record.pattern_labels = nxdiffraction.read(core)
        except StoreError:
            raise
        except (OSError, RuntimeError, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path}: damaged core file: {exc}") from exc
    return record


def _read_scan(entry: h5py.Group) -> tuple[str, SpectraBlock]:
    counts = entry["data/counts"][()]
    # layout 1 kept @columns on an NXcollection "points"; the fields' paths are in the JSON
    table = entry["points"] if "points" in entry else entry["data"]
    coords = _read_table(entry, table.attrs["columns"])
    for col, default in SPECTRUM_COORD_DEFAULTS.items():  # files written before the column existed
        if col not in coords.columns:
            coords[col] = np.full(len(coords), default, dtype=object)
    return _str(entry["entry_identifier"]), SpectraBlock(counts, coords)


def _read_core_entry(core: h5py.Group, record: CoreRecord) -> None:
    src = core["sources"]
    cols = [_read_column(src[k], "str") for k in ("name", "file_name", "checksum", "format")]
    sizes = src["size"][()].tolist()
    record.sources = [SourceFile(name=n, path=p, sha256=c, format=f, size=int(z))
                      for n, p, c, f, z in zip(*cols, sizes)]
    if "lab" in core:
        lab = core["lab"]
        record.lab = _read_table(lab, lab.attrs["columns"])
        record.lab_units = json.loads(lab.attrs["units_as_written"])
        record.lab_flags = _read_table(core["lab_flags"], core["lab_flags"].attrs["columns"])
    procs = [g for g in core.values() if g.attrs.get("NX_class") in ("NXprocess", b"NXprocess")]
    procs.sort(key=lambda g: int(g["sequence_index"][()]))
    for g in procs:
        results = g["results"]
        data = {key: _read_column(results[field], results[field].dtype.str)
                for key, field in json.loads(results.attrs["keys"])}
        record.processes.append(Process(
            name=_str(g["name"]), program=_str(g["program"]), version=_str(g["version"]),
            date=_str(g["date"]), parameters=json.loads(_str(g["parameters/data"])), data=data))


def read_core_summary(path) -> dict:
    """Core id, scans (spectra, channels, depth range) and lab sample count, without counts.

    Returns ``{"core", "igsn", "scans": {scan: {"n_spectra", "n_channels", "depth_min_mm",
    "depth_max_mm"}}, "n_spectra", "depth_range_mm": (min, max) or None, "n_lab_samples",
    "sources": [names]}``.
    """
    with _open(path) as f:
        try:
            core = f[CORE_ENTRY]
            scans = {}
            for name in scan_entries(f):
                entry = f[name]
                n, n_ch = entry["data/counts"].shape
                depth = entry["data/depth"]
                scans[_str(entry["entry_identifier"])] = {
                    "n_spectra": int(n), "n_channels": int(n_ch),
                    "depth_min_mm": float(depth[0]), "depth_max_mm": float(depth[n - 1])}
            lows = [s["depth_min_mm"] for s in scans.values()]
            highs = [s["depth_max_mm"] for s in scans.values()]
            return {
                "core": _str(core["sample/name"]),
                "igsn": _str(core["sample/igsn"]) if "igsn" in core["sample"] else "",
                "scans": scans,
                "n_spectra": sum(s["n_spectra"] for s in scans.values()),
                "depth_range_mm": (min(lows), max(highs)) if scans else None,
                "n_lab_samples": int(core["lab/sample"].shape[0]) if "lab" in core else 0,
                "sources": list(_read_column(core["sources/name"], "str")),
            }
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise StoreError(f"{path}: damaged core file: {exc}") from exc


# --------------------------------------------------------------------------------- checksums
def array_checksums(path) -> dict[str, str]:
    """sha256 of every dataset's values, keyed by HDF5 path without the leading slash.

    Numbers hash as their C-order little-endian bytes in the stored dtype (so ``counts`` hashes
    like ``counts.astype("<u4").tobytes()`` of the in-memory array, independent of compression);
    strings hash as, per element, its UTF-8 length (8-byte little-endian) then its bytes.
    """
    out = {}
    with _open(path) as f:
        try:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    out[name] = _digest(obj)
            f.visititems(visit)
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: damaged core file: {exc}") from exc
    return dict(sorted(out.items()))


def _digest(ds: h5py.Dataset) -> str:
    h = hashlib.sha256()
    if h5py.check_string_dtype(ds.dtype) is not None:
        values = ds.asstr()[()]
        for v in np.atleast_1d(np.asarray(values, dtype=object)).ravel():
            b = v.encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return h.hexdigest()
    le = ds.dtype.newbyteorder("<") if ds.dtype.byteorder == ">" else ds.dtype
    if ds.ndim == 0 or ds.shape[0] == 0:
        h.update(np.ascontiguousarray(ds[()], dtype=le).tobytes())
        return h.hexdigest()
    step = ds.chunks[0] if ds.chunks else ds.shape[0]
    for start in range(0, ds.shape[0], step):  # chunk-row blocks bound the memory
        h.update(np.ascontiguousarray(ds[start:start + step], dtype=le).tobytes())
    return h.hexdigest()
