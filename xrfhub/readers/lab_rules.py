"""Rules lab tables share: QC rows, a units row under the header, and units of concentrations.

Not a reader: ``lab_csv.table_from_cells`` (the step every lab reader ends with) and
``lab_csv.read`` call these.

* **QC rows.** Lab tables carry their quality-control measurements among the samples: blanks,
  standards and certified reference materials (``BLANK``, ``STD``, ``MESS-4``, ``NIST 2702``),
  duplicates marked so (``B14 dup``). Such a row is recognised by its identity cells (depth,
  core, sample id) and kept apart: it is not a sample of a core, and not a reason to refuse the
  table. A depth cell holding other text is still an error.
* **Units row.** Spreadsheet exports of benchtop XRF write the units as the first row under the
  header (``,,ppm,mass%,mass%``). A first row whose non-empty cells are all known units is that.
* **Units of concentrations.** An element or oxide column (``Ca``, ``Al2O3``) without a unit is
  never taken as wt% (an ICP ``Ca = 502.97`` is mg/kg or mg/L, not 502 %): its unit comes from
  the header, a units row, or the user (``--units ppm`` for all, ``--units Ca=ppm,Fe=wt%`` per
  column), or, for major oxides whose every sample sums to 20-105, from that total (%, said);
  otherwise the table is refused.
"""
from __future__ import annotations

import re

import numpy as np

from .. import properties as P
from ..errors import InputError
from ..lines import SYMBOLS

_SYMBOLS = frozenset(SYMBOLS)
#: An oxide: element symbols with counts, ending in O and an optional count (SiO2, Al2O3, CaO,
#: Fe2O3, Fe2O3T for total iron).
_OXIDE = re.compile(r"^(?:[A-Z][a-z]?\d*)+O\d*T?$")

#: Identity cells that mark a QC row (matched from the start, case-insensitive).
_QC_WORDS = re.compile(
    r"^(?:blank|blk|proc(?:edural)?\s*blank|method\s*blank|std|standard|ref|reference|crm|srm|qc|"
    r"check\s*std|calib(?:ration)?\s*std|dup|duplicate|repeat)(?:\b|[\s_\-]|\d|$)", re.IGNORECASE)
#: Certified reference materials common in sediment geochemistry: a name and a number
#: (MESS-4, PACS-3, BCSS-1, HISS-1, MAG-1, SCo-1, SDO-1, NIST 2702, SRM 1646a, BCR-2, GBW07309,
#: IAEA-433, JSd-2, JMS-1, LKSD-4, STSD-1, SGR-1, BHVO-2, AGV-2, GSD-9, GSS-1, OREAS 45).
_CRM = re.compile(r"^(?:mess|pacs|bcss|hiss|mag|sco|sdo|nist|srm|bcr|gbw|iaea|jsd|jms|lksd|stsd|sgr|bhvo|"
                  r"agv|gsd|gss|oreas|nies|ncs|till)[\s\-_]?\d", re.IGNORECASE)
#: A sample id marked as a duplicate of another (``B14 dup``, ``B14-DUP``, ``B14 (duplicate)``).
_DUP_MARK = re.compile(r"[\s_\-(](?:dup|duplicate|repeat)\)?$", re.IGNORECASE)


def qc_kind(cells: list[str]) -> str:
    """``"blank"``, ``"standard"``, ``"duplicate"`` or ``""`` for a row's identity cells."""
    for cell in cells:
        text = cell.strip()
        if not text:
            continue
        if _CRM.match(text):
            return "standard"
        match = _QC_WORDS.match(text)
        if match:
            word = text.lower()
            if "blank" in word or word.startswith("blk"):
                return "blank"
            if word.startswith(("dup", "repeat")):
                return "duplicate"
            return "standard"
        if _DUP_MARK.search(text):
            return "duplicate"
    return ""


def is_concentration(name: str) -> bool:
    """An element (``Ca``) or oxide (``Al2O3``) column: a concentration whose unit matters.
    Known properties (``CaCO3``) are not: lab tables write them in wt% by convention."""
    name = name.strip()
    # CaCO3, TOC and the other known properties are wt% by convention; a bare symbol never is
    return name in _SYMBOLS or (bool(_OXIDE.match(name)) and not P.is_known_property(name))


#: Major-element oxides: readings without a unit that report them and each sum to OXIDE_TOTAL
#: (as %: an analysis without its volatiles, CO2, water and organic matter) are in %. Read as
#: ppm, the same numbers would leave more than 99.98 % of every sample unreported.
MAJOR_OXIDES = frozenset({"SiO2", "Al2O3", "CaO", "MgO", "K2O", "Na2O", "Fe2O3", "TiO2"})
OXIDE_TOTAL = (20.0, 105.0)


def oxides_in_percent(names, sums) -> str:
    """Why readings without a unit (columns ``names``, each sample's total ``sums``) are in %, or
    "" when they are not shown to be: major oxides among them and every total in OXIDE_TOTAL."""
    oxides = [n for n in names if n in MAJOR_OXIDES]
    sums = np.asarray(sums, dtype=float)
    if not oxides or not sums.size or not np.all((sums >= OXIDE_TOTAL[0]) & (sums <= OXIDE_TOTAL[1])):
        return ""
    return (f"no unit written; the readings report major oxides ({', '.join(oxides[:4])}) and each sums to "
            f"{sums.min():.0f}-{sums.max():.0f}: read as % (as ppm, more than 99.98 % of every sample would be "
            f"elements not reported); to say otherwise, give the columns' units (--units {oxides[0]}=ppm,...)")


def units_row(header: list[str], first: list[str]) -> list[str] | None:
    """The cells of ``first`` as units when it is a units row, else None.

    A units row has at least two non-empty cells, every one a known unit (mass fraction or
    length), and no cell under a named column that is a number.
    """
    # "(wt%)" and "[ppm]": spreadsheets often bracket the units of their units row
    cells = [c.strip().removeprefix("(").removesuffix(")").removeprefix("[").removesuffix("]").strip()
             for c in first]
    filled = [c for c in cells if c]
    if len(filled) < 2 or not all(P.is_unit(c) for c in filled):
        return None
    return cells + [""] * (len(header) - len(cells))


def parse_units_option(text: str | dict | None, path) -> tuple[str, dict[str, str]]:
    """``--units``: ``"ppm"`` (every element/oxide column without a unit), ``"Ca=ppm,Fe=wt%"``
    (per column), or both (``"ppm,Fe=wt%"``). Returns (default, per column)."""
    if not text:
        return "", {}
    if isinstance(text, dict):
        return text.get("*", ""), {k: v for k, v in text.items() if k != "*"}
    default, per = "", {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        if "=" in part:
            name, unit = (s.strip() for s in part.split("=", 1))
            per[name] = unit
        elif default:
            raise InputError("--units", f"two default units ({default!r}, {part!r}); give one, and name=unit "
                                        "for the columns that differ")
        else:
            default = part
    for unit in [default, *per.values()]:
        if unit and P.unit_key(unit) not in P.VALUE_UNITS:
            P.value_factor(unit, path="--units", field=unit)  # raises, listing the known units
    return default, per


# ---------------------------------------------------------------------------- IODP LIMS reports
#: header names of IODP LIMS reports (normalised by ``properties.name_key``) -> their role; here,
#: not in ``lab_iodp``, because the generic CSV reader must recognise such a report to leave it
IODP_COLUMNS = {
    "exp": "exp", "expedition": "exp", "leg": "exp",
    "site": "site", "hole": "hole", "core": "core", "type": "type", "coretype": "type",
    "sect": "sect", "section": "sect", "aw": "aw", "archiveworking": "aw",
    "topoffsetonsection": "top_offset", "bottomoffsetonsection": "bottom_offset",
    "topoffset": "top_offset", "bottomoffset": "bottom_offset",
    "topdepthcsfa": "top_csfa", "bottomdepthcsfa": "bottom_csfa",
    "sample": "sample", "textid": "text_id", "sampletextid": "text_id",
}


def iodp_keys(fields) -> dict[str, int]:
    """Role -> column index of the IODP sample-name columns a header has."""
    out = {}
    for i, f in enumerate(fields):
        key = IODP_COLUMNS.get(P.name_key(f.name))
        if key and key not in out:
            out[key] = i
    return out


def is_iodp_lims(fields) -> bool:
    """A header naming Exp (or Leg), Site, Hole, Core, Sect and a top offset or CSF-A depth."""
    keys = iodp_keys(fields)
    return {"exp", "site", "hole", "core", "sect"} <= keys.keys() and bool({"top_offset", "top_csfa"} & keys.keys())
