"""Diffraction patterns in NeXus/HDF5 files: NXdata groups whose signal runs over 2-theta (or q).

What is read::

    /<entry>                      NXentry (one or many)
      instrument/monochromator/   NXmonochromator: wavelength (angstrom; 'nm' units converted)
      data/                       NXdata, @signal = "intensity", @axes = [scan, "two_theta"]
        intensity[n, points]      the signal: 1-D (one pattern) or 2-D (scan x points)
        two_theta[points]         the axis: two_theta / 2theta / polar_angle (degrees, or rad),
                                  or q (1/angstrom, 1/nm) converted with the wavelength
        pressure_step[n]          a scan coordinate: the first axis of a 2-D signal, or any 1-D
                                  field of length n named by the ``scan_coord`` option
        intensity_errors[...]     optional: uncertainties (``extra_kind="uncertainty"``)
        background[...]           optional: a background (used when there are no errors)
        pattern_id[n]             optional: names of the patterns (written by xrfhub)

Every NXdata group with such an axis is read; groups over other axes (an XRF spectrum over
energy) are passed over. All groups of a file must share one 2-theta grid, since one
:class:`DiffractionPatterns` holds one grid; otherwise pass ``nxdata="/entry/data"`` to pick one.
Pattern ids: the ``pattern_id`` field; else the file stem for a file holding one pattern; else
the entry name (1-D groups) or ``<stem or entry>_<index>`` (rows of 2-D groups).

Wavelength: the ``wavelength`` option wins; else ``NXmonochromator/wavelength``,
``NXbeam/incident_wavelength`` or a ``wavelength`` attribute of the NXdata, entry or root; else
Cu K-alpha1, recorded as assumed. A wavelength xrfhub wrote as assumed reads back as assumed.

Recognition by content: the HDF5 signature and an axis name (``two_theta``, ``2theta``,
``polar_angle``) or a q unit near the start of the file. Files of xrfhub's own store (definition
``NXxrf_core_scan``) are never claimed. A file that keeps its names further in needs
``--format xrd-nexus``. :func:`write_nexus_patterns` writes files this reader reads.
"""
from __future__ import annotations

import io
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..records import CU_KALPHA1_A, DiffractionPatterns
from .xrd_text import MIN_POINTS, order_axis, q_axis_to_two_theta, wavelength_option

FORMAT = "xrd-nexus"
KIND = "diffraction"
DESCRIPTION = "Diffraction patterns in NeXus/HDF5 (NXdata over two_theta or q, 1-D or scan x points)"

_MAGIC = b"\x89HDF\r\n\x1a\n"
_TWO_THETA_NAMES = ("two_theta", "2theta", "twotheta", "tth", "polar_angle")
_Q_NAMES = ("q",)
_SNIFF_MARKERS = (b"two_theta", b"2theta", b"twotheta", b"polar_angle", b"NXmonopd", b"NXxrd")
_Q_UNITS = (b"1/angstrom", b"1/Angstrom", b"angstrom^-1", b"Angstrom^-1", b"1/nm", b"nm^-1", b"1/A\x00")
_OWN_STORE = b"NXxrf_core_scan"
_WAVELENGTH_SOURCE_ATTR = "xrfhub_wavelength_source"
#: Values one dataset may hold (a 10^5-pattern ramp of 10^4 points is 10^9): more is a damaged file.
MAX_VALUES = 2_000_000_000


def sniff(head: bytes, name: str = "") -> bool:
    """HDF5 signature, not our store, and a 2-theta axis name or a q unit in the head."""
    if not head.startswith(_MAGIC) or _OWN_STORE in head:
        return False
    return any(m in head for m in _SNIFF_MARKERS) or (b"NXdata" in head and any(u in head for u in _Q_UNITS))


# --------------------------------------------------------------------------- attribute helpers


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _names(value) -> list[str]:
    """An ``axes`` attribute as a list: an array of names, or one string split at ':' / ','."""
    if value is None:
        return []
    if isinstance(value, np.ndarray) and value.ndim:
        return [_text(v).strip() for v in value]
    text = _text(value)
    for sep in (":", ","):
        if sep in text:
            return [t.strip() for t in text.split(sep)]
    return [text.strip()]


def _nx_class(obj) -> str:
    return _text(obj.attrs.get("NX_class", ""))


def _unit(obj) -> str:
    return _text(obj.attrs.get("units", "")).strip()


# --------------------------------------------------------------------------- finding the data


def _signal_and_axes(group) -> tuple[str | None, list[str]]:
    """The signal's name and the axis names per dimension (NeXus 2014 attributes, then the
    older ``signal=1`` / ``axes="a:b"`` attributes on the signal dataset)."""
    import h5py

    signal = _text(group.attrs["signal"]) if "signal" in group.attrs else None
    axes = _names(group.attrs.get("axes"))
    if signal is None:
        for key, obj in group.items():
            if isinstance(obj, h5py.Dataset) and _text(obj.attrs.get("signal", "")) == "1":
                signal = key
                axes = axes or _names(obj.attrs.get("axes"))
                break
    if signal is not None and not axes and signal in group:
        axes = _names(group[signal].attrs.get("axes"))
    if signal is not None and signal in group:
        ndim = group[signal].ndim
        indexed = {}
        for key in group.attrs:
            if key.endswith("_indices") and key[:-8] in group:
                try:
                    indexed[int(np.ravel(group.attrs[key])[0])] = key[:-8]
                except (TypeError, ValueError, IndexError):
                    continue
        if not axes or len(axes) != ndim:
            axes = [indexed.get(i, axes[i] if i < len(axes) else ".") for i in range(ndim)]
    return signal, axes


def _axis_kind(name: str) -> str | None:
    key = name.strip().lower()
    if key in _TWO_THETA_NAMES:
        return "2theta"
    if key in _Q_NAMES:
        return "q"
    return None


def _candidates(h5) -> list[tuple[str, str, list[str]]]:
    """``(group path, signal, axes)`` of every NXdata whose last axis is 2-theta or q."""
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and _nx_class(obj) == "NXdata":
            signal, axes = _signal_and_axes(obj)
            if signal and signal in obj and axes and _axis_kind(axes[-1]) and axes[-1] in obj:
                found.append(("/" + name, signal, axes))

    h5.visititems(visit)
    return found


def _entry_of(h5, group_path: str):
    parts = [p for p in group_path.split("/") if p]
    return h5[parts[0]] if len(parts) > 1 else h5


def _wavelength_in(h5, group, path) -> tuple[float, str] | None:
    """The file's wavelength for ``group`` (angstrom) and whether xrfhub wrote it as assumed."""
    import h5py

    entry = _entry_of(h5, group.name)
    found = []

    def visit(_name, obj):
        if not isinstance(obj, h5py.Dataset) or found:
            return
        key = obj.name.rsplit("/", 1)[-1]
        parent = _nx_class(obj.parent)
        if (key == "wavelength" and parent in ("NXmonochromator", "NXcrystal", "NXsource", "NXinstrument")) or \
                (key == "incident_wavelength" and parent == "NXbeam"):
            found.append(obj)

    entry.visititems(visit)
    if found:
        obj = found[0]
        value, where, unit, note = obj[()], obj.name, _unit(obj), _text(obj.attrs.get(_WAVELENGTH_SOURCE_ATTR, ""))
    else:
        holder = next((g for g in (group, entry, h5) if "wavelength" in g.attrs), None)
        if holder is None:
            return None
        value, where, unit, note = holder.attrs["wavelength"], f"{holder.name}@wavelength", "", ""
        unit = _text(holder.attrs.get("wavelength_units", ""))
    try:
        number = float(np.ravel(value)[0])
    except (TypeError, ValueError, IndexError):
        raise InputError(path, f"wavelength is not a number: {value!r}", field=where) from None
    factor = {"": 1.0, "a": 1.0, "å": 1.0, "angstrom": 1.0, "angstroms": 1.0, "nm": 10.0, "m": 1e10,
              "pm": 0.01}.get(unit.lower())
    if factor is None:
        raise InputError(path, f"wavelength unit {unit!r} not understood (expected angstrom or nm)", field=where)
    number *= factor
    if not (math.isfinite(number) and 0 < number < 100):
        raise InputError(path, f"wavelength {number:g} A is not a positive number of angstrom", field=where)
    return number, ("assumed" if note == "assumed" else "file")


def _two_theta(h5, group, axis_name: str, wavelength: float, path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The group's axis in increasing degrees, the order that makes it so, and its kind."""
    data = group[axis_name]
    field = data.name
    if data.ndim != 1:
        raise InputError(path, f"the axis has shape {data.shape}: expected one axis shared by all patterns",
                         field=field)
    values = _load(path, data)
    if values.size < MIN_POINTS:
        raise InputError(path, f"the axis has {values.size} point(s), expected at least {MIN_POINTS}", field=field)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(path, f"axis value {bad[0]} is not finite", field=field)
    points = list(range(values.size))  # positions stand in for line numbers in messages
    order = _checked_order(path, values, points, field)
    if order is not None:
        values = values[order]
    kind = _axis_kind(axis_name)
    unit = _unit(data).lower()
    if kind == "q":
        factor = 0.1 if "nm" in unit else 1.0
        return q_axis_to_two_theta(path, values * factor, wavelength, points, field), order, "q"
    if unit.startswith("rad"):
        values = np.degrees(values)
    elif unit and not unit.startswith("deg") and unit != "°":
        raise InputError(path, f"2-theta unit {unit!r} not understood (expected degrees or rad)", field=field)
    if values[0] < 0 or values[-1] >= 180:
        raise InputError(path, f"2-theta runs {values[0]:g}..{values[-1]:g}: expected degrees within 0..180",
                         field=field)
    return values, order, "2theta"


def _checked_order(path, values, points, field):
    try:
        return order_axis(path, values, points, "axis")
    except InputError as exc:  # the text check names a line; here the point index and the dataset
        raise InputError(path, f"{exc.reason} (point {exc.line})", field=field) from None


def _load(path, data) -> np.ndarray:
    """A dataset's values as float64, refusing sizes no diffraction file has (a damaged header)."""
    if data.size > MAX_VALUES:
        raise InputError(path, f"dataset of shape {data.shape} is larger than {MAX_VALUES:,} values: a damaged file?",
                         field=data.name)
    try:
        return np.asarray(data[()], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(path, f"expected numbers, found {data.dtype} values", field=data.name) from None


def _block(group, name: str, shape: tuple, order, path) -> np.ndarray:
    data = group[name]
    if data.shape != shape[-data.ndim:] or data.ndim not in (1, 2) or data.ndim != len(shape):
        raise InputError(path, f"shape {data.shape} does not match the signal's {shape}", field=data.name)
    values = _load(path, data).reshape(shape)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        raise InputError(path, f"value at index {tuple(int(i) for i in bad[0])} is not finite", field=data.name)
    values = np.atleast_2d(values)
    return values[:, order] if order is not None else values


def _pattern_ids(group, n: int, base: str) -> list[str]:
    if "pattern_id" in group and group["pattern_id"].shape == (n,):
        return [_text(v) for v in group["pattern_id"][()]]
    width = len(str(max(n - 1, 0)))
    return [base] if n == 1 else [f"{base}_{i:0{width}d}" for i in range(n)]


def _scan_coords(group, axes: list[str], n: int, ndim: int, scan_coord: str | None, path) -> dict:
    coords = {}
    names = [axes[0]] if ndim == 2 and axes[0] not in (".", "") else []
    if scan_coord and scan_coord not in names:
        names.append(scan_coord)
    for name in names:
        if name not in group:
            continue
        values = _load(path, group[name]).ravel()
        if values.size != n:
            raise InputError(path, f"scan coordinate has {values.size} value(s) for {n} pattern(s)",
                             field=group[name].name)
        coords[name] = values
    return coords


def _entry_scalar(h5, group, name: str):
    """A one-value dataset called ``name`` anywhere in the group's entry (a 1-D pattern's scan value)."""
    import h5py

    hits = []

    def visit(_n, obj):
        if isinstance(obj, h5py.Dataset) and obj.name.rsplit("/", 1)[-1] == name and obj.size == 1:
            hits.append(obj)

    _entry_of(h5, group.name).visititems(visit)
    if not hits:
        return None
    try:
        return float(np.ravel(hits[0][()])[0])
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- the reader


def read(path, *, source: str | None = None, raw: bytes | None = None, wavelength: float | None = None,
         scan_coord: str | None = None, nxdata: str | None = None, **_options) -> DiffractionPatterns:
    """Read every NXdata over 2-theta (or q) of a NeXus file into one :class:`DiffractionPatterns`.

    Options: ``wavelength`` (angstrom, wins over the file's), ``scan_coord`` (a per-pattern
    coordinate to pick up: a field of the NXdata, or a one-value field in each pattern's entry),
    ``nxdata`` (the path of the one NXdata group to read). Spectra options are ignored.
    """
    import h5py

    path = Path(path)
    wl_option = wavelength_option(path, wavelength)
    try:
        h5 = h5py.File(io.BytesIO(raw) if raw is not None else path, "r")
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except Exception as exc:  # noqa: BLE001 - h5py's file-object driver passes on whatever seek/read raised
        raise InputError(path, f"not a readable HDF5/NeXus file ({type(exc).__name__}: {exc})") from None
    try:
        with h5:
            return _read(h5, path, source or path.name, wl_option, scan_coord, nxdata)
    except InputError:
        raise
    except (KeyError, OSError, RuntimeError, MemoryError, OverflowError, ValueError, TypeError) as exc:
        # a damaged file h5py cannot walk (its file-object driver raises what seek/read raised)
        raise InputError(path, f"damaged HDF5/NeXus content ({type(exc).__name__}: {exc})") from None


def _read(h5, path: Path, source: str, wl_option, scan_coord, nxdata) -> DiffractionPatterns:
    found = _candidates(h5)
    if nxdata is not None:
        found = [c for c in found if c[0].rstrip("/") == "/" + nxdata.strip("/")]
        if not found:
            raise InputError(path, f"no NXdata group {nxdata!r} with a two_theta or q axis", field="nxdata")
    if not found:
        raise InputError(path, "no NXdata group whose signal runs over a two_theta (2theta, polar_angle) or q "
                               "axis: expected a NeXus diffraction file")
    total = sum(1 if h5[g][s].ndim == 1 else h5[g][s].shape[0] for g, s, _a in found)
    ids, blocks, extras, kinds, scans = [], [], [], set(), []
    grid = lam = lam_source = axis_kind = None
    for group_path, signal, axes in found:
        group = h5[group_path]
        data = group[signal]
        if data.ndim not in (1, 2):
            raise InputError(path, f"signal has {data.ndim} dimensions: expected one pattern or scan x points",
                             field=data.name)
        if wl_option is not None:
            here, here_source = wl_option, "option"
        else:
            in_file = _wavelength_in(h5, group, path)
            here, here_source = in_file if in_file else (CU_KALPHA1_A, "assumed")
        if lam is not None and not math.isclose(here, lam, rel_tol=1e-9):
            raise InputError(path, f"wavelength {here:g} A differs from {lam:g} A of an earlier group: one file, one "
                                   "wavelength (pass nxdata= to read one group)", field=group_path)
        lam, lam_source = here, here_source
        two_theta, order, kind = _two_theta(h5, group, axes[-1], lam, path)
        if grid is not None and not (grid.shape == two_theta.shape and np.allclose(grid, two_theta, rtol=0,
                                                                                   atol=1e-9)):
            raise InputError(path, f"the 2-theta grid differs from an earlier group's ({found[0][0]}): pass "
                                   "nxdata='<group>' to read one group at a time", field=group_path)
        grid, axis_kind = two_theta, kind
        shape = data.shape
        if shape[-1] != two_theta.size:
            raise InputError(path, f"signal has {shape[-1]} points per pattern, the axis {two_theta.size}",
                             field=data.name)
        blocks.append(_block(group, signal, shape, order, path))
        n = blocks[-1].shape[0]
        errors = next((e for e in (f"{signal}_errors", "errors") if e in group), None)
        extra_name, extra_kind = (errors, "uncertainty") if errors else (
            ("background", "background") if "background" in group else (None, ""))
        extras.append(_block(group, extra_name, shape, order, path) if extra_name else None)
        kinds.add(extra_kind)
        entry_name = [p for p in group_path.split("/") if p][0]
        base = path.stem if total == n else entry_name
        ids += _pattern_ids(group, n, base)
        coords = _scan_coords(group, axes, n, data.ndim, scan_coord, path)
        if scan_coord and scan_coord not in coords:
            value = _entry_scalar(h5, group, scan_coord)
            if value is None or n != 1:
                raise InputError(path, f"scan coordinate {scan_coord!r} not found in {group_path} or its entry",
                                 field="scan_coord")
            coords[scan_coord] = np.array([value])
        scans.append(coords)
    if len(kinds) > 1:  # some groups with errors, some without: keep none rather than a half-filled extra
        extras, kinds = [None], {""}
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(path, f"pattern id {dup!r} occurs twice: pattern ids must be unique within a file")
    names = set(scans[0])
    if any(set(s) != names for s in scans):
        raise InputError(path, "the NXdata groups carry different scan coordinates: pass nxdata= to read one")
    kind = kinds.pop()
    return DiffractionPatterns(
        source=source, pattern_ids=ids, two_theta=np.ascontiguousarray(grid), intensity=np.vstack(blocks),
        wavelength=lam, wavelength_source=lam_source, axis=axis_kind,
        extra=np.vstack(extras) if kind else None, extra_kind=kind,
        scan={k: np.concatenate([s[k] for s in scans]) for k in names},
        metadata={"format": FORMAT, "nxdata": ", ".join(g for g, _s, _a in found)})


# --------------------------------------------------------------------------- the writer


def write_nexus_patterns(path, patterns: DiffractionPatterns) -> Path:
    """Write ``patterns`` as a small NeXus file that :func:`read` reads back.

    ``/entry`` (NXentry) holds ``instrument/monochromator/wavelength`` (angstrom; an assumed
    wavelength is marked so) and ``data`` (NXdata): ``intensity`` (patterns x points, or one
    pattern as 1-D) over ``two_theta`` (degrees), ``intensity_errors`` or ``background`` for the
    third column, ``pattern_id`` and the scan coordinates (the first one is the scan axis).
    Names and attributes are written before the data so that they sit at the start of the file,
    where :func:`sniff` looks.
    """
    import h5py

    path = Path(path)
    n, points = patterns.intensity.shape
    one = n == 1 and not patterns.scan
    shape = (points,) if one else (n, points)
    scan_names = list(patterns.scan)
    with h5py.File(path, "w") as h5:
        h5.attrs.update({"NX_class": "NXroot", "default": "entry", "creator": "xrfhub",
                         "file_name": path.name, "file_time": datetime.now(timezone.utc).isoformat()})
        entry = h5.create_group("entry")
        entry.attrs.update({"NX_class": "NXentry", "default": "data"})
        data = entry.create_group("data")
        axes = ["two_theta"] if one else [scan_names[0] if scan_names else ".", "two_theta"]
        data.attrs.update({"NX_class": "NXdata", "signal": "intensity", "axes": axes,
                           "two_theta_indices": len(axes) - 1})
        for name in scan_names:
            data.attrs[f"{name}_indices"] = 0
        datasets = {"two_theta": data.create_dataset("two_theta", (points,), "f8"),
                    "intensity": data.create_dataset("intensity", shape, "f8")}
        datasets["two_theta"].attrs["units"] = "degree"
        datasets["intensity"].attrs["units"] = "counts"
        if patterns.extra is not None and patterns.extra_kind:
            extra = "intensity_errors" if patterns.extra_kind == "uncertainty" else "background"
            datasets["extra"] = data.create_dataset(extra, shape, "f8")
        for name in scan_names:
            datasets[f"scan:{name}"] = data.create_dataset(name, (n,), "f8")
        data.create_dataset("pattern_id", data=np.array(patterns.pattern_ids, dtype=object),
                            dtype=h5py.string_dtype())
        mono = entry.create_group("instrument").create_group("monochromator")
        entry["instrument"].attrs["NX_class"] = "NXinstrument"
        mono.attrs["NX_class"] = "NXmonochromator"
        wl = mono.create_dataset("wavelength", data=float(patterns.wavelength))
        wl.attrs.update({"units": "angstrom", _WAVELENGTH_SOURCE_ATTR: patterns.wavelength_source})
        entry.create_dataset("title", data=patterns.source)
        entry.create_dataset("program_name", data="xrfhub")
        # the data last: big arrays after every name and attribute
        datasets["two_theta"][...] = patterns.two_theta
        datasets["intensity"][...] = patterns.intensity.reshape(shape)
        if "extra" in datasets:
            datasets["extra"][...] = patterns.extra.reshape(shape)
        for name in scan_names:
            datasets[f"scan:{name}"][...] = patterns.scan[name]
    return path
