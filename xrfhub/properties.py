"""Lab-table column headers: their grammar, canonical property names and units.

Lab tables name the same measurement in many ways (``CaCO3 [%]``, ``CaCO3_wt%``, ``Calcium
carbonate (wt%)``, ``carbonate``) and write units three ways: ``name [unit]`` (PANGAEA),
``name (unit)`` (IODP LIMS) and a ``name_unit`` suffix (``top_cm``, ``depth_m``). Everything
that knows these spellings lives here, in one place, so that every lab reader agrees on what a
column means:

* ``split_header`` separates a header into name, unit and trailing comment;
* ``column_role`` says whether a column is the core id, a sample id, a depth (mid, top or
  bottom), an ancillary column we do not store (age, latitude, comments, ...) or a property;
* ``canonical_property`` merges synonyms (``Corg`` -> ``TOC``) and keeps unknown names,
  sanitised, instead of dropping them;
* ``value_factor`` and ``depth_factor`` convert to wt% and mm, and refuse a unit they do not
  know with an ``InputError`` that lists the known ones: a silent wrong factor of 1e4 is worse
  than a refusal.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import InputError

# --------------------------------------------------------------------------- units

#: Mass-fraction units -> factor that converts a value to wt%. Keys are ``unit_key`` spellings.
VALUE_UNITS: dict[str, float] = {
    "%": 1.0, "wt%": 1.0, "weight%": 1.0, "mass%": 1.0, "pct": 1.0, "percent": 1.0,
    "wtpct": 1.0, "%wt": 1.0, "%w/w": 1.0, "w/w%": 1.0, "%dw": 1.0, "%drywt": 1.0,
    "%dryweight": 1.0, "g/100g": 1.0,
    "g/g": 100.0, "kg/kg": 100.0,
    "g/kg": 0.1, "mg/g": 0.1,
    "ppm": 1e-4, "mg/kg": 1e-4, "ug/g": 1e-4,
    "ppb": 1e-7, "ug/kg": 1e-7, "ng/g": 1e-7,
}

#: Length units of depth columns -> factor that converts to mm.
DEPTH_UNITS: dict[str, float] = {
    "m": 1000.0, "mbsf": 1000.0, "cm": 10.0, "cmbsf": 10.0, "mm": 1.0,
}


def unit_key(unit: str) -> str:
    """A unit's spelling reduced for lookup: lower case, no spaces, dots or hyphens, mu as u.

    ``wt.%``, ``wt %``, ``Wt-%`` all become ``wt%``; ``µg/g`` (micro sign or Greek mu) ``ug/g``.
    """
    text = unicodedata.normalize("NFKC", unit).strip().lower()
    text = text.replace("\u03bc", "u").replace("\u00b5", "u")
    text = text.replace("per cent", "percent")
    return re.sub(r"[\s.\-_]", "", text)


def _known(table: dict[str, float]) -> str:
    return ", ".join(sorted(table, key=lambda k: (table[k], k)))


def value_factor(unit: str, *, path, field: str) -> float:
    """Factor converting values written in ``unit`` to wt%; ``InputError`` if unknown.

    An empty unit means the header gave none; the caller decides whether wt% may be assumed.
    """
    factor = VALUE_UNITS.get(unit_key(unit))
    if factor is None:
        raise InputError(path, f"unknown unit {unit!r} for a lab value; known mass-fraction units: "
                         f"{_known(VALUE_UNITS)} (or leave the column out with ignore_columns)",
                         field=field)
    return factor


def depth_factor(unit: str, *, path, field: str) -> float:
    """Factor converting depths written in ``unit`` to mm; ``InputError`` if unknown."""
    factor = DEPTH_UNITS.get(unit_key(unit))
    if factor is None:
        raise InputError(path, f"unknown depth unit {unit!r}; known: {_known(DEPTH_UNITS)}",
                         field=field)
    return factor


def is_unit(text: str) -> bool:
    """True when ``text`` is a unit this module knows (value or depth)."""
    key = unit_key(text)
    return key in VALUE_UNITS or key in DEPTH_UNITS


# --------------------------------------------------------------------------- header grammar


@dataclass(frozen=True)
class HeaderField:
    """One column header split into its parts.

    ``text`` is the header as written, ``name`` the part before the unit, ``unit`` the unit as
    written ("" when none) and ``comment`` a parenthesised remark after a bracketed unit (PANGAEA
    writes ``TOC [%] (LECO)`` when one parameter appears with several methods).
    """

    text: str
    name: str
    unit: str = ""
    comment: str = ""


_BRACKET = re.compile(r"^(?P<name>.*?)\s*\[(?P<unit>[^\[\]]*)\]\s*(?:\((?P<comment>.*)\))?\s*$")
_PAREN = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>[^()]*)\)\s*$")


def split_header(text: str) -> HeaderField:
    """Parse ``name [unit] (comment)``, ``name (unit)`` or ``name_unit``.

    The suffix form only counts when the suffix is a known unit (``top_cm``, ``CaCO3_wt%``,
    ``TOC_wt_pct``), so that ``core_id`` stays a name; after a depth name any alphabetic suffix
    counts, so that ``depth_ft`` is refused as an unknown depth unit rather than taken for a
    property. Bracketed and parenthesised units are
    taken as written, known or not: whether an unknown unit is an error depends on the column.
    """
    text = text.strip().strip('"').strip()
    match = _BRACKET.match(text)
    if match and match.group("name"):
        return HeaderField(text, match.group("name").strip(), match.group("unit").strip(),
                           (match.group("comment") or "").strip())
    match = _PAREN.match(text)
    if match and match.group("name"):
        return HeaderField(text, match.group("name").strip(), match.group("unit").strip())
    # suffix form: try the longest suffix first, so TOC_wt_pct -> (TOC, wt_pct)
    for i, char in enumerate(text):
        if char == "_" and 0 < i < len(text) - 1 and (
                is_unit(text[i + 1:]) or _is_depth_name(text[:i]) and _looks_like_unit(text[i + 1:])):
            return HeaderField(text, text[:i].strip(), text[i + 1:])
    return HeaderField(text, text)


def name_key(name: str) -> str:
    """A name reduced for synonym lookup: lower case, letters and digits only."""
    text = unicodedata.normalize("NFKC", name).lower()
    return "".join(ch for ch in text if ch.isalnum())


# --------------------------------------------------------------------------- properties

#: Canonical property -> the names (any case, spacing or punctuation) that mean it. PANGAEA short
#: and long names ("Carbon, organic, total"), IODP LIMS names and common spreadsheet spellings.
PROPERTY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "CaCO3": ("CaCO3", "carbonate", "calcium carbonate", "carbonate content", "CaCO3 content",
              "CaCO3 calc", "carb", "calcite equivalent"),
    "TOC": ("TOC", "Corg", "C org", "C_org", "OC", "organic carbon", "total organic carbon",
            "carbon, organic", "carbon, organic, total", "C organic", "org C", "TOC content"),
    "TC": ("TC", "C", "Ctot", "C tot", "C total", "total carbon", "carbon, total", "carbon"),
    "TIC": ("TIC", "IC", "Cinorg", "C inorg", "inorganic carbon", "total inorganic carbon",
            "carbon, inorganic", "carbon, inorganic, total", "C carb", "carbonate carbon"),
    "TN": ("TN", "N", "Ntot", "N tot", "N total", "total nitrogen", "nitrogen, total", "nitrogen"),
    "TS": ("TS", "S", "Stot", "S tot", "S total", "total sulfur", "total sulphur",
           "sulfur, total", "sulphur, total", "sulfur", "sulphur"),
    "opal": ("opal", "bSiO2", "bio SiO2", "BSi", "bSi", "SiO2 bio", "SiO2 biogenic", "biogenic silica",
             "biogenic opal", "opal, biogenic silica", "biogenic silica, opal"),
}

_PROPERTY_BY_KEY: dict[str, str] = {}
for _canon, _names in PROPERTY_SYNONYMS.items():
    for _name in _names:
        _PROPERTY_BY_KEY[name_key(_name)] = _canon
del _canon, _names, _name


def sanitise(name: str) -> str:
    """A header name made safe as a column/variable name: word characters joined by ``_``."""
    text = unicodedata.normalize("NFKC", name).strip()
    text = text.replace("%", "pct")
    return re.sub(r"[^\w]+", "_", text).strip("_")


def canonical_property(name: str) -> str:
    """The canonical name of a property (``Corg`` -> ``TOC``), else the name sanitised.

    Unknown properties are kept (``Water content`` -> ``Water_content``): dropping a column a
    user measured, silently, is never right.
    """
    return _PROPERTY_BY_KEY.get(name_key(name)) or sanitise(name)


def is_known_property(name: str) -> bool:
    return name_key(name) in _PROPERTY_BY_KEY


# --------------------------------------------------------------------------- column roles

CORE, SAMPLE_ID, MID, TOP, BOTTOM, ANCILLARY, PROPERTY = (
    "core", "sample_id", "mid", "top", "bottom", "ancillary", "property")

#: Role -> the names (reduced by ``name_key``) that take it. ``ancillary`` columns are read
#: past (and listed in the table's metadata): they are facts about a sample, not lab values in
#: wt%, and their units (ka BP, degrees) are not ours to convert.
ROLE_NAMES: dict[str, frozenset[str]] = {
    CORE: frozenset({"core", "coreid", "corename", "corelabel", "corecode", "event",
                     "eventlabel", "sitehole", "station", "stationid"}),
    SAMPLE_ID: frozenset({"sample", "sampleid", "samplelabel", "samplename", "samplecode",
                          "samplecodelabel", "label", "labid", "labcode", "sampleno",
                          "samplenumber"}),
    MID: frozenset({"depth", "mid", "middepth", "depthmid", "depthmiddle", "depthsed",
                    "depthsediment", "depthsedimentrock", "depthcore", "coredepth", "mbsf"}),
    TOP: frozenset({"top", "topdepth", "depthtop", "from", "upper", "depthfrom", "depthupper",
                    "topinterval", "intervaltop"}),
    BOTTOM: frozenset({"bottom", "bot", "bottomdepth", "botdepth", "depthbot", "depthbottom", "to",
                       "lower", "depthto", "depthlower", "bottominterval", "intervalbottom"}),
    ANCILLARY: frozenset({"age", "agemodel", "calage", "latitude", "longitude", "lat", "lon",
                          "long", "datetime", "date", "time", "elevation", "comment", "comments",
                          "remark", "remarks", "note", "notes", "lithology", "description",
                          "depthcomp", "depthcomposite", "compositedepth", "mcd", "section",
                          "sect", "analyst", "method", "instrument", "replicate", "campaign",
                          "cruise", "expedition", "leg", "site", "hole", "waterdepth",
                          "timestamp", "timestamputc", "samplecomment", "sampletype",
                          "lithologicunit", "facies", "color", "colour"}),
}


def _is_depth_name(name: str) -> bool:
    key = name_key(name)
    return key in ROLE_NAMES[MID] or key in ROLE_NAMES[TOP] or key in ROLE_NAMES[BOTTOM]


def _looks_like_unit(text: str) -> bool:
    """A short alphabetic suffix that is not itself a depth word (``ft``, not ``top``)."""
    return text.isalpha() and len(text) <= 4 and not _is_depth_name(text)


def column_role(field: HeaderField) -> str:
    """What a column is: one of ``core``, ``sample_id``, ``mid``, ``top``, ``bottom``,
    ``ancillary`` or ``property``."""
    key = name_key(field.name)
    for role, names in ROLE_NAMES.items():
        if key in names:
            return role
    return _depth_like(key) or PROPERTY


#: Words that make a name containing "depth" a depth of another kind (not of the sample in the core).
_OTHER_DEPTHS = ("water", "comp", "mcd", "ccsf", "penetration", "sonar", "bathy", "seafloor")


def _depth_like(key: str) -> str:
    """Role of a name that contains ``depth`` but is in no list (``sample depth``, ``depth in
    core``, ``Top depth CSF-A``): top, bottom or mid; "" for other names and other depths."""
    if "depth" not in key or any(word in key for word in _OTHER_DEPTHS):
        return ""
    if "top" in key or "upper" in key:
        return TOP
    if "bot" in key or "lower" in key:
        return BOTTOM
    return MID
