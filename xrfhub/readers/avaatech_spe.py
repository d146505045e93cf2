"""Avaatech raw spectra: one ORTEC-like ASCII ``.spe`` file per measured point.

The header is a sequence of ``$KEY:`` lines, each followed by its value on the next line(s);
``$DATA:`` is followed by ``first last`` channel and the counts (one or several per line). Keys
are parsed by name, never by line number, because heads of different scanner generations write
different subsets in different orders (DESIGN section 3). Metadata also sit in the file name, in
a space-separated scheme with unit suffixes or in 17 ``!``-separated fields; the header wins
where both speak, and the name fills what an older head leaves out.
"""
from __future__ import annotations

import math
import re
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..coreid import is_placeholder, parse_iodp_sample
from ..records import DEFAULT_CALIBRATION, DEPTH_CORE, DEPTH_SECTION_RELATIVE, Calibration, Spectrum
from .not_xrf import refuse_gamma_text

FORMAT = "avaatech-spe"
KIND = "spectra"
DESCRIPTION = "Avaatech raw spectrum (ORTEC-like .spe, $KEY: header)"

_KEY = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*):[ \t]*(.*)$")
_BOUND = re.compile(r"-?[0-9]{1,18}")
_NUMBER_UNIT = re.compile(r"^\s*([-+]?\d+(?:[.,]\d*)?(?:[eE][-+]?\d+)?)\s*([A-Za-zµ%]*)\s*$")
_RUN_FOLDER = re.compile(r"Run\s*(\d+)", re.IGNORECASE)


def sniff(head: bytes, name: str = "") -> bool:
    """Avaatech files open with ``$SPEC_ID:`` (ITRAX ``.spe`` files are tab-separated tables)."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"$SPEC_ID:") or (text.startswith(b"$") and b"\n$DATA:" in text.replace(b"\r", b"\n"))


# --------------------------------------------------------------------------- header


def _decode(raw: bytes) -> str:
    """The text, with CRLF line ends kept when every CR is one (see :func:`_lf`), else every
    line end made LF. Rewriting the line ends of the counts cost as much as parsing them (a
    CRLF file holds ~2,000), and numpy reads a CR as the whitespace it is; so only the short
    header and tail are rewritten, by :func:`_lf`, and line numbers count LFs either way."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = text.lstrip("\ufeff")
    if "\r" in text and text.count("\r") != text.count("\r\n"):  # lone CRs (old Mac files)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _lf(text: str) -> str:
    """A part of a :func:`_decode`d text with LF line ends, as the reader always saw it."""
    return text.replace("\r\n", "\n") if "\r" in text else text


def parse_header(lines: list[str], path) -> tuple[dict[str, list[str]], dict[str, int]]:
    """``$KEY:`` -> its value lines, and the 1-based line each key sits on."""
    header: dict[str, list[str]] = {}
    where: dict[str, int] = {}
    key = None
    for number, line in enumerate(lines, start=1):
        match = _KEY.match(line)
        if match:
            key = match.group(1).upper()
            header[key] = [match.group(2)] if match.group(2).strip() else []
            where[key] = number
        elif key is not None:
            if line.strip():
                header[key].append(line.strip())
        elif line.strip():
            raise InputError(path, f"expected a '$KEY:' line, found {line[:40]!r}", line=number)
    return header, where


class _Fields:
    """Typed access to header values, with errors that name the file, key and line."""

    def __init__(self, header, where, path):
        self.header, self.where, self.path = header, where, path

    def text(self, key: str) -> str | None:
        value = self.header.get(key)
        return " ".join(value).strip() if value else None

    def number(self, key: str, units: dict[str, float] | None = None) -> float | None:
        """A number, optionally with a unit suffix converted by ``units`` (unit -> factor)."""
        text = self.text(key)
        if text is None:
            return None
        return _to_number(text.split()[0] if units is None else text, self.path, f"${key}",
                          units, line=self.where.get(key, 0) + 1)


def _to_number(text: str, path, field: str, units: dict[str, float] | None = None, *, line=None) -> float:
    match = _NUMBER_UNIT.match(text)
    if not match:
        raise InputError(path, f"expected a number, found {text!r}", line=line, field=field)
    value = float(match.group(1).replace(",", "."))
    if not math.isfinite(value):  # hundreds of digits overflow a float
        raise InputError(path, f"number {match.group(1)[:40]!r} is out of range", line=line, field=field)
    unit = match.group(2)
    if unit:
        if units is None or unit not in units:
            known = ", ".join(sorted(units)) if units else "none"
            raise InputError(path, f"unknown unit {unit!r} (known: {known})", line=line, field=field)
        value *= units[unit]
    return value


# --------------------------------------------------------------------------- file names

_SECTION_TOKEN = re.compile(r"^(.+)_(\d{3,6})$")
#: A whole number as int() reads it safely: ASCII digits (str.isdigit also accepts '²'), and few
#: enough of them to be a run, a replicate or a channel (a damaged file may hold thousands).
_ASCII_DIGITS = re.compile(r"[0-9]+")
#: A count as ORTEC software may write it: digits, or a whole float ("0.", "12.000").
_WHOLE_COUNT = re.compile(r"[0-9]+(?:\.0*)?")
_SMALL_WHOLE = re.compile(r"[0-9]{1,9}")


def section_top_mm(token: str, path, field: str) -> float:
    """Section top from its token: 3-4 digits are cm, 5-6 digits are mm (DESIGN section 3)."""
    token = token.strip()
    if _ASCII_DIGITS.fullmatch(token) and not token.strip("0"):
        return 0.0  # zero is zero in cm and mm alike (bAXIL writes section "0")
    if not _ASCII_DIGITS.fullmatch(token) or not 3 <= len(token) <= 6:
        raise InputError(path, f"section token {token!r} is not 3-4 digits (cm) or 5-6 digits (mm); "
                               "pass the section top explicitly", field=field)
    return float(int(token) * 10 if len(token) <= 4 else int(token))


#: One token of a space-separated file name, by kind (compiled once: parsed for every file).
_NAME_TOKEN = re.compile(r"(?P<mm>[-+]?\d+(?:[.,]\d+)?mm)|(?P<s>\d+(?:[.,]\d+)?s)|(?P<kv>\d+(?:[.,]\d+)?kv)"
                         r"|(?P<ua>\d+(?:[.,]\d+)?ua)|(?P<ma>\d+(?:[.,]\d+)?ma)|(?P<run>run[0-9]{1,9})"
                         r"|(?P<rep>rep[0-9]{1,9})")


def parse_space_name(stem: str) -> dict:
    """``PS75-056-1_0100   15.0mm  10s  10kV 150uA No-Filter   0.0mm Run1 Rep0 Sett Low``."""
    tokens = stem.split()
    out: dict = {}
    if not tokens:
        return out
    match = _SECTION_TOKEN.match(tokens[0])
    if match:
        out["core"], out["section"] = match.group(1), match.group(2)
    mm_seen = 0
    for tok in tokens[1:]:
        low = tok.lower()
        m = _NAME_TOKEN.fullmatch(low)
        kind = m.lastgroup if m else None
        if kind == "mm":
            value = float(low[:-2].replace(",", "."))
            out["position_mm" if mm_seen == 0 else "y_mm"] = value
            mm_seen += 1
        elif kind == "s":
            out["live_time_s"] = float(low[:-1].replace(",", "."))
        elif kind == "kv":
            out["tube_kv"] = float(low[:-2].replace(",", "."))
        elif kind == "ua":
            out["tube_ma"] = float(low[:-2].replace(",", ".")) / 1000.0
        elif kind == "ma":
            out["tube_ma"] = float(low[:-2].replace(",", "."))
        elif kind == "run":
            out["run"] = f"Run{int(low[3:])}"
        elif kind == "rep":
            out["replicate"] = int(low[3:])
        elif mm_seen == 1 and "filter" not in out and not low.startswith("sett"):
            out["filter"] = tok
    return out


def parse_bang_name(stem: str, path) -> dict:
    """The 17 ``!``-separated fields: core, section, ?, depth mm, date, time, live s, kV, uA,
    X mm, Y mm, filter, slit DC, slit CC, run, replicate, setting."""
    f = [x.strip() for x in stem.split("!")]
    if len(f) != 17:
        raise InputError(path, f"file name has {len(f)} '!'-separated fields, expected 17")

    def num(i, name):
        return _to_number(f[i], path, f"file name field {i + 1} ({name})") if f[i] else math.nan

    out = {"core": f[0], "section": f[1], "depth_field_mm": num(3, "depth mm"),
           "live_time_s": num(6, "live time s"), "tube_kv": num(7, "kV"),
           "tube_ma": num(8, "uA") / 1000.0, "position_mm": num(9, "X mm"), "y_mm": num(10, "Y mm"),
           "filter": f[11], "slit_dc_mm": num(12, "slit DC mm"), "slit_cc_mm": num(13, "slit CC mm")}
    if f[14]:
        out["run"] = f"Run{int(f[14])}" if _SMALL_WHOLE.fullmatch(f[14]) else f[14].replace(" ", "")
    if f[15]:
        rep = re.sub(r"(?i)^rep", "", f[15])
        out["replicate"] = _replicate(rep, path, "file name field 16 (replicate)")
    if f[4]:
        out["date"] = _iso_date(f"{f[4]} {f[5]}".strip(), path, "file name date")
    return out


_US_DATE = re.compile(r"(\d{2})([-/])(\d{2})\2(\d{4}) (\d{2}):(\d{2}):(\d{2})")
#: ``2023-04-01 09-36-35`` (the ``!`` name's date and time fields) or ``... 09:36:35``.
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2})([:-])(\d{2})\5(\d{2})")


def _iso_date(text: str, path, field: str) -> str:
    m = _US_DATE.fullmatch(text.strip())  # the scanners' own formats: no strptime needed
    if m:
        mo, _sep, d, y, hh, mm, ss = m.groups()
        mo, d, y, hh, mm, ss = map(int, (mo, d, y, hh, mm, ss))
        try:
            return datetime(y, mo, d, hh, mm, ss).isoformat()
        except ValueError:
            pass  # not a valid date this way: let the formats below decide, and say why
    m = _ISO_DATE.fullmatch(text.strip())  # what the formats below read as %Y-%m-%d %H:%M:%S or %H-%M-%S
    if m:
        y, mo, d, hh, _sep, mm, ss = m.groups()
        try:
            return datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss)).isoformat()
        except ValueError:
            pass
    for fmt in ("%m-%d-%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H-%M-%S", "%m-%d-%Y",
                "%d.%m.%Y %H:%M:%S", "%Y%m%d %H%M%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), fmt).isoformat()
        except ValueError:
            continue
    raise InputError(path, f"date {text!r} is not mm-dd-yyyy hh:mm:ss", field=field)


# --------------------------------------------------------------------------- counts


def _counts(text: str, pos: int, line0: int, path) -> tuple[np.ndarray, int, int]:
    """Counts of the ``$DATA:`` block starting at offset ``pos`` (on 1-based line ``line0``).

    Works on the text, not on split lines: the block is thousands of lines and is handed to
    numpy's C parser in one piece. Returns (counts, offset after the block, offset of its
    first count line): the line after the block is ``line0 + 2`` plus the line ends between
    the last two, counted only when a tail needs its line numbers (a count over the block
    costs a tenth of parsing it).
    """
    nl1 = text.find("\n", pos)
    nl2 = text.find("\n", nl1 + 1) if nl1 != -1 else -1
    if nl1 == -1 or not text[nl1 + 1:nl2 if nl2 != -1 else None].strip():
        raise InputError(path, "expected 'first last' channel after $DATA:, found ''", line=line0 + 1,
                         field="$DATA")
    bounds_text = text[nl1 + 1:nl2 if nl2 != -1 else None].rstrip("\r")  # a CRLF file's CR
    bounds = bounds_text.split()
    if len(bounds) != 2 or not all(_BOUND.fullmatch(b) for b in bounds):
        raise InputError(path, f"expected 'first last' channel after $DATA:, found {bounds_text!r}",
                         line=line0 + 1, field="$DATA")
    first, last = int(bounds[0]), int(bounds[1])
    expected = last - first + 1
    if expected <= 0:
        raise InputError(path, f"channel range {first}..{last} is empty", line=line0 + 1, field="$DATA")
    begin = len(text) if nl2 == -1 else nl2 + 1
    # the block ends where a line starts with "$" (ORTEC blocks may follow); a one-character
    # search runs at memchr speed, a two-character one ("\n$") was a tenth of reading a file
    stop = text.find("$", begin)
    while stop != -1 and text[stop - 1] != "\n":
        stop = text.find("$", stop + 1)
    stop = len(text) if stop == -1 else stop
    body = text[begin:stop]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            values = np.fromstring(body, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        values = _float_counts(body)  # ORTEC software writes whole counts as floats: "0." "12.0"
    if values is None or values.size != expected:
        _locate_bad_count(body, line0 + 2, expected, path)
    if values.min(initial=0) < 0 or values.max(initial=0) > np.iinfo(np.uint32).max:
        bad = int(np.flatnonzero((values < 0) | (values > np.iinfo(np.uint32).max))[0])
        raise InputError(path, f"count of channel {first + bad} is {values[bad]}, expected 0..2^32-1",
                         field="$DATA")
    return values.astype(np.uint32), stop, begin


def _float_counts(body: str) -> np.ndarray | None:
    """Counts written as floats (``0.``, ``12.0``) when every one is a whole number, else None
    (the slow path then names the first bad token)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            floats = np.fromstring(body, dtype=np.float64, sep=" ")
    except (ValueError, DeprecationWarning):
        return None
    if not np.all(np.isfinite(floats)) or np.any(floats != np.rint(floats)) or np.any(np.abs(floats) > 2.0 ** 53):
        return None
    return floats.astype(np.int64)


def _locate_bad_count(body: str, first_line: int, expected: int, path):
    """Slow path, only for broken files: find the line that spoils the counts."""
    seen = 0
    lines = body.split("\n")
    for i, line in enumerate(lines):
        for token in line.split():
            if not _WHOLE_COUNT.fullmatch(token):
                raise InputError(path, f"expected an integer count, found {token[:20]!r}", line=first_line + i,
                                 field="$DATA")
            seen += 1
    raise InputError(path, f"found {seen} counts, expected {expected} (truncated or garbled file?)",
                     line=first_line + max(len(lines) - 2, 0), field="$DATA")


# --------------------------------------------------------------------------- calibration


def _calibration(fields: _Fields, path) -> Calibration:
    cal = fields.header.get("MCA_CAL")
    if cal and len(cal) >= 2:
        terms = cal[1].replace(",", ".").split()
        unit = terms[-1] if terms and not _is_float(terms[-1]) else "keV"
        coefficients = [float(t) for t in terms if _is_float(t)]
        scale = {"kev": 1.0, "ev": 1e-3}.get(unit.lower())
        if scale is None:
            raise InputError(path, f"unknown calibration unit {unit!r} (known: keV, eV)",
                             line=fields.where["MCA_CAL"] + 2, field="$MCA_CAL")
        if len(coefficients) >= 2:
            c = Calibration(coefficients[1] * scale, coefficients[0] * scale, "header:$MCA_CAL")
            if not c.degenerate:
                return c
    fit = fields.text("ENER_FIT")
    if fit:
        terms = fit.replace(",", ".").split()
        if len(terms) >= 2 and all(_is_float(t) for t in terms[:2]):
            c = Calibration(float(terms[1]), float(terms[0]), "header:$ENER_FIT")
            if not c.degenerate:
                return c
    return DEFAULT_CALIBRATION


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- reader

_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
_KV = {"kV": 1.0, "kv": 1.0, "V": 1e-3}
_MA = {"mA": 1.0, "ma": 1.0, "uA": 1e-3, "µA": 1e-3, "ua": 1e-3}


def read(path, *, source: str | None = None, raw: bytes | None = None, calibration: Calibration | None = None,
         section_top_mm_override: float | None = None, core: str | None = None, **_options) -> list[Spectrum]:
    """Read one Avaatech ``.spe`` file into a one-element list of :class:`Spectrum`.

    ``calibration`` overrides whatever the file says (recorded as source ``"option"``);
    ``core`` and ``section_top_mm_override`` supply what neither header nor name gives.
    """
    path = path if isinstance(path, Path) else Path(path)
    if raw is None:
        raw = path.read_bytes()
    if raw.find(b"\x00", 0, 4096) != -1:
        raise InputError(path, "binary content: expected an ASCII Avaatech .spe file")
    text = _decode(raw)
    pos = 0 if text.startswith("$DATA:") else text.find("\n$DATA:") + 1
    if pos == 0 and not text.startswith("$DATA:"):
        raise InputError(path, "no $DATA: block: expected an Avaatech .spe file with counts")
    head_text = _lf(text[:pos])[:-1] if pos else ""  # up to its last line end (a CRLF's CR too)
    refuse_gamma_text(head_text, path)  # ORTEC's format is also a gamma spectrometer's (NaI natural gamma)
    head = head_text.split("\n") if pos else []
    counts, after, begin = _counts(text, pos, len(head) + 1, path)
    header, where = parse_header(head, path)
    tail_text = _lf(text[after:])
    if tail_text.strip():  # ORTEC files may carry $ROI:, $ENER_FIT:, $MCA_CAL: after the counts
        after_line = len(head) + 3 + text.count("\n", begin, after)
        tail, tail_where = parse_header(tail_text.split("\n"), path)
        header.update(tail)
        where.update({k: v + after_line - 1 for k, v in tail_where.items()})
    fields = _Fields(header, where, path)
    header_text = (head_text + "\n" + tail_text).strip()

    warn: list[str] = []
    name = _name_fields(path, fields)

    ident = _identity(fields, name, path, core, warn)
    section = ident["section"]
    scale = DEPTH_CORE
    depth_opt = _options.get("depth_mm")  # --depth: a single point's core depth, given by the user
    if section_top_mm_override is not None:
        top = float(section_top_mm_override)
    elif ident["iodp"] and section == ident["iodp"].section:
        # an IODP section number says which section, not where its top is: positions stay
        # section-relative until a --sections table gives the tops
        top, scale = math.nan, DEPTH_SECTION_RELATIVE
    elif section:
        top = section_top_mm(section, path, ident["section_field"])
    elif depth_opt is not None:
        top = 0.0
    else:
        raise InputError(path, "no section token in $Section_ID: or the file name (e.g. 'CORE_0100 ...'); "
                               "pass the section top, or --depth (mm) for a single point", field="$Section_ID")

    x = fields.number("X_POSITION", _MM)
    position = x if x is not None else name.get("position_mm")
    if depth_opt is not None:
        if position is not None and abs(float(depth_opt) - top - position) > 1e-6:
            warn.append(f"--depth {float(depth_opt):g} mm used; the file says {top + position:g} mm")
        position = float(depth_opt) - top
    if position is None:
        raise InputError(path, "no position in section: expected $X_Position: or a 'NN.Nmm' token in the name",
                         field="$X_Position")
    for label, other in (("$Depth", fields.number("DEPTH", _MM)), ("file name depth", name.get("depth_field_mm"))):
        if other is not None and not math.isnan(other) and abs(other - position) > 1e-6:
            warn.append(f"{label} {other:g} mm disagrees with X position {position:g} mm; X used")

    meas = (fields.text("MEAS_TIM") or "").replace(",", ".").split()
    live = float(meas[0]) if meas and _is_float(meas[0]) else name.get("live_time_s", math.nan)
    real = float(meas[1]) if len(meas) > 1 and _is_float(meas[1]) else math.nan
    kv = fields.number("ACC_VOLT", _KV)
    ma = fields.number("TUBE_CUR", _MA)
    date_text = fields.text("DATE_MEA")
    date = _iso_date(date_text, path, "$DATE_MEA") if date_text else name.get("date", "")
    run = fields.text("RUN_ID") or name.get("run") or _run_from_folder(path)
    run = _run_token(run)
    rep_text = fields.text("REPLICATE_ID")
    if rep_text:  # written like the file-name token ("Rep0") by some heads
        rep_text = re.sub(r"(?i)^\s*rep(?:licate)?[\s_-]*", "", rep_text)
    replicate = _replicate(rep_text, path, "$Replicate_ID", line=fields.where.get("REPLICATE_ID", 0) + 1) \
        if rep_text else name.get("replicate", 0)
    cal = calibration if calibration is not None else _calibration(fields, path)

    return [Spectrum(
        counts=counts, core=ident["core"], section=section, half=ident["half"], sample_id=ident["sample_id"],
        section_top_mm=top, position_mm=float(position),
        depth_mm=float(position) if scale == DEPTH_SECTION_RELATIVE else top + float(position), depth_scale=scale,
        run=run or "", replicate=int(replicate),
        tube_kv=kv if kv is not None else name.get("tube_kv", math.nan),
        tube_ma=ma if ma is not None else name.get("tube_ma", math.nan),
        live_time_s=live, real_time_s=real,
        filter=fields.text("FILTER") or name.get("filter", ""),
        slit_dc_mm=_first(fields.number("SLIT_DC", _MM), name.get("slit_dc_mm")),
        slit_cc_mm=_first(fields.number("SLIT_CC", _MM), name.get("slit_cc_mm")),
        y_mm=_first(fields.number("Y_POSITION", _MM), name.get("y_mm")),
        total_cps=_first(fields.number("TOTALCPS"), None), date=date, calibration=cal,
        instrument="avaatech", detector=fields.text("DETECTOR") or fields.text("SPEC_REM") or "",
        source=source or path.name, header=header_text, warnings=tuple(warn),
    )]


def _identity(fields: _Fields, name: dict, path: Path, core_option: str | None, warn: list[str]) -> dict:
    """Core, section, half and text id of the spectrum, with placeholders never deciding.

    ``$Core_ID: 0`` / ``$Section_ID: 0`` (or empty, ``-``) are fields the scanner software left
    at their default, so the file name (or ``$SPEC_ID:``) decides. An IODP sample name
    (``397-U1587A-2H-1-A_SHLF11796791``) in the core field is split into core
    ``397-U1587A-2H``, section ``1``, half ``A`` and text id. ``--core`` (``core_option``) wins
    over everything the file says.
    """
    head_core, head_section = fields.text("CORE_ID"), fields.text("SECTION_ID")
    name_core, name_section = name.get("core"), name.get("section")
    head_core = None if is_placeholder(head_core) else head_core.strip()
    name_core = None if is_placeholder(name_core) else name_core.strip()
    iodp = next((parsed for parsed in (parse_iodp_sample(t) for t in (head_core, name_core) if t) if parsed), None)
    out = {"iodp": iodp, "half": "", "sample_id": ""}
    if iodp is not None:
        out.update(core=iodp.core, half=iodp.half, sample_id=iodp.text_id)
    else:
        out["core"] = head_core or name_core
    if core_option:
        out["core"] = core_option.strip()
    if not out["core"]:
        said = f" ($Core_ID: holds the placeholder {fields.text('CORE_ID')!r})" if fields.text("CORE_ID") is not None \
            else ""
        raise InputError(path, f"no core id in $Core_ID:, the file name or $SPEC_ID:{said}; pass --core",
                         field="$Core_ID")
    # the section: a real header value, else the IODP sample name, else the name's token
    if head_section is not None and not is_placeholder(head_section):
        section, where = head_section.strip(), "$Section_ID"
        if iodp is not None and section.lstrip("0") != iodp.section.lstrip("0"):
            warn.append(f"$Section_ID {section!r} disagrees with section {iodp.section!r} of the sample name; "
                        "$Section_ID used")
    elif iodp is not None:
        section, where = iodp.section, "sample name"
    elif name_section is not None and not is_placeholder(name_section):
        section, where = name_section.strip(), "file name section token"
    elif head_section is not None or name_section is not None:
        # only a placeholder anywhere: kept as the section "0" with its top at 0 mm, as the
        # scanner's own software reads it, and said
        section, where = "0", "$Section_ID"
        warn.append("the section is only the placeholder '0' ($Section_ID and file name): positions taken as "
                    "depths below the core top; pass --section-top or --sections if that is wrong")
    else:
        section, where = "", "$Section_ID"
    out.update(section=section, section_field=where)
    return out


def _run_token(run: str | None) -> str:
    """``2``, ``Run2``, ``run 2`` -> ``Run2``; other names as written (spaces dropped)."""
    if not run:
        return ""
    text = run.strip()
    m = re.fullmatch(r"(?i)(?:run[\s_-]*)?([0-9]{1,9})", text)
    return f"Run{int(m.group(1))}" if m else text.replace(" ", "")


def _replicate(text: str, path, field: str, *, line=None) -> int:
    """A replicate number: whole, 0 or more, and small enough for the store's int32."""
    value = _to_number(text, path, field, line=line)
    if not value.is_integer() or not 0 <= value < 2 ** 31:
        raise InputError(path, f"replicate {text.strip()[:40]!r} is not a whole number in 0..2^31-1",
                         line=line, field=field)
    return int(value)


def _first(*values) -> float:
    for v in values:
        if v is not None:
            return float(v)
    return math.nan


def _name_fields(path: Path, fields: _Fields) -> dict:
    """Metadata from the file name, or from ``$SPEC_ID:`` when the name was changed."""
    for stem in (path.stem if path.suffix.lower() == ".spe" else path.name, fields.text("SPEC_ID") or ""):
        if stem.count("!") >= 10:
            return parse_bang_name(stem, path)
        parsed = parse_space_name(stem)
        if "section" in parsed:
            return parsed
    return {}


def _run_from_folder(path: Path) -> str:
    match = _RUN_FOLDER.search(path.parent.name)
    return f"Run{int(match.group(1))}" if match else ""
