"""The scans of a core's NeXus file: one NXentry per scan, conforming to ``NXxrf_core_scan``.

Each scan is an entry of our application definition ``schemas/NXxrf_core_scan.nxdl.xml``, whose
doc strings describe every field::

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

Per-point fields sit in NXdata rather than an NXcollection because validators (pynxtools, punx)
do not look inside an NXcollection, and a field they cannot see cannot be required. Times are
NX_DATE_TIME only when the sources give a time zone; scanner files usually give local time
without one, which is then kept as written in ``local_start_time`` / ``local_end_time``.
Every per-spectrum value is kept as an array of length n, so a read restores the scans exactly.

The ``spectra`` kind (``xrfhub.kinds.spectra``) writes and reads its part of a core file here.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pandas as pd

from .. import identifiers
from ..errors import StoreError
from ..records import Calibration, CoreRecord, SpectraBlock
from .layout import SPECTRA_CHUNK_ROWS, SPECTRUM_COORD_DEFAULTS, SPECTRUM_COORDS
from .nxfields import STR as _STR, dtype_name as _dtype_name, field as _field, group as _group
from .nxfields import nexus_name, read_table as _read_table, scalar as _scalar, text as _text
from .nxfields import text_of as _str

SCHEMA_NAME = "NXxrf_core_scan"

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


_THREADS = min(4, os.cpu_count() or 1)


# ------------------------------------------------------------------------------------- write
def write(f: h5py.File, record: CoreRecord, compression="gzip", level=1) -> list[str]:
    """Write every scan of ``record`` as an entry of ``f``, in the record's order; their names."""
    taken, entries = set(f), []
    for scan, block in record.scans.items():
        name = nexus_name(scan, taken)
        taken.add(name)
        entries.append(name)
        _write_scan(f, name, scan, record, block, compression, level)
    return entries


def check(path, record: CoreRecord) -> None:
    """Raise ``StoreError`` naming the file and scan when a scan cannot be archived (before any write)."""
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
    ds_counts = write_counts(data, np.ascontiguousarray(block.counts, dtype=np.uint32),
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


# ------------------------------------------------------------------------------------ counts
def write_counts(group: h5py.Group, counts: np.ndarray, compression, level) -> h5py.Dataset:
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
def scan_entries(f: h5py.File) -> list[str]:
    """Names of the entries conforming to NXxrf_core_scan, in file order."""
    return [name for name, obj in f.items() if isinstance(obj, h5py.Group)
            and "definition" in obj and _str(obj["definition"]) == SCHEMA_NAME]


def read(f: h5py.File) -> dict[str, SpectraBlock]:
    """Every scan entry of ``f``, by scan name, in file order."""
    return dict(_read_scan(f[name]) for name in scan_entries(f))


def _read_scan(entry: h5py.Group) -> tuple[str, SpectraBlock]:
    counts = entry["data/counts"][()]
    # layout 1 kept @columns on an NXcollection "points"; the fields' paths are in the JSON
    table = entry["points"] if "points" in entry else entry["data"]
    coords = _read_table(entry, table.attrs["columns"])
    for col, default in SPECTRUM_COORD_DEFAULTS.items():  # files written before the column existed
        if col not in coords.columns:
            coords[col] = np.full(len(coords), default, dtype=object)
    return _str(entry["entry_identifier"]), SpectraBlock(counts, coords)
