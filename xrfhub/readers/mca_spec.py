"""MCA spectra in SPEC text files (as SPEC and PyMca write them): one spectrum per ``@A`` array.

Layout::

    #F /data/run1.mca
    #D Thu Jun 15 10:49:33 2023

    #S 1 PS75-056-1 15.0mm
    #D Thu Jun 15 10:49:33 2023
    #@MCA %16C
    #@CHANN 2048 0 2047 1          number of channels, first, last, reduction
    #@CALIB 0.0 0.02 0             E = a + b*ch + c*ch^2 (keV), ch from the first channel
    #@CTIME 10 9.8 10              preset, live, real time (s)
    @A 0 0 3 5 ... 12 \\            counts, 16 per line, "\\" continues the array
    7 9 ... 4

``#S`` starts a scan; ``#D``, ``#@CHANN``, ``#@CALIB`` and ``#@CTIME`` given before the first
scan apply to every scan unless the scan gives its own. Every ``@A`` array is one spectrum (a
scan of several points, or several detectors, holds several); its counts must be whole numbers
(PyMca writes ``12.0000``), so a saved fit curve is refused. A quadratic ``#@CALIB`` is replaced
by its least-squares line over the channels, with a warning. Core and depth come from the caller
or the file name (see :mod:`xrfhub.readers.mca`); a file of several spectra needs one depth per
spectrum (``depth_mm=[...]``, in file order).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..records import Calibration, Spectrum
from . import mca
from .itrax_meta import decode, split_lines

FORMAT = "spec-mca"
KIND = "spectra"
DESCRIPTION = "SPEC / PyMca text file with #@MCA spectra (@A arrays)"

_CONTROL = re.compile(rb"^#(?:F|S|E|D|C|@MCA|@CHANN|@CALIB)\b", re.MULTILINE)


def sniff(head: bytes, name: str = "") -> bool:
    """Opens with a SPEC control line (``#F``, ``#S``, ``#E``, ``#D``, ``#@...``) and shows MCA
    data: a ``#@MCA``/``#@CHANN`` line or an ``@A`` array."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not _CONTROL.match(text):
        return False
    return b"#@MCA" in text or b"#@CHANN" in text or re.search(rb"(?m)^@A\s", text) is not None


@dataclass
class _Context:
    """Header values in force for the arrays that follow."""

    scan: str = ""
    date: str = ""
    chann: tuple[int, int, int, int] | None = None
    chann_line: int = 0
    calib: tuple[float, float, float] | None = None
    ctime: tuple[float, float] = (math.nan, math.nan)
    header: list[str] = field(default_factory=list)

    def copy(self) -> "_Context":
        return _Context(self.scan, self.date, self.chann, self.chann_line, self.calib, self.ctime, list(self.header))


@dataclass
class _Array:
    line: int
    values: np.ndarray
    lines: np.ndarray  # line of each value
    context: _Context


def _floats(cells: list[str], path, line: int, field_name: str) -> list[float]:
    try:
        return [float(c) for c in cells]
    except ValueError:
        raise InputError(path, f"expected numbers, found {' '.join(cells)[:40]!r}", line=line,
                         field=field_name) from None


def parse(lines: list[str], path) -> list[_Array]:
    """Every ``@A`` array with the header values in force where it stands."""
    file_ctx = _Context()
    ctx = file_ctx
    arrays: list[_Array] = []
    i = 0
    while i < len(lines):
        text = lines[i].strip()
        number = i + 1
        i += 1
        if not text:
            continue
        if text.startswith("#"):
            key, _, rest = text.partition(" ")
            rest = rest.strip()
            if key == "#S":
                ctx = file_ctx.copy()
                ctx.scan, ctx.header = rest.split()[0] if rest else "", [text]
                continue
            ctx.header.append(text)
            if key == "#D":
                ctx.date = _date(rest)
            elif key == "#@CHANN":
                values = _floats(rest.split(), path, number, "#@CHANN")
                if len(values) < 3 or values[0] <= 0 or not all(v.is_integer() for v in values):  # inf/nan too
                    raise InputError(path, "expected '#@CHANN n first last [reduction]' with whole numbers",
                                     line=number, field="#@CHANN")
                n, first, last = (int(v) for v in values[:3])
                ctx.chann, ctx.chann_line = (n, first, last, int(values[3]) if len(values) > 3 else 1), number
            elif key == "#@CALIB":
                values = _floats(rest.split(), path, number, "#@CALIB")
                if len(values) < 2 or not all(math.isfinite(v) for v in values):
                    raise InputError(path, "expected '#@CALIB a b [c]' with finite numbers", line=number,
                                     field="#@CALIB")
                ctx.calib = (values[0], values[1], values[2] if len(values) > 2 else 0.0)
            elif key == "#@CTIME":
                values = _floats(rest.split(), path, number, "#@CTIME")
                if len(values) >= 3:
                    ctx.ctime = (values[1], values[2])
            continue
        if text.startswith("@A"):
            tokens, value_lines = [], []
            body = text[2:]
            while True:
                more = body.rstrip().endswith("\\")
                cells = body.rstrip().rstrip("\\").split()
                tokens += cells
                value_lines += [number] * len(cells)
                if not more:
                    break
                if i >= len(lines) or not lines[i].strip() or lines[i].lstrip().startswith(("#", "@")):
                    # a continuation line is never blank: the array was cut short
                    raise InputError(path, "the file ends inside an @A array (a line ends with '\\' and "
                                           "no continuation follows)", line=number, field="@A")
                body, number = lines[i], i + 1
                i += 1
            try:
                values = np.array([float(t) for t in tokens])
            except ValueError:
                bad = next(k for k, t in enumerate(tokens) if not mca.is_number(t))
                raise InputError(path, f"expected a count, found {tokens[bad][:20]!r}", line=value_lines[bad],
                                 field="@A") from None
            start = value_lines[0] if value_lines else number
            if values.size == 0:
                raise InputError(path, "empty @A array", line=start, field="@A")
            arrays.append(_Array(start, values, np.array(value_lines), ctx.copy()))
            continue
        # scan data rows (motor and counter columns) between arrays carry no spectrum
    if not arrays:
        raise InputError(path, "no MCA data: expected '@A' arrays after '#@MCA'/'#@CHANN' lines")
    return arrays


def _date(text: str) -> str:
    for fmt in ("%a %b %d %H:%M:%S %Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(" ".join(text.split()), fmt).isoformat()
        except ValueError:
            continue
    return ""


def _calibration(ctx: _Context, n: int, warnings: list[str]) -> Calibration | None:
    """``#@CALIB`` as a line over the 0-based channel index (the first channel may be > 0)."""
    if ctx.calib is None:
        return None
    a, b, c = ctx.calib
    first = ctx.chann[1] if ctx.chann else 0
    if c == 0.0:  # exact: no fit, so that an identity scale (0 1 0) stays recognisably degenerate
        return Calibration(b, a + b * first, "header:#@CALIB")
    channel = first + np.arange(n, dtype=np.float64)
    warnings.append(f"#@CALIB quadratic term {c:g} replaced by the least-squares line over the channels")
    return mca.linear_fit(np.arange(n, dtype=np.float64), a + b * channel + c * channel ** 2, "header:#@CALIB")


def read(path, *, source: str | None = None, raw: bytes | None = None, calibration: Calibration | None = None,
         section_top_mm_override: float | None = None, core: str | None = None, depth_mm=None,
         **_options) -> list[Spectrum]:
    """Read every ``@A`` spectrum of a SPEC file, in file order (see the module docstring)."""
    path = Path(path)
    if raw is None:
        raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise InputError(path, "binary content: expected a SPEC/PyMca text file")
    arrays = parse(split_lines(decode(raw)), path)
    places = mca.placements(path, len(arrays), core=core, depth_mm=depth_mm,
                            section_top_mm_override=section_top_mm_override)
    named = mca.name_settings(path)
    spectra = []
    for array, place in zip(arrays, places):
        ctx = array.context
        if ctx.chann is not None and ctx.chann[0] != array.values.size:
            raise InputError(path, f"the @A array has {array.values.size} counts, #@CHANN (line {ctx.chann_line}) "
                                   f"declares {ctx.chann[0]} (truncated array?)", line=array.line, field="#@CHANN")
        counts = mca.whole_counts(array.values, path, array.lines, "@A")
        warnings: list[str] = []
        cal = mca.choose_calibration(calibration, _calibration(ctx, counts.size, warnings), warnings)
        spectra.append(Spectrum(
            counts=counts, core=place["core"], section=place["section"], section_top_mm=place["section_top_mm"],
            position_mm=place["position_mm"], depth_mm=place["depth_mm"],
            run=f"S{ctx.scan}" if ctx.scan else named.get("run", ""), replicate=int(named.get("replicate", 0)),
            tube_kv=named.get("tube_kv", math.nan), tube_ma=named.get("tube_ma", math.nan),
            live_time_s=ctx.ctime[0], real_time_s=ctx.ctime[1], date=ctx.date, calibration=cal,
            instrument="spec-mca",
            source=source or path.name, header="\n".join(ctx.header),
            warnings=tuple(place["warnings"]) + tuple(warnings),
        ))
    return spectra
