"""ITRAX side files: Q-Spec ``settings.dfl`` and the scan's ``document.txt``, and finding them.

Neither file holds spectra or line intensities, so neither is a reader (the store has no kind
for scan metadata alone); the ``.spe`` and ``Results.txt`` readers call these helpers to fill
what their own file lacks: the energy calibration (the ``.spe`` header carries a placeholder)
and the tube settings, exposure time, step and section name of the scan.

``settings.dfl`` is INI-like: ``[section]`` lines and ``key = value`` lines whose keys end in the
tube index (``keV/channel 2``, ``energy offset 2``); ``[Fit cluster] tube selector`` says which
index is in use. It is parsed by hand because some lines start with a space (`` peak/conc =``),
which ``configparser`` would take for a continuation.

``document.txt`` is Latin-1 (a degree sign 0xB0), tab separated, and irregular: a row of labels
over a row of values (``Base path:``/``Sample name:``/``Section name``/``User ID``, then
``Year``/``Month``/``Day``/``Time``), then ``label, value, unit`` rows, some holding two pairs
(``Start coordinate, 31.5, Stop coordinate, 1314.1``) and one holding two values
(``XRF voltage and current, 30, , 30``: kV then mA). The first ``Voltage``/``Current`` rows are the
radiograph tube, not the XRF tube; the first ``Step size`` is the scan step, the second the optical
line camera's.
"""
from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..records import Calibration

#: Folder the ITRAX writes its ``Lnnnnnn.spe`` files into, inside the section folder.
XRF_DATA_FOLDER = "xrf data"

_SECTION_SUFFIX = re.compile(r"^(?P<core>.+?)[_\- ]+(?P<section>(?:s|sec|sect|section)[_\-]?\d+[a-z]?)$",
                             re.IGNORECASE)
#: A replicate scan's folder ends in ``_REP<n>`` (``CD166_19_S1_REP1``: replicate 1 of S1).
_REPLICATE_SUFFIX = re.compile(r"^(?P<name>.+?)[_\- ]+(?:rep|replicate)[_\- ]?(?P<rep>\d+)$", re.IGNORECASE)
_LENGTH_UNITS = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "microns": 1e-3, "micron": 1e-3, "um": 1e-3, "µm": 1e-3}


def decode(raw: bytes) -> str:
    """UTF-8 when it is, else Latin-1 (what the ITRAX software writes)."""
    try:
        return raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_lines(text: str) -> list[str]:
    """Lines ended by CRLF, LF or a bare CR (ITRAX ``.spe`` headers end records with a bare CR)."""
    return re.split(r"\r\n|\r|\n", text)


def number(text: str) -> float | None:
    """A float, or None when the cell is not one (decimal commas accepted)."""
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return None


# --------------------------------------------------------------------------- section names


def split_section_name(name: str, core: str | None = None) -> tuple[str, str]:
    """Core id and section token from an ITRAX section name.

    ``CD166_19_S1`` -> (``CD166_19``, ``S1``): a trailing ``S<n>``, ``Sec<n>`` or ``Section<n>``
    token is the section. With ``core`` given, a name starting with it leaves the rest as the
    section (``core="WV17-2"``, ``WV17-2-D1`` -> ``D1``). A name with no recognisable section
    token is the core id itself, with no section; bare digits are not taken as a section,
    because ``CD166_19`` is a core, not section 19 of ``CD166``.
    """
    name = name.strip()
    if core:
        core = core.strip()
        if name.lower().startswith(core.lower()) and len(name) > len(core):
            return core, name[len(core):].strip("_- ")
        match = _SECTION_SUFFIX.match(name)
        return core, (match.group("section") if match else ("" if name.lower() == core.lower() else name))
    match = _SECTION_SUFFIX.match(name)
    if match:
        return match.group("core"), match.group("section")
    return name, ""


def split_replicate(name: str) -> tuple[str, int]:
    """The section name without a replicate suffix, and the replicate number (0 when none).

    ``CD166_19_S1_REP1`` -> (``CD166_19_S1``, 1): the ITRAX operator's name for a second scan of
    section S1. The first scan of a section carries no suffix and is replicate 0.
    """
    match = _REPLICATE_SUFFIX.match(name.strip())
    if match is None:
        return name.strip(), 0
    return match.group("name"), int(match.group("rep"))


def length_mm(value: float, unit: str, path, field_name: str) -> float:
    """A length in ``unit`` (mm, cm, m, microns) in millimetres."""
    factor = _LENGTH_UNITS.get(unit.strip().lower() or "mm")
    if factor is None:
        raise InputError(path, f"unknown length unit {unit!r} (known: {', '.join(sorted(_LENGTH_UNITS))})",
                         field=field_name)
    return value * factor


# --------------------------------------------------------------------------- settings.dfl


@dataclass
class DflSettings:
    """A Q-Spec settings file: ``sections[section][key] = value`` (names as written, stripped)."""

    source: str
    sections: dict[str, dict[str, str]] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, str]:
        """A section's entries, its name matched case-insensitively ({} when absent)."""
        return next((v for k, v in self.sections.items() if k.lower() == name.lower()), {})

    def get(self, section: str, key: str) -> str | None:
        return next((v for k, v in self.section(section).items() if k.lower() == key.lower()), None)

    def tube_index(self) -> str | None:
        """The tube index the fit used (``tube selector``), else the only/lowest one present."""
        selector = self.get("Fit cluster", "tube selector")
        if selector and selector.strip().isdigit():
            return selector.strip()
        found = sorted({m.group(1) for k in self.section("detector parameters")
                        if (m := re.fullmatch(r"keV/channel\s+(\d+)", k, re.IGNORECASE))})
        return found[0] if found else None

    def calibration(self) -> Calibration | None:
        """``keV/channel`` and ``energy offset`` of the selected tube, source ``"settings.dfl"``.

        E = offset + gain * i with i the 0-based channel index (the ``.spe`` row number minus
        one): fitting Fe K-alpha in ``L000676.spe`` with its ``.dfl`` puts the peak at 6.40 keV
        with 0-based indices and 6.41 keV with the file's 1-based numbers.
        """
        index = self.tube_index()
        if index is None:
            return None
        gain = number(self.get("detector parameters", f"keV/channel {index}") or "")
        offset = number(self.get("detector parameters", f"energy offset {index}") or "")
        if gain is None or offset is None:
            return None
        return Calibration(gain, offset, "settings.dfl")

    def tube(self) -> tuple[float, float]:
        """Tube kV and mA of the fit settings (NaN when absent)."""
        kv = number(self.get("Fit cluster", "kV") or "")
        ma = number(self.get("Fit cluster", "mA") or "")
        return (math.nan if kv is None else kv), (math.nan if ma is None else ma)

    def elements(self) -> list[str]:
        """Elements ticked in ``[Periodic table]``."""
        return [k for k, v in self.section("periodic table").items() if v.strip().upper() == "TRUE"]


def parse_dfl(raw: bytes, path) -> DflSettings:
    """Parse a ``settings.dfl`` file; bad lines raise :class:`InputError` naming the line."""
    if b"\x00" in raw:
        raise InputError(path, "binary content: expected a Q-Spec settings (.dfl) text file")
    settings = DflSettings(source=Path(path).name)
    current = None
    for number_, line in enumerate(split_lines(decode(raw)), start=1):
        text = line.strip()
        if not text or text.startswith(";"):
            continue
        if text.startswith("[") and text.endswith("]"):
            current = settings.sections.setdefault(text[1:-1].strip(), {})
        elif "=" in text and current is not None:
            key, _, value = text.partition("=")
            current[key.strip()] = value.strip().strip('"')
        else:
            raise InputError(path, f"expected '[section]' or 'key = value', found {text[:40]!r}", line=number_)
    if not settings.sections:
        raise InputError(path, "no '[section]' found: expected a Q-Spec settings (.dfl) file")
    return settings


# --------------------------------------------------------------------------- document.txt


@dataclass
class ScanDocument:
    """What an ITRAX ``document.txt`` says about one scan (NaN/"" where it says nothing)."""

    source: str
    section_name: str = ""
    sample_name: str = ""
    base_path: str = ""
    user: str = ""
    date: str = ""  # ISO 8601 to the hour (the file gives year, month, day, hour)
    xrf_on: bool = False
    tube_anode: str = ""
    tube_kv: float = math.nan  # the XRF tube ("XRF voltage and current"), not the radiograph's
    tube_ma: float = math.nan
    exposure_s: float = math.nan  # XRF exposure (dwell) time per point: real time
    step_mm: float = math.nan
    start_mm: float = math.nan
    stop_mm: float = math.nan
    rows: list[list[str]] = field(default_factory=list)

    def position_of(self, index: int) -> float:
        """Nominal position of the point written as ``L{index:06d}.spe`` (start + index x step)."""
        return self.start_mm + index * self.step_mm


def parse_document(raw: bytes, path) -> ScanDocument:
    """Parse an ITRAX ``document.txt`` (see the module docstring for its layout)."""
    if b"\x00" in raw:
        raise InputError(path, "binary content: expected an ITRAX document.txt text file")
    rows = [[c.strip() for c in line.split("\t")] for line in split_lines(decode(raw))]
    rows = [r for r in rows if any(r)]
    if len(rows) < 4 or not rows[0][0].lower().startswith("base path"):
        raise InputError(path, "expected an ITRAX document.txt starting with a 'Base path:' row", line=1)
    doc = ScanDocument(source=Path(path).name, rows=rows)
    names = _label_row(rows[0], rows[1])
    doc.base_path = names.get("base path", "")
    doc.sample_name = names.get("sample name", "")
    doc.section_name = names.get("section name", "")
    doc.user = names.get("user id", "")
    when = _label_row(rows[2], rows[3])
    if all(re.fullmatch(r"[0-9]{1,4}", when.get(k, "")) for k in ("year", "month", "day")):
        hour = when.get("time", "0")  # str.isdigit would pass '²', which int() refuses
        doc.date = (f"{int(when['year']):04d}-{int(when['month']):02d}-{int(when['day']):02d}"
                    f"T{int(hour) if re.fullmatch(r'[0-9]{1,2}', hour) else 0:02d}:00:00")

    def find(label: str):
        """(value, unit, line) of the first row naming ``label`` in cell 0 or cell 2."""
        for line, row in enumerate(rows, start=1):
            if row[0].rstrip(":").lower() == label:
                return (row[1] if len(row) > 1 else ""), (row[2] if len(row) > 2 else ""), line
            if len(row) > 3 and row[2].rstrip(":").lower() == label:
                return row[3], "", line
        return None

    def num(label: str, convert_length: bool = False) -> float:
        hit = find(label)
        if hit is None or not hit[0]:
            return math.nan
        value = number(hit[0])
        if value is None:
            raise InputError(path, f"expected a number, found {hit[0]!r}", line=hit[2], field=label)
        return length_mm(value, hit[1] or "mm", path, label) if convert_length else value

    xrf = find("xrf")
    doc.xrf_on = bool(xrf and xrf[0].strip().upper() == "ON")
    tube = find("tube")
    doc.tube_anode = tube[0] if tube else ""
    doc.exposure_s = num("xrf exp. time")
    doc.step_mm = num("step size", convert_length=True)
    doc.start_mm = num("start coordinate")
    doc.stop_mm = num("stop coordinate")
    for line, row in enumerate(rows, start=1):
        if row[0].lower().startswith("xrf voltage and current"):
            values = [number(c) for c in row[1:] if c]
            if len(values) < 2 or any(v is None for v in values[:2]):
                raise InputError(path, f"expected 'kV<TAB><TAB>mA' values, found {row[1:]!r}", line=line,
                                 field="XRF voltage and current")
            doc.tube_kv, doc.tube_ma = values[0], values[-1]
            break
    return doc


def _label_row(labels: list[str], values: list[str]) -> dict[str, str]:
    return {k.rstrip(":").strip().lower(): (values[i] if i < len(values) else "")
            for i, k in enumerate(labels) if k}


# --------------------------------------------------------------------------- finding side files


def zip_folder(path: Path) -> Path | None:
    """The folder holding the zip archive ``path`` was read from (``<folder>/XRF Data.zip/XRF
    data/L000000.spe``), or None when ``path`` is a plain file."""
    for parent in path.parents:
        if parent.suffix.lower() == ".zip" and parent.is_file():
            return parent.parent
    return None


def search_folders(path: Path) -> list[Path]:
    """Where side files of ``path`` may sit: its folder, and the section folder above when the
    file sits in the ITRAX ``XRF data`` folder. A file read from a zip archive (``XRF
    Data.zip``) takes the side files beside the archive: the zip stands for the data folder."""
    inside_zip = zip_folder(path)
    if inside_zip is not None:
        return [inside_zip]
    folder = path.parent
    folders = [folder]
    if folder.name.lower() == XRF_DATA_FOLDER and folder.parent != folder:
        folders.append(folder.parent)
    return folders


def _side_files(folder: Path) -> dict[str, tuple[Path, ...]]:
    """The folder's ``.dfl`` files, result tables and documents; cached while the folder is
    unchanged, since every ``.spe`` of a scan folder (thousands) asks for the same ones."""
    try:
        return _cached_side_files(str(folder), os.stat(folder).st_mtime_ns)
    except OSError:
        return {"dfl": (), "results": (), "documents": ()}


@functools.lru_cache(maxsize=32)
def _cached_side_files(folder: str, _mtime: int) -> dict[str, tuple[Path, ...]]:
    with os.scandir(folder) as entries:
        names = sorted(e.name for e in entries if e.is_file())

    def ending(*suffixes):
        return tuple(Path(folder, n) for n in names if n.lower().endswith(suffixes))

    return {"dfl": ending(".dfl"), "results": ending("results.txt", "result.txt"), "documents": ending("document.txt")}


def find_settings(path: Path) -> Path | None:
    """The ``.dfl`` beside ``path``: ``settings.dfl``, then ``Results_settings.dfl``, then any
    ``*settings.dfl``, then any ``*.dfl`` (first in name order)."""
    for folder in search_folders(path):
        dfl = _side_files(folder)["dfl"]
        for rank in (lambda n: n == "settings.dfl", lambda n: n == "results_settings.dfl",
                     lambda n: n.endswith("settings.dfl"), lambda n: True):
            hits = [p for p in dfl if rank(p.name.lower())]
            if hits:
                return hits[0]
    return None


def find_results(path: Path) -> list[Path]:
    """``Results.txt``/``result.txt`` tables (any name ending so) beside ``path``."""
    return [p for folder in search_folders(path) for p in _side_files(folder)["results"] if p != path]


def find_document(path: Path) -> tuple[ScanDocument | None, list[str]]:
    """The XRF ``document.txt`` beside ``path`` and warnings about what was skipped.

    ``document.txt`` itself is preferred, then any ``*document.txt``; a document of a run with
    the XRF off (the radiograph run) is skipped.
    """
    notes: list[str] = []
    for folder in search_folders(path):
        docs = sorted(_side_files(folder)["documents"], key=lambda p: (p.name.lower() != "document.txt", p.name))
        for candidate in docs:
            try:
                doc = load_document(candidate)
            except InputError as exc:
                notes.append(f"{candidate.name} not used: {exc.reason}")
                continue
            if doc.xrf_on:
                return doc, notes
    return None, notes


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = os.stat(path)
    return str(path), st.st_mtime_ns, st.st_size


def load_dfl(path: Path) -> DflSettings:
    """Parsed ``.dfl`` (cached while the file is unchanged: every ``.spe`` of a scan asks)."""
    return _load_dfl(*_stat_key(path))


def load_document(path: Path) -> ScanDocument:
    """Parsed ``document.txt`` (cached while the file is unchanged)."""
    return _load_document(*_stat_key(path))


@functools.lru_cache(maxsize=16)
def _load_dfl(path: str, _mtime: int, _size: int) -> DflSettings:
    return parse_dfl(Path(path).read_bytes(), path)


@functools.lru_cache(maxsize=16)
def _load_document(path: str, _mtime: int, _size: int) -> ScanDocument:
    return parse_document(Path(path).read_bytes(), path)
