"""Amptek MCA spectra (``.mca``, written by DppMCA / ADMCA / PMCA): one spectrum per file.

Layout (text, one item per line)::

    <<PMCA SPECTRUM>>
    TAG - live_data
    LIVE_TIME - 59.872
    REAL_TIME - 60.000
    START_TIME - 06/15/2016 10:49:33
    SERIAL_NUMBER - 12345
    <<CALIBRATION>>          (optional)
    LABEL - keV
    150 3.69
    1300 25.27
    <<ROI>>                  (optional)
    <<DATA>>
    0
    12
    ...                      (one count per channel)
    <<END>>
    <<DP5 CONFIGURATION>>    (optional: KEY=VALUE; lines, MCAC = channel count)
    <<DP5 CONFIGURATION END>>
    <<DPP STATUS>>           (optional: "Key: value" lines)
    <<DPP STATUS END>>

The calibration block lists ``channel energy`` pairs in the unit ``LABEL`` names (``keV``,
``eV``; ``Channel``, which some writers put there, is read as keV); a least-squares line through
them is the energy scale (source ``"header:<<CALIBRATION>>"``). Core and depth come from the
caller or the file name (see :mod:`xrfhub.readers.mca`).
"""
from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..records import Calibration, Spectrum
from . import mca
from .itrax_meta import decode, split_lines

FORMAT = "amptek-mca"
KIND = "spectra"
DESCRIPTION = "Amptek MCA spectrum (.mca, <<PMCA SPECTRUM>> ... <<DATA>> ... <<END>>)"

_OPENING = b"<<PMCA SPECTRUM>>"
_BLOCK = re.compile(r"^<<(.+)>>$")
_CALIBRATION_SOURCE = "header:<<CALIBRATION>>"
_LABEL_UNITS = {**mca.ENERGY_UNITS, "channel": 1.0}


def sniff(head: bytes, name: str = "") -> bool:
    """Amptek files open with ``<<PMCA SPECTRUM>>``."""
    return head.lstrip(b"\xef\xbb\xbf").lstrip().upper().startswith(_OPENING)


def parse_blocks(lines: list[str], path) -> dict[str, tuple[int, list[tuple[int, str]]]]:
    """``block name -> (line of its opening tag, [(line, text), ...])``; ``<<END>>`` closes the
    data block and ``<<NAME END>>`` closes ``NAME``."""
    blocks: dict[str, tuple[int, list[tuple[int, str]]]] = {}
    current = None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        match = _BLOCK.match(text)
        if match:
            tag = match.group(1).strip().upper()
            if tag == "END" or tag.endswith(" END"):
                blocks.setdefault("END" if tag == "END" else tag, (number, []))
                current = None
            else:
                if tag in blocks:
                    raise InputError(path, f"block <<{tag}>> appears twice", line=number)
                blocks[tag] = (number, [])
                current = tag
        elif current is not None:
            if text:
                blocks[current][1].append((number, text))
        elif text:
            raise InputError(path, f"text outside a <<...>> block: {text[:40]!r}", line=number)
    return blocks


_TAG = re.compile(r"^([^-]+?)\s*-\s*(.*)$")  # "LIVE_TIME - 59.872", "DESCRIPTION -"
_STATUS = re.compile(r"^([^:]+?)\s*:\s*(.*)$")  # "Serial Number: 12345"


def _tags(entries, path, pattern: re.Pattern, expected: str) -> dict[str, tuple[str, int]]:
    out = {}
    for number, text in entries:
        match = pattern.match(text)
        if not match:
            raise InputError(path, f"expected '{expected}', found {text[:40]!r}", line=number)
        out[match.group(1).strip().upper()] = (match.group(2).strip(), number)
    return out


def _number(tags, key: str, path) -> float:
    if key not in tags or not tags[key][0]:
        return math.nan
    value, line = tags[key]
    try:
        return float(value)
    except ValueError:
        raise InputError(path, f"expected a number, found {value!r}", line=line, field=key) from None


def _counts(blocks, path) -> np.ndarray:
    if "DATA" not in blocks:
        raise InputError(path, "no <<DATA>> block: expected an Amptek .mca file with counts")
    start, entries = blocks["DATA"]
    if "END" not in blocks or blocks["END"][0] < start:
        raise InputError(path, "the <<DATA>> block is not closed by <<END>> (truncated file?)",
                         line=(entries[-1][0] if entries else start), field="<<DATA>>")
    if not entries:
        raise InputError(path, "the <<DATA>> block is empty", line=start, field="<<DATA>>")
    numbers = np.array([n for n, _ in entries])
    try:
        values = np.array([t for _, t in entries], dtype=np.float64)
    except ValueError:
        bad = next((n, t) for n, t in entries if not mca.is_number(t))
        raise InputError(path, f"expected one integer count per line, found {bad[1][:20]!r}", line=bad[0],
                         field="<<DATA>>") from None
    return mca.whole_counts(values, path, numbers, "<<DATA>>")


def _calibration(blocks, path) -> Calibration | None:
    if "CALIBRATION" not in blocks:
        return None
    start, entries = blocks["CALIBRATION"]
    unit, points = "kev", []
    for number, text in entries:
        if text.upper().startswith("LABEL"):
            unit = text.partition("-")[2].strip().lower() or "kev"
            if unit not in _LABEL_UNITS:
                raise InputError(path, f"unknown calibration unit {unit!r} (known: keV, eV, MeV, Channel)",
                                 line=number, field="LABEL")
            continue
        cells = text.split()
        if len(cells) != 2 or not all(mca.is_number(c) and math.isfinite(float(c)) for c in cells):
            raise InputError(path, f"expected 'channel energy', found {text[:40]!r}", line=number,
                             field="<<CALIBRATION>>")
        points.append((float(cells[0]), float(cells[1]) * _LABEL_UNITS[unit]))
    if not points:
        raise InputError(path, "the <<CALIBRATION>> block has no 'channel energy' pairs", line=start,
                         field="<<CALIBRATION>>")
    channels, energies = np.array(points).T
    if len(set(channels)) != len(channels) or (len(channels) == 1 and channels[0] == 0):
        raise InputError(path, "calibration channels must be distinct (and not only channel 0)", line=start,
                         field="<<CALIBRATION>>")
    return mca.linear_fit(channels, energies, _CALIBRATION_SOURCE)


def _date(tags, warnings) -> str:
    text = tags.get("START_TIME", ("", 0))[0]
    if not text:
        return ""
    for fmt in ("%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p"):
        try:
            return datetime.strptime(text, fmt).isoformat()
        except ValueError:
            continue
    warnings.append(f"START_TIME {text!r} not understood; no date recorded")
    return ""


def read(path, *, source: str | None = None, raw: bytes | None = None, calibration: Calibration | None = None,
         section_top_mm_override: float | None = None, core: str | None = None, depth_mm=None,
         **_options) -> list[Spectrum]:
    """Read one Amptek ``.mca`` file into a one-element list of :class:`Spectrum`.

    ``core`` and ``depth_mm`` (core depth in mm) place it in a core unless the file name does
    (see :mod:`xrfhub.readers.mca`); ``calibration`` overrides the file's.
    """
    path = Path(path)
    if raw is None:
        raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise InputError(path, "binary content: expected an Amptek .mca text file")
    lines = split_lines(decode(raw))
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or lines[first].strip().upper() != "<<PMCA SPECTRUM>>":
        raise InputError(path, "expected '<<PMCA SPECTRUM>>' as the first line of an Amptek .mca file",
                         line=(first or 0) + 1)
    blocks = parse_blocks(lines, path)
    counts = _counts(blocks, path)
    config = {}
    for name in ("DP5 CONFIGURATION", "DPP CONFIGURATION"):
        if name in blocks:
            for number, text in blocks[name][1]:
                key, sep, rest = text.partition("=")
                if sep:
                    config[key.strip().upper()] = (rest.split(";")[0].strip(), number)
    if "MCAC" in config and re.fullmatch(r"[0-9]{1,18}", config["MCAC"][0]) and int(config["MCAC"][0]) != counts.size:
        raise InputError(path, f"found {counts.size} counts, the configuration says MCAC={config['MCAC'][0]} "
                               "(truncated file?)", line=config["MCAC"][1], field="MCAC")
    tags = _tags(blocks["PMCA SPECTRUM"][1], path, _TAG, "TAG - value")
    status = _tags([(n, t) for n, t in blocks.get("DPP STATUS", (0, []))[1] if ":" in t], path, _STATUS,
                   "Key: value")

    warnings: list[str] = []
    cal = mca.choose_calibration(calibration, _calibration(blocks, path), warnings)
    place = mca.placements(path, 1, core=core, depth_mm=depth_mm,
                           section_top_mm_override=section_top_mm_override)[0]
    named = mca.name_settings(path)
    device = status.get("DEVICE TYPE", ("", 0))[0]
    serial = status.get("SERIAL NUMBER", tags.get("SERIAL_NUMBER", ("", 0)))[0]
    detector = " ".join(x for x in ("Amptek", device, f"#{serial}" if serial else "") if x)
    data_lines = {n for n, _t in blocks["DATA"][1]}
    header = "\n".join(line.strip() for n, line in enumerate(lines, start=1) if n not in data_lines and line.strip())

    return [Spectrum(
        counts=counts, core=place["core"], section=place["section"], section_top_mm=place["section_top_mm"],
        position_mm=place["position_mm"], depth_mm=place["depth_mm"],
        run=named.get("run", ""), replicate=int(named.get("replicate", 0)),
        tube_kv=named.get("tube_kv", math.nan), tube_ma=named.get("tube_ma", math.nan),
        live_time_s=_number(tags, "LIVE_TIME", path), real_time_s=_number(tags, "REAL_TIME", path),
        date=_date(tags, warnings), calibration=cal, instrument="amptek-mca", detector=detector,
        source=source or path.name, header=header,
        warnings=tuple(place["warnings"]) + tuple(warnings),
    )]
