"""Diffraction patterns as text columns (``.xy``, ``.xye``, ``.dat``, ``.csv``): one pattern per file.

Layout::

    # comment lines start with '#', ';' or '!'          (optional, anywhere)
    # wavelength = 0.4843 A                            (optional: 'wavelength'/'lambda', A or nm)
    2theta  intensity  esd                             (optional header row, also as a comment)
    10.00   1943   44.1
    10.01   1889   43.5
    ...

Columns are separated by tabs, commas, semicolons or blanks (decimal commas are read with tab or
semicolon separators); CRLF and bare CR line ends are read. Two or three numeric columns:

* the axis: 2-theta in degrees, or q in 1/angstrom (1/nm when the header's unit says nm) when the
  header names it ``q``/``Q`` or the option ``axis="q"`` says so; q is converted to 2-theta with
  ``2 asin(q lambda / 4 pi)`` and a q beyond ``4 pi / lambda`` is an error naming the line;
* the intensity;
* optionally a third column. Its header name says what it is (``sigma``, ``esd``, ``error``,
  ``uncertainty`` ... -> ``"uncertainty"``; ``background``, ``bkg`` ... -> ``"background"``), or the
  option ``third_column``. Without either the values decide: an uncertainty is never negative and
  is either the square root of the counts (within 10 % at the median point) or at most half the
  intensity's median; anything else sits at the intensity's level and is a ``"background"``.
  The rule used is recorded in ``metadata['extra_kind_source']``.

Wavelength: the ``wavelength`` option (angstrom) wins over a wavelength the file states (an
explicit choice of the user is an override, as ``calibration=`` is for spectra; the file's value
is kept in ``metadata['wavelength_file']``); else the file's; else Cu K-alpha1 (1.5406 A),
recorded as ``wavelength_source="assumed"``.

Pattern id: the file stem (``MnO.xy`` -> ``MnO``). With ``scan_coord="pressure_step"`` the pattern
gets that scan coordinate, valued by the last number in the file stem (``ramp_0185.xy`` -> 185.0,
``p_12.5GPa.dat`` -> 12.5); a stem without a number is an error.

Checks: a non-numeric or non-finite value, a row with another column count than the first, an
axis that is neither increasing nor decreasing, a repeated axis value, or fewer than
:data:`MIN_POINTS` points give :class:`InputError` naming the line. A decreasing axis is reversed.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from .. import xrdaxis
from ..errors import InputError
from ..records import CU_KALPHA1_A, DiffractionPatterns
from .lab_csv import read_text, split_lines

FORMAT = "xrd-text"
KIND = "diffraction"
DESCRIPTION = "Diffraction pattern as text columns (.xy/.xye/.dat/.csv: 2-theta or q, intensity[, sigma|background])"

#: Fewer points than this is no pattern (a truncated file, or a table of something else).
MIN_POINTS = 10
_COMMENT = ("#", ";", "!")
_SNIFF_ROWS = 5  # data rows the sniffer wants to see in the head

_TWO_THETA_NAMES = frozenset({"2theta", "twotheta", "2th", "tth", "2thetadeg", "angle", "2θ",
                              "2thetaangle", "theta2", "polarangle", "x"})
_Q_NAMES = frozenset({"q", "qa", "qa1", "qnm", "qnm1", "momentumtransfer"})
_UNCERTAINTY_NAMES = frozenset({"sigma", "sigmai", "esd", "esdi", "error", "errors", "err", "uncertainty",
                                "std", "stddev", "sd", "dy", "yerr", "ierr", "di", "e"})
_BACKGROUND_NAMES = frozenset({"background", "bkg", "bkgd", "bg", "back", "bgr", "baseline"})
_THIRD_KINDS = ("uncertainty", "background")

_WAVELENGTH = re.compile(
    r"(?:wave\s*length|wavelength|lambda|λ)(?:_?[12](?=\s*[:=\[(]))?\s*(?:\[([^\]]*)\]|\(([^)]*)\))?\s*[:=]?\s*"
    r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(nm|pm|å|a|ang|angstrom|angstroms)?\b", re.IGNORECASE)
_WAVELENGTH_UNITS = {"": 1.0, "a": 1.0, "å": 1.0, "ang": 1.0, "angstrom": 1.0, "angstroms": 1.0, "nm": 10.0,
                     "pm": 0.01}
_LAST_NUMBER = re.compile(r"(\d+(?:\.\d+)?)(?!.*\d)")
_KEY_VALUE = re.compile(r"^[A-Za-z][^:=]{0,60}[:=]")
_SPEC = re.compile(r"^#(S|F|L|@)\b", re.MULTILINE)


# --------------------------------------------------------------------------- lines -> cells


def _separator(line: str) -> str | None:
    """The separator a data line uses: tab, semicolon, comma, else blanks (``None``)."""
    for sep in ("\t", ";", ","):
        if sep in line:
            return sep
    return None


def _cells(line: str, sep: str | None) -> list[str]:
    cells = [c.strip() for c in (line.split(sep) if sep else line.split())]
    while cells and not cells[-1]:
        cells.pop()  # a separator at the line end
    if sep in ("\t", ";"):
        cells = [c.replace(",", ".") for c in cells]  # decimal commas are unambiguous here
    return cells


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_comment(text: str) -> bool:
    return text.startswith(_COMMENT)


def _name_key(text: str) -> tuple[str, str]:
    """``(name, unit)`` of a header cell: lower case, letters/digits only, unit from brackets."""
    text = text.strip().strip('"\'')
    unit = ""
    match = re.search(r"[\[(]([^\])]*)[\])]", text)
    if match:
        unit = match.group(1).strip().lower()
        text = text[:match.start()] + text[match.end():]
    key = "".join(ch for ch in text.lower() if ch.isalnum() or ch == "θ")
    return key, unit


def _header_cells(line: str, sep: str | None) -> list[str]:
    """A header row split like the data (blanks: a bracketed unit stays with its name)."""
    text = line.lstrip("#;!").strip()
    if sep and sep in text:
        return [c.strip() for c in text.split(sep) if c.strip()]
    out: list[str] = []
    for token in text.split():
        if out and token[:1] in "([":
            out[-1] += " " + token
        else:
            out.append(token)
    return out


def _axis_kind(name: str) -> str | None:
    key, _unit = _name_key(name)
    if key in _Q_NAMES:
        return "q"
    if key in _TWO_THETA_NAMES or key.startswith(("2theta", "twotheta", "tth", "angle")):
        return "2theta"
    return None


def _q_factor(name: str) -> float:
    """Factor from the header's q unit to 1/angstrom: 0.1 for 1/nm, else 1."""
    key, unit = _name_key(name)
    return 0.1 if "nm" in unit or key in ("qnm", "qnm1") else 1.0


def _third_kind_by_name(name: str) -> str | None:
    key, _unit = _name_key(name)
    if key in _UNCERTAINTY_NAMES or key.startswith(("sigma", "esd", "err", "uncert")):
        return "uncertainty"
    if key in _BACKGROUND_NAMES or key.startswith(("background", "bkg")):
        return "background"
    return None


# --------------------------------------------------------------------------- the file's parts


def _scan(lines: list[str], path) -> dict:
    """Split the lines into preamble (comments, header row, ``key: value``) and data rows."""
    preamble: list[tuple[int, str]] = []
    rows: list[tuple[int, list[str]]] = []
    sep = None
    width = None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if _is_comment(text):
            preamble.append((number, text))
            continue
        if width is None:
            guess = _separator(text)
            cells = _cells(text, guess)
            if not cells or not _is_number(cells[0]):
                preamble.append((number, text))  # a header row or a key: value line
                continue
            sep, width = guess, len(cells)
            if width not in (2, 3):
                raise InputError(path, f"expected 2 or 3 columns (axis, intensity[, sigma or background]), found "
                                       f"{width}: {text[:60]!r}", line=number)
        cells = _cells(text, sep)
        if len(cells) != width:
            raise InputError(path, f"row has {len(cells)} column(s), the rows before have {width} "
                                   "(a ragged or cut row?)", line=number)
        rows.append((number, cells))
    return {"preamble": preamble, "rows": rows, "sep": sep, "width": width or 0}


def _header(preamble: list[tuple[int, str]], sep: str | None, width: int) -> list[str] | None:
    """Column names: the last preamble line before the data that splits into ``width`` cells
    and names an axis first (``2theta intensity``, ``# q I sigma``, ``tth,counts``)."""
    for _number, text in reversed(preamble):
        cells = _header_cells(text, sep)
        if len(cells) == width and _axis_kind(cells[0]):
            return cells
        if len(cells) == width and not _is_comment(text) and not _KEY_VALUE.match(text):
            return cells  # a plain header row of names we do not know: names, still
    return None


def _file_wavelength(preamble: list[tuple[int, str]], path) -> tuple[float, int] | None:
    for number, text in preamble:
        match = _WAVELENGTH.search(text)
        if not match:
            continue
        unit = (match.group(4) or match.group(1) or match.group(2) or "").strip().lower()
        if unit not in _WAVELENGTH_UNITS:
            raise InputError(path, f"wavelength unit {unit!r} not understood (expected A, angstrom or nm)",
                             line=number, field="wavelength")
        value = float(match.group(3)) * _WAVELENGTH_UNITS[unit]
        if not (math.isfinite(value) and 0 < value < 100):
            raise InputError(path, f"wavelength {match.group(3)} is not a positive number of angstrom",
                             line=number, field="wavelength")
        return value, number
    return None


def _numbers(rows: list[tuple[int, list[str]]], header: list[str] | None, path) -> np.ndarray:
    try:
        values = np.array([cells for _n, cells in rows], dtype=np.float64)
    except ValueError:  # find the cell, converting one by one
        table = []
        for number, cells in rows:
            row = []
            for i, cell in enumerate(cells):
                try:
                    row.append(float(cell))
                except ValueError:
                    raise InputError(path, f"expected a number, found {cell[:30]!r}", line=number,
                                     field=header[i] if header else f"column {i + 1}") from None
            table.append(row)
        values = np.array(table, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(path, f"value {rows[row][1][col]!r} is not finite (NaN or infinity): expected a number",
                         line=rows[row][0], field=header[col] if header else f"column {col + 1}")
    return values


def wavelength_option(path, wavelength) -> float | None:
    """The ``wavelength`` option checked (angstrom, or None)."""
    if wavelength is None:
        return None
    try:
        value = float(wavelength)
    except (TypeError, ValueError):
        raise InputError(path, f"the wavelength option must be a number of angstrom, got {wavelength!r}",
                         field="wavelength") from None
    if not (math.isfinite(value) and 0 < value < 100):
        raise InputError(path, f"the wavelength option must be a positive number of angstrom, got {wavelength!r}",
                         field="wavelength")
    return value


def scan_value_from_name(path: Path, scan_coord: str | None) -> dict[str, np.ndarray]:
    """``{scan_coord: [last number in the file stem]}``, or ``{}`` without ``scan_coord``."""
    if not scan_coord:
        return {}
    match = _LAST_NUMBER.search(path.stem)
    if not match:
        raise InputError(path, f"scan coordinate {scan_coord!r} is taken from a number in the file name "
                               f"(e.g. ramp_0185.xy -> 185), and {path.name!r} has none", field="scan_coord")
    return {str(scan_coord): np.array([float(match.group(1))])}


def order_axis(path, axis: np.ndarray, line_numbers: list[int], name: str) -> np.ndarray | None:
    """Check that ``axis`` runs one way without repeats; return the order that makes it increasing
    (``None`` when it already is). Errors name the offending line."""
    step = np.diff(axis)
    order = None
    if step.size and np.all(step < 0):
        order = np.arange(axis.size)[::-1]
        step = -step[::-1]
        line_numbers = line_numbers[::-1]
    same = np.flatnonzero(step == 0)
    if same.size:
        i = same[0]
        raise InputError(path, f"{name} value {axis[order[i] if order is not None else i]:g} repeats line "
                               f"{line_numbers[i]}: expected distinct values", line=line_numbers[i + 1])
    back = np.flatnonzero(step < 0)
    if back.size:
        i = back[0]
        raise InputError(path, f"{name} goes back from {axis[i]:g} to {axis[i + 1]:g}: expected values that "
                               "increase (or decrease) throughout", line=line_numbers[i + 1])
    return order


def q_axis_to_two_theta(path, q: np.ndarray, wavelength: float, line_numbers, field: str) -> np.ndarray:
    """2-theta of a q axis (1/angstrom); a negative q or one beyond ``4 pi / lambda`` is an error."""
    limit = 4.0 * math.pi / wavelength
    bad = np.flatnonzero((q < 0) | (q > limit))
    if bad.size:
        i = bad[0]
        raise InputError(path, f"q = {q[i]:g} 1/A cannot be reached at wavelength {wavelength:g} A (q must lie in "
                               f"0..{limit:.4g}): wrong wavelength, or q in 1/nm?", line=line_numbers[i], field=field)
    return xrdaxis.q_to_two_theta(q, wavelength)


def _third_kind(values: np.ndarray, name: str | None, option: str | None, path) -> tuple[str, str]:
    if option is not None:
        if option not in _THIRD_KINDS:
            raise InputError(path, f"third_column must be one of {_THIRD_KINDS}, got {option!r}",
                             field="third_column")
        return option, "option"
    kind = _third_kind_by_name(name) if name else None
    if kind:
        return kind, "header"
    intensity, third = values[:, 1], values[:, 2]
    if (third >= 0).all():
        root = np.sqrt(np.abs(intensity))
        scale = np.median(root)
        poisson = scale > 0 and np.median(np.abs(third - root)) <= 0.1 * scale
        if poisson or np.median(third) <= 0.5 * np.median(np.abs(intensity)):
            return "uncertainty", "guessed from the values"
    return "background", "guessed from the values"


# --------------------------------------------------------------------------- the reader


def sniff(head: bytes, name: str = "") -> bool:
    """The first rows after comments (and at most a header row naming an axis, and ``key: value``
    lines) are 2-3 numeric columns of one width whose first column runs one way.

    Headers that name no axis are left alone: a lab table of two numbers per row has a header
    like ``depth_cm,CaCO3``. SPEC files (``#S``/``#F``/``#L`` lines) are left to their reader.
    """
    if b"\x00" in head:
        return False
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if text.lstrip().startswith(("/*", "$", "<", "{")) or _SPEC.search(text):
        return False
    lines = split_lines(text)
    if len(head) >= 8192 and len(lines) > 1:
        lines = lines[:-1]  # the last line of a full head may be cut
    others, rows, sep, width = 0, [], None, None
    for line in lines:
        stripped = line.strip()
        if not stripped or _is_comment(stripped):
            continue
        if width is None:
            guess = _separator(stripped)
            cells = _cells(stripped, guess)
            if not (cells and _is_number(cells[0])):
                others += 1
                header = _header_cells(stripped, guess)
                if others > 3 or not (_KEY_VALUE.match(stripped) or (header and _axis_kind(header[0]))):
                    return False
                continue
            sep, width = guess, len(cells)
            if width not in (2, 3):
                return False
        cells = _cells(stripped, sep)
        if len(cells) != width or not all(_is_number(c) for c in cells):
            return False
        rows.append(float(cells[0]))
        if len(rows) >= _SNIFF_ROWS:
            break
    if len(rows) < _SNIFF_ROWS:
        return False
    step = np.diff(rows)
    return bool(np.all(step > 0) or np.all(step < 0)) and all(math.isfinite(r) for r in rows)


def read(path, *, source: str | None = None, raw: bytes | None = None, wavelength: float | None = None,
         scan_coord: str | None = None, axis: str | None = None, third_column: str | None = None,
         **_options) -> DiffractionPatterns:
    """Read one text pattern into a one-pattern :class:`DiffractionPatterns`.

    Options: ``wavelength`` (angstrom; wins over the file's), ``scan_coord`` (name of a scan
    coordinate valued from the file name's last number), ``axis`` ("2theta" or "q": wins over the
    header), ``third_column`` ("uncertainty" or "background": wins over the header and the
    guess). Options meant for spectra readers (``core``, ``calibration`` ...) are ignored.
    """
    path = Path(path)
    wl_option = wavelength_option(path, wavelength)
    if axis is not None and axis not in ("2theta", "q"):
        raise InputError(path, f"axis must be '2theta' or 'q', got {axis!r}", field="axis")
    parts = _scan(split_lines(read_text(path, raw)), path)
    rows, width = parts["rows"], parts["width"]
    if len(rows) < MIN_POINTS:
        raise InputError(path, f"found {len(rows)} data row(s), expected at least {MIN_POINTS} rows of "
                               "'2theta intensity [sigma|background]'",
                         line=rows[0][0] if rows else None)
    header = _header(parts["preamble"], parts["sep"], width)
    values = _numbers(rows, header, path)
    line_numbers = [n for n, _cells in rows]
    metadata = {"format": FORMAT, "separator": {"\t": "tab", None: "blank"}.get(parts["sep"], parts["sep"]),
                "points": str(len(rows))}
    if header:
        metadata["columns"] = " | ".join(header)

    header_axis = _axis_kind(header[0]) if header else None
    axis_kind = axis or header_axis or "2theta"
    metadata["axis_source"] = "option" if axis else ("header" if header_axis else "default")

    found = _file_wavelength(parts["preamble"], path)
    if wl_option is not None:
        lam, lam_source = wl_option, "option"
        if found and not math.isclose(found[0], wl_option, rel_tol=1e-6):
            metadata["wavelength_file"] = f"{found[0]:g}"
            metadata["wavelength_note"] = (f"the option's {wl_option:g} A was used; the file says {found[0]:g} A "
                                           f"(line {found[1]})")
    elif found:
        lam, lam_source = found[0], "file"
    else:
        lam, lam_source = CU_KALPHA1_A, "assumed"

    raw_axis = values[:, 0]
    order = order_axis(path, raw_axis, line_numbers, "2-theta" if axis_kind == "2theta" else "q")
    if order is not None:
        values, line_numbers = values[order], [line_numbers[i] for i in order]
        metadata["axis_reversed"] = "true"
    field = header[0] if header else "column 1"
    if axis_kind == "q":
        factor = _q_factor(header[0]) if header and header_axis == "q" else 1.0
        two_theta = q_axis_to_two_theta(path, values[:, 0] * factor, lam, line_numbers, field)
        metadata["q_unit"] = "1/nm" if factor != 1.0 else "1/angstrom"
    else:
        two_theta = values[:, 0]
        bad = np.flatnonzero((two_theta < 0) | (two_theta >= 180))
        if bad.size:
            raise InputError(path, f"2-theta {two_theta[bad[0]]:g} is outside 0..180 degrees (is the axis q? "
                                   "name the column 'q' or pass axis='q')", line=line_numbers[bad[0]], field=field)

    extra, extra_kind = None, ""
    if width == 3:
        extra_kind, how = _third_kind(values, header[2] if header else None, third_column, path)
        metadata["extra_kind_source"] = how
        if extra_kind == "uncertainty":
            negative = np.flatnonzero(values[:, 2] < 0)
            if negative.size:
                raise InputError(path, f"uncertainty {values[negative[0], 2]:g} is negative",
                                 line=line_numbers[negative[0]], field=header[2] if header else "column 3")
        extra = values[:, 2][None, :].copy()

    return DiffractionPatterns(
        source=source or path.name, pattern_ids=[path.stem], two_theta=np.ascontiguousarray(two_theta),
        intensity=values[:, 1][None, :].copy(), wavelength=lam, wavelength_source=lam_source, axis=axis_kind,
        extra=extra, extra_kind=extra_kind, scan=scan_value_from_name(path, scan_coord),
        lines=[min(line_numbers)], metadata=metadata)
