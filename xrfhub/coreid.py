"""Matching core ids written differently by different sources.

PANGAEA names a core ``PS75/056-1``, the scanner folder ``PS75-056-1``, a spreadsheet
``ps75_56_1``. ``normalise`` reduces an id to a matching key; ``match_cores`` maps the core ids
of lab tables onto the cores of the store, in this order of precedence:

1. the user's mapping table (``CoreMap``): an explicit statement beats any rule;
2. an exact match (same string after trimming spaces);
3. a match of normalised keys, when exactly one store core has the lab id's key; two or more
   store cores with the same key are *ambiguous* and reported, never guessed.

Ids that match nothing are reported, not refused: a lab table may cover cores not scanned yet.

The key (``normalise``): Unicode NFKC, upper case, then the id is cut into tokens at every
character that is not a letter or digit (``/ _ - .`` space and the rest) **and** at every switch
between letters and digits; digit tokens lose their leading zeros; tokens are joined by ``-``.
So ``PS75/056-1``, ``PS75-056-1``, ``ps75_56_1`` and ``PS 75-56-1`` all give ``PS-75-56-1``, and
``GeoB 12345-1`` equals ``GEOB12345-1``. Leading zeros go because station and section numbers
are zero-padded by some tools and not by others (``056`` vs ``56``) and a padded and an unpadded
number never name two different cores in practice. Boundaries are kept (tokens are joined by a
separator, not glued), so ``PS75-56-1`` and ``PS7-556-1`` stay different keys.
"""
from __future__ import annotations

import csv
import io
import re as _re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError


def _tokens(core_id: str) -> list[str]:
    text = unicodedata.normalize("NFKC", str(core_id)).upper()
    tokens, current, kind = [], "", None
    for ch in text:
        this = "d" if ch.isdigit() else "a" if ch.isalpha() else None
        if this is None or (kind is not None and this != kind):
            if current:
                tokens.append(current)
            current, kind = "", None
        if this is not None:
            current += ch
            kind = this
    if current:
        tokens.append(current)
    return [_without_leading_zeros(t) if t.isdigit() else t for t in tokens]


def _without_leading_zeros(digits: str) -> str:
    """``056`` -> ``56``; digits int() refuses (rare Unicode digits, thousands of them) stay as written."""
    try:
        return str(int(digits))
    except ValueError:
        return digits


def normalise(core_id: str) -> str:
    """The matching key of a core id (see the module docstring): ``PS75/056-1`` -> ``PS-75-56-1``."""
    return "-".join(_tokens(core_id))


def named_in_path(name: str, cores) -> dict[str, str]:
    """The cores of ``cores`` that a file's path names, each with the path part naming it.

    A part names a core when the core's key tokens (see ``normalise``) appear in a row among the
    part's tokens: ``itraxBook_CD166_19_(2020)`` and ``CD166_19_benchtop.csv`` both name
    ``CD166_19``. Ids of fewer than two tokens (``A``, ``12``) name nothing: they would match
    any number in any name. A core found inside another one found (``CD166`` in ``CD166_19``) is
    that other one's.
    """
    parts = [_tokens(part) for part in str(name).replace("\\", "/").split("/") if part]
    found: dict[str, tuple[list[str], str]] = {}
    for core in cores:
        key = _tokens(core)
        if len(key) < 2:
            continue
        for raw, tokens in zip((p for p in str(name).replace("\\", "/").split("/") if p), parts):
            if any(tokens[i:i + len(key)] == key for i in range(len(tokens) - len(key) + 1)):
                found[core] = (key, raw)
                break
    inside = lambda a, b: len(a) < len(b) and any(b[i:i + len(a)] == a for i in range(len(b) - len(a) + 1))  # noqa: E731
    return {core: raw for core, (key, raw) in found.items()
            if not any(inside(key, other) for other, _ in found.values())}


# --------------------------------------------------------------------------- user's mapping


_FROM = ("lab_core", "from", "lab", "lab_id", "source")
_TO = ("scan_core", "to", "scan", "scan_id", "store_core", "core", "target")


@dataclass
class CoreMap:
    """A user's table of lab core id -> store (scan) core id.

    Lookups try the lab id as written, then its normalised key, so one line ``PS75/056-1,
    PS75-056-1_XRF`` also covers ``PS75-056-1`` in another lab file.
    """

    pairs: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        self._by_key = {}
        for lab, scan in self.pairs.items():
            self._by_key.setdefault(normalise(lab), scan)

    def get(self, lab_id: str) -> str | None:
        lab_id = str(lab_id).strip()
        if lab_id in self.pairs:
            return self.pairs[lab_id]
        return self._by_key.get(normalise(lab_id))

    def __len__(self) -> int:
        return len(self.pairs)

    @classmethod
    def from_csv(cls, path) -> "CoreMap":
        """Read a two-column table with header ``lab_core,scan_core`` (or ``from,to``).

        Comma, semicolon or tab separated; lines starting with ``#`` are comments. A lab id
        mapped to two different store cores is an error (which one would be meant?).
        """
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            raise InputError(path, "core map file not found") from None
        except OSError as exc:
            raise InputError(path, f"cannot read core map: {exc.strerror or exc}") from None
        if b"\x00" in raw:
            raise InputError(path, "binary content: expected a CSV core map (lab_core,scan_core)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        numbered = [(n, line) for n, line in enumerate(text.split("\n"), start=1)
                    if line.strip() and not line.lstrip().startswith("#")]
        if not numbered:
            raise InputError(path, "core map is empty: expected a header lab_core,scan_core and rows")
        first = numbered[0][1]
        sep = max(("\t", ";", ","), key=first.count)
        rows = [(n, [c.strip() for c in next(csv.reader(io.StringIO(line), delimiter=sep))])
                for n, line in numbered]
        line0, header = rows[0]
        names = [h.lower().replace(" ", "_") for h in header]
        src = next((names.index(n) for n in _FROM if n in names), None)
        dst = next((names.index(n) for n in _TO if n in names and names.index(n) != src), None)
        if src is None or dst is None:
            raise InputError(path, f"core map header {header} must name two columns "
                             "'lab_core,scan_core' (or 'from,to')", line=line0)
        pairs: dict[str, str] = {}
        for n, cells in rows[1:]:
            if len(cells) <= max(src, dst) or not cells[src] or not cells[dst]:
                raise InputError(path, "core map row needs both a lab core and a scan core",
                                 line=n)
            lab, scan = cells[src], cells[dst]
            if pairs.get(lab, scan) != scan:
                raise InputError(path, f"lab core {lab!r} is mapped twice, to {pairs[lab]!r} and "
                                 f"{scan!r}", line=n)
            pairs[lab] = scan
        if not pairs:
            raise InputError(path, "core map has a header but no rows")
        return cls(pairs, source=str(path))


# --------------------------------------------------------------------------- matching


@dataclass
class MatchResult:
    """How each lab core id maps onto the store's cores.

    ``cores``: lab id -> store core id, or None. ``how``: lab id -> ``"map"``, ``"exact"``,
    ``"normalised"``, ``"ambiguous"``, ``"map-target-missing"`` or ``"unmatched"``.
    ``unmatched``: lab ids with no store core (ambiguous ones included), in input order.
    ``ambiguous``: lab id -> the store cores that share its key.
    """

    cores: dict[str, str | None]
    how: dict[str, str]
    unmatched: list[str]
    ambiguous: dict[str, list[str]] = field(default_factory=dict)

    @property
    def matched(self) -> dict[str, str]:
        return {lab: core for lab, core in self.cores.items() if core is not None}

    def report(self) -> str:
        """Lines for a user: what matched how, and what did not match and why."""
        lines = []
        for lab, core in self.cores.items():
            how = self.how[lab]
            if core is not None:
                lines.append(f"{lab} -> {core} ({how})")
            elif how == "ambiguous":
                lines.append(f"{lab}: ambiguous, matches {', '.join(self.ambiguous[lab])}; "
                             "add it to a core map")
            elif how == "map-target-missing":
                lines.append(f"{lab}: the core map names a core that is not in the store")
            else:
                lines.append(f"{lab}: no matching core in the store")
        return "\n".join(lines)


def match_cores(lab_ids, scan_ids, core_map: CoreMap | None = None) -> MatchResult:
    """Map each lab core id onto one of ``scan_ids`` (map > exact > normalised; see module)."""
    scan_ids = list(dict.fromkeys(str(s) for s in scan_ids))
    exact = {s.strip(): s for s in scan_ids}
    by_key: dict[str, list[str]] = {}
    for s in scan_ids:
        by_key.setdefault(normalise(s), []).append(s)

    def resolve(name: str):
        """(store core, how) by exact then normalised match, or (None, reason)."""
        if name.strip() in exact:
            return exact[name.strip()], "exact"
        candidates = by_key.get(normalise(name), [])
        if len(candidates) == 1:
            return candidates[0], "normalised"
        return None, "ambiguous" if candidates else "unmatched"

    cores: dict[str, str | None] = {}
    how: dict[str, str] = {}
    ambiguous: dict[str, list[str]] = {}
    for lab in dict.fromkeys(str(x) for x in lab_ids):
        target = core_map.get(lab) if core_map is not None else None
        if target is not None:
            core, reason = resolve(target)
            cores[lab], how[lab] = core, ("map" if core is not None else "map-target-missing")
            if reason == "ambiguous":
                how[lab] = "ambiguous"
                ambiguous[lab] = by_key[normalise(target)]
            continue
        core, reason = resolve(lab)
        cores[lab], how[lab] = core, reason
        if reason == "ambiguous":
            ambiguous[lab] = by_key[normalise(lab)]
    unmatched = [lab for lab, core in cores.items() if core is None]
    return MatchResult(cores, how, unmatched, ambiguous)


# --------------------------------------------------------------------------- IODP sample names

#: Values scanners write where a header field was never filled in: never a core or section id.
PLACEHOLDERS = frozenset({"", "0", "-", "--", "na", "n/a", "none", "null", "unknown", "?"})


def is_placeholder(value) -> bool:
    """True for ``0``, empty, ``-`` and the like: a field left at its default, not an identity.

    Only a lone ``0``: a padded token such as ``0000`` is a real section top (0 cm) in the
    Avaatech naming scheme."""
    text = str(value if value is not None else "").strip().lower()
    return text in PLACEHOLDERS


#: IODP/ODP/DSDP sample names (LIMS "Sample ID" text): expedition (``397``, ``U1587`` style
#: leg letters allowed), site (``U1587``, ``C0002``, ``1098``), hole letter, core number and
#: core type (H, X, R, F, ...), section (a number or ``CC``), optionally the half (``A``
#: archive, ``W`` working, ``WR``, ``PAL`` ...) and, after ``_``, the LIMS text id
#: (``SHLF11796791``). E.g. ``397-U1587A-2H-1-A_SHLF11796791``.
_IODP_SAMPLE = _re.compile(
    r"^(?P<exp>\d{1,4}[A-Z]?)-(?P<site>[A-Z]{0,2}\d{3,5})(?P<hole>[A-Z])-(?P<core>\d{1,4})(?P<type>[A-Z])"
    r"-(?P<section>\d{1,3}|CC)(?:-(?P<half>[A-Z]{1,4}))?(?:[- ](?P<offset>\d+(?:\.\d+)?)(?:/\d+(?:\.\d+)?)?)?"
    r"(?:[_ ](?P<text_id>[A-Z]{2,6}\d{1,12}))?$",
    _re.IGNORECASE)


@dataclass(frozen=True)
class IodpSample:
    """The parts of an IODP sample name; ``core`` is ``expedition-site+hole-core+type``."""

    expedition: str
    site: str
    hole: str
    core_number: str
    core_type: str
    section: str
    half: str = ""
    text_id: str = ""
    #: a sample's top offset in its section, in cm as IODP writes it (``...-5-W-60`` or ``60/62``); "" if none
    offset_cm: str = ""

    @property
    def core(self) -> str:
        return f"{self.expedition}-{self.site}{self.hole}-{self.core_number}{self.core_type}"


def parse_iodp_sample(text) -> IodpSample | None:
    """Split an IODP sample name (``397-U1587A-2H-1-A_SHLF11796791``) into its parts, or None.

    Only the whole text is accepted (no search inside longer strings): a name that merely
    contains something IODP-like is not silently re-read as one.
    """
    m = _IODP_SAMPLE.match(str(text).strip())
    if m is None:
        return None
    g = {k: (v or "") for k, v in m.groupdict().items()}
    return IodpSample(g["exp"].upper(), g["site"].upper(), g["hole"].upper(), str(int(g["core"])),
                      g["type"].upper(), g["section"].upper() if g["section"].upper() == "CC"
                      else str(int(g["section"])), g["half"].upper(), g["text_id"].upper(), g["offset"])
