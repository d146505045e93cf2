"""Bruker (DIFFRAC plus) UXD text patterns: ``_KEY = value`` lines, then the counts.

Layout (one or more ranges, each opened by ``; Data for range N`` or by ``_DRIVE``)::

    ;content of C:\\DATA\\IN\\U1587A_2H3_66_67.raw - (Diffrac Plus V4 file)
    _SAMPLE = U1587A_2H3_66_67_CYL11802171
    _WL1 = 1.5406                     wavelength (angstrom, ``_WL_UNIT = A``); ``_RANGE_WL`` per range
    ; Data for range 1
    _STEPSIZE = 0.008245
    _START = 4                        first 2-theta (degrees)
    _COUNTS = 1                       one count per line follows (``_CPS``: counts per second)
    7381.000000
    ...

Data lines hold one value (2-theta = start + i x step) or two (``_2THETACOUNTS``: 2-theta and
counts). The wavelength comes from the file (``_RANGE_WL``, else ``_WL1``; nm converted) and is
recorded as ``wavelength_source="file"``; the ``wavelength`` option wins, as for every pattern
reader. One pattern per file: several ranges on different grids are refused (read each range
from its own export). The pattern id is ``_SAMPLE`` (else the file stem).

A UXD converted from a RAW file says so on its first line (``;content of C:\\...\\X.raw``); when
that ``.raw`` sits beside it, both are one measurement: the binary original is stored and the
export is not (:class:`~xrfhub.errors.NotStored`), so a folder holding both ingests once.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..errors import InputError, NotStored
from ..records import DiffractionPatterns
from .lab_csv import read_text, split_lines
from .xrd_text import MIN_POINTS, wavelength_option

FORMAT = "bruker-uxd"
KIND = "diffraction"
DESCRIPTION = "Bruker UXD text pattern (_KEY = value header, _START/_STEPSIZE, counts)"

_KEY = re.compile(r"^_([A-Z0-9_+]+)\s*=\s*(.*?)\s*$")


def sniff(head: bytes, name: str = "") -> bool:
    """``_KEY = value`` lines with ``_START``/``_STEPSIZE`` or ``_WL1`` near the top."""
    text = head.decode("latin-1")
    keys = set(re.findall(r"(?m)^_([A-Z0-9_]+)\s*=", text))
    return ("FILEVERSION" in keys or "WL1" in keys) and bool({"START", "STEPSIZE", "DRIVE", "SAMPLE"} & keys)


def _number(value: str, path, line: int, key: str) -> float:
    try:
        out = float(value.replace(",", "."))
    except ValueError:
        raise InputError(path, f"expected a number, found {value[:30]!r}", line=line, field=f"_{key}") from None
    if not math.isfinite(out):
        raise InputError(path, f"expected a finite number, found {value[:30]!r}", line=line, field=f"_{key}")
    return out


def read(path, *, source: str | None = None, raw: bytes | None = None, wavelength: float | None = None,
         **_options) -> DiffractionPatterns:
    """Read a UXD file into a one-pattern :class:`DiffractionPatterns` (see the module docstring)."""
    path = Path(path)
    wl_option = wavelength_option(path, wavelength)
    lines = split_lines(read_text(path, raw))
    original = re.match(r"^;\s*content of\s+(.+?\.raw)\b", lines[0].strip() if lines else "", re.IGNORECASE)
    if original:
        beside = path.parent / re.split(r"[\\/]", original.group(1))[-1]
        twin = next((p for p in (beside, beside.with_suffix(".RAW"), beside.with_suffix(".raw")) if p.is_file()), None)
        if twin is not None:
            raise NotStored(path, f"text export of {twin.name} beside it (its first line says so): the same "
                                  f"measurement, stored from {twin.name}")
    header: dict[str, tuple[str, int]] = {}
    ranges: list[dict] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith(";"):
            if text.lower().startswith("; data for range"):
                ranges.append({"keys": {}, "rows": [], "line": number})
            continue
        match = _KEY.match(text)
        if match:
            if match.group(1) == "DRIVE" and (not ranges or ranges[-1]["rows"]):
                ranges.append({"keys": {}, "rows": [], "line": number})
            (ranges[-1]["keys"] if ranges else header)[match.group(1)] = (match.group(2), number)
            continue
        if re.fullmatch(r"_[A-Z0-9_+]+", text):  # a flag written without a value (_V4_TTLDETECTOR)
            continue
        if not ranges:
            raise InputError(path, f"data before any range header: {text[:30]!r}", line=number)
        ranges[-1]["rows"].append((number, text))
    ranges = [r for r in ranges if r["rows"]]
    if not ranges:
        raise InputError(path, "no data lines: expected counts after a '_COUNTS = 1' range header")
    grids, patterns = [], []
    for r in ranges:
        keys = {**header, **r["keys"]}
        cells = [row.split() for _, row in r["rows"]]
        width = len(cells[0])
        if width not in (1, 2) or any(len(c) != width for c in cells):
            bad = next(i for i, c in enumerate(cells) if len(c) != width or width not in (1, 2))
            raise InputError(path, f"expected one count (or '2theta count') per line, found {r['rows'][bad][1][:40]!r}",
                             line=r["rows"][bad][0])
        try:
            values = np.array(cells, dtype=np.float64)
        except ValueError:
            bad = next(i for i, c in enumerate(cells) if not all(re.fullmatch(r"[-+0-9.eE]+", x) for x in c))
            raise InputError(path, f"expected a number, found {r['rows'][bad][1][:30]!r}", line=r["rows"][bad][0]) \
                from None
        if len(values) < MIN_POINTS:
            raise InputError(path, f"range has {len(values)} points, expected at least {MIN_POINTS}", line=r["line"])
        if width == 2:
            two_theta, counts = values[:, 0], values[:, 1]
        else:
            for key in ("START", "STEPSIZE"):
                if key not in keys:
                    raise InputError(path, f"no _{key} for the range starting here", line=r["line"], field=f"_{key}")
            start = _number(keys["START"][0], path, keys["START"][1], "START")
            step = _number(keys["STEPSIZE"][0], path, keys["STEPSIZE"][1], "STEPSIZE")
            if step <= 0:
                raise InputError(path, f"step {step:g} must be positive", line=keys["STEPSIZE"][1], field="_STEPSIZE")
            two_theta, counts = start + step * np.arange(len(values)), values[:, 0]
        if (not np.all(np.isfinite(values)) or two_theta[0] < 0 or two_theta[-1] >= 180
                or np.any(np.diff(two_theta) <= 0)):
            raise InputError(path, "2-theta must increase within 0..180 degrees", line=r["line"])
        grids.append(two_theta)
        patterns.append((counts, keys))
    if len(patterns) > 1 and any(len(g) != len(grids[0]) or not np.allclose(g, grids[0]) for g in grids[1:]):
        raise InputError(path, f"{len(patterns)} ranges on different 2-theta grids: export each range to its own file")
    keys = patterns[0][1]
    found = next(((keys[k][0], keys[k][1]) for k in ("RANGE_WL", "WL1") if k in keys), None)
    metadata = {"format": FORMAT, "points": str(len(grids[0])), "ranges": str(len(patterns))}
    for key in ("SAMPLE", "SITE", "USER", "DATEMEASURED", "ANODE", "KV", "MA", "STEPTIME"):
        if key in keys:
            metadata[key.lower()] = keys[key][0]
    if wl_option is not None:
        lam, lam_source = wl_option, "option"
        if found:
            metadata["wavelength_file"] = found[0]
    elif found:
        lam = _number(found[0], path, found[1], "WL1")
        if keys.get("WL_UNIT", ("A", 0))[0].strip().lower() == "nm":
            lam *= 10.0
        if not 0.05 < lam < 5.0:
            raise InputError(path, f"wavelength {lam:g} angstrom is implausible", line=found[1], field="_WL1")
        lam_source = "file"
    else:
        raise InputError(path, "no wavelength (_WL1 or _RANGE_WL) in the file: pass --wavelength", field="_WL1")
    pid = keys.get("SAMPLE", ("", 0))[0].strip() or path.stem
    counts = np.stack([c for c, _ in patterns])
    ids = [pid] if len(patterns) == 1 else [f"{pid}_range{i + 1}" for i in range(len(patterns))]
    return DiffractionPatterns(source=source or path.name, pattern_ids=ids, two_theta=np.ascontiguousarray(grids[0]),
                               intensity=counts, wavelength=lam, wavelength_source=lam_source, axis="2theta",
                               lines=[r["rows"][0][0] for r in ranges], metadata=metadata)
