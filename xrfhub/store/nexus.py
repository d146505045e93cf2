"""A core's NeXus/HDF5 archive file ``<core>.nxs``: its skeleton, whole-file read and write, summary, checksums.

One file per core (DESIGN section 4)::

    /                     NXroot  @default @creator @file_name @file_time ...
      core/               NXentry for the core as a whole (always present): sample/, sources/
                          (a table: one row per source file), one NXprocess per process run on
                          the core (QC verdicts, migrations, ...), and the kinds' parts below
      <scan>/             the ``spectra`` kind: one NXxrf_core_scan entry per scan (``nxscan``)
      core/lab, lab_flags                 the ``samples`` kind (``nxlab``)
      core/elements_NNNN                  the ``elements`` kind (``nxelements``)
      core/diffraction_NNNN, pattern_labels   the ``diffraction`` kind (``nxdiffraction``)

This module writes and reads only the skeleton (the ``core`` entry's sample, sources and
processes, and the root's attributes). Each store kind writes and reads its own part through
the ``Part`` protocol (``check_nexus``, ``to_nexus``, ``from_nexus``), and ``write_core`` /
``read_core`` take the parts to use: the store layer knows no kind, and adding a kind that
keeps data in core files is adding its part, not a branch here. ``xrfhub.kinds.write_core`` and
``read_core`` pass every registered kind. Prediction runs are their own files (``nxrun``).

The ``core`` entry is created when the first part asks for it (``core_entry``), or after the
last part: the scans, written first, stay the file's first entries, which is where nexusformat's
``nxcheck`` and file viewers look.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Protocol, Sequence

import h5py
import numpy as np

from .. import __version__, identifiers
from ..errors import StoreError
from ..records import CoreRecord, Process, SourceFile
from .nxfields import field as _field, group as _group, nexus_name
from .nxfields import read_column as _read_column, scalar as _scalar, text_of as _str
from .nxscan import scan_entries

CORE_ENTRY = "core"
#: version of this file layout, kept in the root attribute ``xrfhub_layout``
LAYOUT_VERSION = 2  # 2: per-point fields in data/, calibration_zero, uuids, zoned times
#: names in the core entry that processes never take (the kinds' parts use them)
RESERVED = ("sample", "sources", "lab", "lab_flags")


class Part(Protocol):
    """One kind's part of a core file (``xrfhub.kinds`` implements it for every kind)."""

    def check_nexus(self, path: Path, record: CoreRecord) -> None:
        """Raise ``StoreError`` naming ``path`` when the record's part cannot be archived (nothing is written yet)."""

    def to_nexus(self, f: h5py.File, record: CoreRecord, *, compression: str, level: int) -> None:
        """Write the record's part into the open file (into the ``core`` entry: ``core_entry(f, record)``)."""

    def from_nexus(self, f: h5py.File, record: CoreRecord) -> None:
        """Fill the record's part from the open file (files of every layout version)."""


def core_entry(f: h5py.File, record: CoreRecord | None = None) -> h5py.Group:
    """The file's ``core`` entry; while writing (``record`` given), created with its skeleton
    (sample, sources, processes) the first time a part asks for it."""
    if CORE_ENTRY not in f and record is not None:
        _write_core_entry(f, record)
    return f[CORE_ENTRY]


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# ------------------------------------------------------------------------------------- write
def write_core(path, record: CoreRecord, parts: Sequence[Part], *, compression="gzip", level=1) -> None:
    """Write ``record`` as a complete NeXus file at ``path`` (replacing any file there): the
    skeleton, then each of ``parts`` in order.

    ``counts`` and other large arrays get ``compression`` (gzip level ``level`` by default).
    Raises ``StoreError`` naming the file when the record cannot be archived (e.g. depth not
    strictly increasing in a scan, counts that do not fit uint32): the parts check first, so a
    refused record leaves any file at ``path`` as it was; a write that fails midway removes
    its file rather than leave half of one.
    """
    path = Path(path)
    if not record.core:
        raise StoreError(f"{path}: the core record has no core id")
    for part in parts:
        part.check_nexus(path, record)
    try:
        with h5py.File(path, "w", track_order=True) as f:  # creation order = entry order
            for part in parts:
                part.to_nexus(f, record, compression=compression, level=level)
            core_entry(f, record)  # a record no part put in the core entry still has one
            first = next((k for k in f if k != CORE_ENTRY), CORE_ENTRY)  # the parts' first entry (a scan)
            _root_attrs(f, path, default=first)
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, (OSError, ValueError, TypeError)) and not isinstance(exc, StoreError):
            raise StoreError(f"{path}: cannot write the core file: {exc}") from exc
        raise


def _root_attrs(f: h5py.File, path: Path, default: str) -> None:
    f.attrs.update({
        "NX_class": "NXroot", "default": default, "file_name": path.name,
        "file_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "creator": f"xrfhub {__version__}", "creator_version": __version__,
        "HDF5_Version": h5py.version.hdf5_version, "h5py_version": h5py.version.version,
        "xrfhub_layout": LAYOUT_VERSION})


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

    taken = set(RESERVED)
    for i, p in enumerate(record.processes):
        name = nexus_name(p.name, taken)
        taken.add(name)
        _write_process(entry, name, i + 1, p)


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


# -------------------------------------------------------------------------------------- read
def _open(path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: cannot open the core file (damaged or not HDF5): {exc}") from exc


def read_core(path, parts: Sequence[Part]) -> CoreRecord:
    """Read one core file back into the ``CoreRecord`` it was written from: the skeleton and
    each of ``parts`` (exact round trip when given the parts it was written with; a reader that
    needs one kind passes that kind's part only)."""
    with _open(path) as f:
        try:
            if CORE_ENTRY not in f:
                raise StoreError(f"{path}: not an xrfhub core file (no '/{CORE_ENTRY}' entry)")
            core = f[CORE_ENTRY]
            record = CoreRecord(core=_str(core["sample/name"]))
            if "igsn" in core["sample"]:
                record.igsn = _str(core["sample/igsn"])
            _read_core_entry(core, record)
            for part in parts:
                part.from_nexus(f, record)
        except StoreError:
            raise
        except (OSError, RuntimeError, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path}: damaged core file: {exc}") from exc
    return record


def _read_core_entry(core: h5py.Group, record: CoreRecord) -> None:
    src = core["sources"]
    cols = [_read_column(src[k], "str") for k in ("name", "file_name", "checksum", "format")]
    sizes = src["size"][()].tolist()
    record.sources = [SourceFile(name=n, path=p, sha256=c, format=f, size=int(z))
                      for n, p, c, f, z in zip(*cols, sizes)]
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
