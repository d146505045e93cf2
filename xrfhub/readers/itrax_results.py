"""ITRAX Q-Spec result tables (``Results.txt``, ``result.txt``): line intensities per point.

Layout (tab separated, every row ending in a tab, Windows paths in ``filename``)::

    C:\\Data\\...\\CD166_19_S1\\CD166_19_S1\\XRF data     06-Oct-20  re-evaluated data
    peakarea
    filename  position (mm)  sample surface  validity  E-gain  E-offset  F-slope  F-offset  cps  MSE  Al ... Dt
    C:\\...\\XRF data\\L000000.spe  31.54  6.38  1  0.010267  -0.009931  0.009900  0.077115  22415  1.26  41  177 ...

The first preamble line names the scan's data folder and the evaluation date, the second the
quantity (``peakarea``). Columns are found by name: the per-point fit results (validity,
energy calibration, peak width, total cps, MSE, dead time) become point columns, every other
column is a line (element names, ``Mo inc``/``Mo coh`` scatter, extra lines such as ``Fe a*2``),
its name unified by :func:`xrfhub.lines.unify_line`. Validity 0 marks a point Q-Spec could not
fit (its areas are all zero): it is kept, with ``valid=False``. Values are kept as written.

Scan facts the table lacks come from the ITRAX side files beside it (see ``itrax_meta``):
``document.txt`` (tube kV/mA, exposure time, step, section name, date), else ``settings.dfl``
(tube kV/mA of the fit). Where each came from is recorded in ``ElementTable.metadata``. A
``settings.dfl`` fitted for another tube voltage or current than ``document.txt`` states is
another run's: not used, with a warning naming both.

Core and section: ``core=`` wins; otherwise the section name (document.txt ``Section name``, else
the folder before ``XRF data`` in the preamble or the ``filename`` paths) is split by
:func:`~xrfhub.readers.itrax_meta.split_section_name`: ``CD166_19_S1`` is core ``CD166_19``,
section ``S1``; a replicate folder (``CD166_19_S1_REP1``) is replicate 1 of that section (see
:func:`~xrfhub.readers.itrax_meta.split_replicate`). Depth = section top
(``section_top_mm_override``; unknown for a named section: depths stay section-relative) +
``position (mm)``.

Two tables in one folder that evaluate the same points (Q-Spec's ``Results.txt`` of a
re-evaluation beside the earlier ``result.txt``) are one measurement: the newer evaluation (the
preamble's date; on a tie the name ``Results.txt``) is stored, the other is not
(:class:`~xrfhub.errors.NotStored`, naming the table that supersedes it), so no point is
stored twice.
"""
from __future__ import annotations

import functools
import math
import ntpath
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, NotStored
from ..lines import unify_line
from ..records import ElementTable, on_depth_scale
from . import itrax_meta as meta

FORMAT = "itrax-results"
KIND = "elements"
DESCRIPTION = "ITRAX Q-Spec result table (Results.txt / result.txt)"

#: Quantity named by the preamble's second line -> key of ``ElementTable.values``.
QUANTITIES = {"peakarea": "area", "peak area": "area", "area": "area", "cps": "cps"}

#: Per-point fit columns (lower-cased header) -> point column; every other column is a line.
POINT_COLUMNS = {
    "position (mm)": "position_mm",
    "sample surface": "sample_surface_cm",  # the .spe header gives its unit: cm
    "validity": "validity",
    "e-gain": "energy_gain_kev",
    "e-offset": "energy_offset_kev",
    "f-slope": "fwhm_slope",
    "f-offset": "fwhm_offset_kev",
    "cps": "cps",
    "mse": "mse",
    "dt": "dead_time",
}

_HEADER_SEARCH_LINES = 10


def sniff(head: bytes, name: str = "") -> bool:
    """A header row within the first lines that starts with ``filename`` and names ``validity``
    and a ``position`` column."""
    lines = re.split(rb"\r\n|\r|\n", head)[:_HEADER_SEARCH_LINES]
    for line in lines:
        cells = [c.strip().lower() for c in line.split(b"\t")]
        if cells and cells[0] == b"filename":
            return b"validity" in cells and any(c.startswith(b"position") for c in cells)
    return False


# --------------------------------------------------------------------------- parsing


@dataclass
class ResultsTable:
    """A parsed result table: columns by name, one row per point, in file order."""

    source: str
    preamble: list[str]
    quantity: str  # key in ElementTable.values ("area")
    quantity_label: str  # as written ("peakarea")
    columns: list[str]  # numeric columns (all but filename), names as written
    filenames: list[str]  # the ``filename`` cells as written (Windows paths)
    file_lines: np.ndarray  # 1-based line number of each row
    data: np.ndarray  # float64 (rows, columns)
    position_column: str = "position (mm)"
    position_scale: float = 1.0  # to mm
    _by_name: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._by_name = {}
        for i, f in enumerate(self.filenames):
            self._by_name.setdefault(ntpath.basename(f).lower(), i)

    def __len__(self) -> int:
        return len(self.filenames)

    def column(self, key: str) -> np.ndarray | None:
        """A column by its lower-cased header name (e.g. ``"e-gain"``), None when absent."""
        for i, name in enumerate(self.columns):
            if name.strip().lower() == key:
                return self.data[:, i]
        return None

    def row_of(self, spectrum_name: str) -> int | None:
        """Row of a spectrum file name (``L000676.spe``), matched case-insensitively."""
        return self._by_name.get(ntpath.basename(spectrum_name).lower())

    def value(self, row: int, key: str) -> float:
        col = self.column(key)
        return math.nan if col is None else float(col[row])

    @property
    def line_columns(self) -> list[str]:
        return [c for c in self.columns if c.strip().lower() not in POINT_COLUMNS
                and not c.strip().lower().startswith("position")]

    def position_mm(self) -> np.ndarray:
        """The position column in mm (``position (mm)``; another length unit is converted)."""
        return self.position_scale * self.data[:, self.columns.index(self.position_column)]

    def section_name(self) -> str:
        """The section folder: the folder before ``XRF data`` in the preamble or filename paths."""
        candidates = []
        if self.preamble:
            candidates.append(re.split(r"\s{2,}|\t", self.preamble[0].strip())[0])
        if self.filenames:
            candidates.append(ntpath.dirname(self.filenames[0]))
        for folder in candidates:
            parts = [p for p in re.split(r"[\\/]", folder) if p]
            if len(parts) >= 2 and parts[-1].strip().lower() == meta.XRF_DATA_FOLDER:
                return parts[-2].strip()
        return ""

    def evaluated(self) -> str:
        """The evaluation note of the preamble (``06-Oct-20  re-evaluated data``)."""
        if not self.preamble:
            return ""
        parts = re.split(r"\s{2,}|\t", self.preamble[0].strip())
        return " ".join(p for p in parts[1:] if p)

    def evaluated_on(self) -> datetime | None:
        """The evaluation date of the preamble (``06-Oct-20``), None when it gives none."""
        for token in self.evaluated().split():
            for fmt in ("%d-%b-%y", "%d-%b-%Y", "%Y-%m-%d", "%d/%m/%Y"):
                try:
                    return datetime.strptime(token, fmt)
                except ValueError:
                    continue
        return None


def parse_results(raw: bytes, path) -> ResultsTable:
    """Parse a result table; malformed input raises :class:`InputError` naming line and column."""
    if b"\x00" in raw[:4096]:
        raise InputError(path, "binary content: expected an ITRAX Results.txt text table")
    lines = meta.split_lines(meta.decode(raw))
    at = next((i for i, line in enumerate(lines[:_HEADER_SEARCH_LINES])
               if line.split("\t")[0].strip().lower() == "filename"), None)
    if at is None:
        raise InputError(path, f"no header row starting with 'filename' in the first {_HEADER_SEARCH_LINES} lines: "
                               "expected an ITRAX Results.txt")
    preamble = [line.strip() for line in lines[:at]]
    label = preamble[-1].strip() if len(preamble) >= 2 else "peakarea"
    quantity = QUANTITIES.get(label.lower())
    if quantity is None:
        raise InputError(path, f"unknown quantity {label!r} (known: {', '.join(QUANTITIES)})", line=at)
    header = lines[at].split("\t")
    keep = [i for i, name in enumerate(header) if name.strip()]
    names = [header[i].strip() for i in keep]
    lowered = [n.lower() for n in names]
    for required in ("validity",):
        if required not in lowered:
            raise InputError(path, f"no {required!r} column in the header", line=at + 1, field=required)
    position_column = next((n for n in names if n.lower().startswith("position")), None)
    if position_column is None:
        raise InputError(path, "no 'position (mm)' column in the header", line=at + 1, field="position (mm)")
    unit = re.search(r"\(([^)]*)\)", position_column)
    try:
        scale = meta.length_mm(1.0, unit.group(1) if unit else "mm", path, position_column)
    except InputError as exc:
        raise InputError(path, exc.reason, line=at + 1, field=position_column) from None
    if len(set(lowered)) != len(lowered):
        dup = next(n for n in names if lowered.count(n.lower()) > 1)
        raise InputError(path, "column named twice in the header", line=at + 1, field=dup)

    cells, numbers = [], []
    for index in range(at + 1, len(lines)):
        line = lines[index]
        if not line.strip():
            continue
        row = line.split("\t")
        if len(row) != len(header) and not (len(row) == len(header) - 1 and not header[-1].strip()):
            raise InputError(path, f"found {len(row)} cells, the header has {len(header)} (truncated or shifted row?)",
                             line=index + 1)
        row = [row[i] if i < len(row) else "" for i in keep]
        cells.append(row[0].strip())
        numbers.append((index + 1, row[1:]))
    if not cells:
        raise InputError(path, "the table has a header but no rows", line=at + 1)
    text = np.array([r for _, r in numbers], dtype=object)
    try:
        data = text.astype(np.float64)
    except ValueError:
        data = _locate_bad_cell(numbers, names[1:], path)
    return ResultsTable(source=Path(path).name, preamble=preamble, quantity=quantity, quantity_label=label,
                        columns=names[1:], filenames=cells,
                        file_lines=np.array([n for n, _ in numbers], dtype=np.int64), data=data,
                        position_column=position_column, position_scale=scale)


def _locate_bad_cell(numbers, names, path):
    """Slow path for broken tables: the first cell that is not a number."""
    for line, row in numbers:
        for name, cell in zip(names, row):
            try:
                float(cell)
            except ValueError:
                raise InputError(path, f"expected a number, found {cell.strip()[:20]!r}", line=line,
                                 field=name) from None
    raise InputError(path, "cannot read the table's numbers")


def load_results(path: Path) -> ResultsTable:
    """Parsed table, cached while the file is unchanged (every ``.spe`` of a scan asks for it)."""
    key = meta._stat_key(path)
    return _load_results(*key)


@functools.lru_cache(maxsize=8)
def _load_results(path: str, _mtime: int, _size: int) -> ResultsTable:
    return parse_results(Path(path).read_bytes(), path)


# --------------------------------------------------------------------------- one evaluation per folder


def _newness(path: Path, table: ResultsTable) -> tuple:
    """Order of evaluations: the preamble's date, then Q-Spec's current name ``Results.txt``
    over other names (``result.txt`` is what older versions wrote), then the name."""
    return (table.evaluated_on() or datetime.min, path.name.lower().endswith("results.txt"), path.name)


def superseded_by(path: Path, table: ResultsTable) -> tuple[Path, ResultsTable] | None:
    """A newer result table in the same folder evaluating every point of ``table``, or None."""
    best = None
    mine = set(table._by_name)
    for other_path in meta.find_results(path):
        if other_path.parent != path.parent:
            continue
        try:
            other = load_results(other_path)
        except InputError:
            continue  # a broken neighbour supersedes nothing; its own ingest reports it
        if mine <= set(other._by_name) and _newness(other_path, other) > _newness(path, table):
            if best is None or _newness(other_path, other) > _newness(*best):
                best = (other_path, other)
    return best


def current_results(candidates: list[Path]) -> list[Path]:
    """Result tables in the order a spectrum should consult them: superseded ones last.

    Cached while the tables are unchanged: every spectrum of a scan folder (thousands) asks,
    and comparing the tables' point lists each time would cost O(points) per spectrum."""
    try:
        keys = tuple(meta._stat_key(p) for p in candidates)
    except OSError:
        return list(candidates)
    return [Path(p) for p in _current_results(keys)]


@functools.lru_cache(maxsize=8)
def _current_results(keys: tuple) -> tuple[str, ...]:
    def rank(p: Path):
        try:
            table = load_results(p)
        except InputError:
            return (1, p.name)
        return (0 if superseded_by(p, table) is None else 1, p.name)
    return tuple(str(p) for p in sorted((Path(k[0]) for k in keys), key=rank))


# --------------------------------------------------------------------------- reader


def unified_lines(columns: list[str]) -> tuple[list[str], list[str]]:
    """Unified names of the line columns, and notes for names kept as written (unknown to
    ``unify_line``, or colliding with an earlier column's unified name)."""
    names, notes = [], []
    for col in columns:
        try:
            name = unify_line(col)
        except ValueError:
            name = col.strip()
            notes.append(f"column {col!r} is not a known line name: kept as written")
        if name in names:
            notes.append(f"line {col!r} would be {name!r} like an earlier column; kept as written")
            name = col.strip()
        names.append(name)
    return names, notes


def scan_context(path: Path, *, section_name: str = "") -> dict:
    """Document and settings beside ``path``: tube, exposure, step, date, section name, and
    where each came from."""
    warnings: list[str] = []
    doc, notes = meta.find_document(path)
    warnings += notes
    if doc is not None and section_name and doc.section_name and doc.section_name.lower() != section_name.lower():
        warnings.append(f"{doc.source} describes section {doc.section_name!r}, not {section_name!r}: not used")
        doc = None
    dfl = None
    dfl_path = meta.find_settings(path)
    if dfl_path is not None:
        try:
            dfl = meta.load_dfl(dfl_path)
        except InputError as exc:
            warnings.append(f"{dfl_path.name} not used: {exc.reason}")
    if doc is not None and dfl is not None:
        # two side files that both state the tube: one fitted for another tube is another run's
        kv, ma = dfl.tube()
        for what, theirs, ours, unit in (("voltage", kv, doc.tube_kv, "kV"), ("current", ma, doc.tube_ma, "mA")):
            if math.isfinite(theirs) and math.isfinite(ours) and abs(theirs - ours) > 0.05:
                warnings.append(f"{dfl.source} was fitted for tube {what} {theirs:g} {unit}, {doc.source} says "
                                f"{ours:g} {unit}: {dfl.source} not used")
                dfl = None
                break
    ctx = {"document": doc, "settings": dfl, "warnings": warnings,
           "tube_kv": math.nan, "tube_ma": math.nan, "tube_source": ""}
    if doc is not None and math.isfinite(doc.tube_kv):
        ctx.update(tube_kv=doc.tube_kv, tube_ma=doc.tube_ma, tube_source=doc.source)
    elif dfl is not None:
        kv, ma = dfl.tube()
        if math.isfinite(kv):
            ctx.update(tube_kv=kv, tube_ma=ma, tube_source=dfl.source)
    return ctx


def resolve_core(path, *, core: str | None, names: list[tuple[str, str]]) -> tuple[str, str, str, int]:
    """(core, section, where the name came from, replicate) from the first non-empty
    ``(name, source)``; a ``_REP<n>`` suffix is the replicate, not part of the section."""
    for name, source in names:
        if name:
            base, replicate = meta.split_replicate(name)
            core_id, section = meta.split_section_name(base, core)
            return core_id, section, source, replicate
    if core:
        return core.strip(), "", "option", 0
    raise InputError(path, "no section name in document.txt, the table or the folder: pass --core")


def section_top(override: float | None, warnings: list[str], section: str = "") -> float:
    """The section's top in core depth (mm). A named section whose top no file gives stays
    NaN: its positions are section-relative until ``--sections`` or ``--section-top`` places
    them (ingest says so), never put at a made-up 0. A scan with no section name is the core."""
    if override is not None:
        return float(override)
    if section:
        return math.nan
    warnings.append("section top unknown, 0 used (pass --section-top)")
    return 0.0


def read(path, *, source: str | None = None, raw: bytes | None = None, core: str | None = None,
         section_top_mm_override: float | None = None, **_options) -> ElementTable:
    """Read a Q-Spec result table into an :class:`ElementTable` (see the module docstring)."""
    path = Path(path)
    table = parse_results(path.read_bytes() if raw is None else raw, path)
    newer = superseded_by(path, table) if path.is_file() else None
    if newer is not None:
        other_path, other = newer
        raise NotStored(path, f"superseded by {other_path.name} beside it (evaluated {other.evaluated() or 'later'}; "
                              f"this one {table.evaluated() or 'undated'}): the same {len(table)} points evaluated "
                              f"again, so only {other_path.name} is stored")
    warnings: list[str] = []
    folder_name = table.section_name()
    ctx = scan_context(path, section_name=folder_name)
    warnings += ctx["warnings"]
    doc = ctx["document"]
    core_id, section, name_source, replicate = resolve_core(path, core=core, names=[
        (doc.section_name if doc else "", doc.source if doc else ""), (folder_name, "table paths")])
    top = section_top(section_top_mm_override, warnings, section)

    position = table.position_mm()
    depth, scale = on_depth_scale(top, position)
    validity = table.column("validity")
    for name, column in (("position (mm)", position), ("validity", validity)):
        bad = np.flatnonzero(~np.isfinite(column))
        if bad.size:
            raise InputError(path, f"{name} is not a finite number", line=int(table.file_lines[bad[0]]), field=name)
    n = len(table)
    points = {
        "core": [core_id] * n, "section": [section] * n, "section_top_mm": np.full(n, top),
        "position_mm": position, "depth_mm": depth, "depth_scale": [scale] * n,
        "tube_kv": np.full(n, ctx["tube_kv"]), "tube_ma": np.full(n, ctx["tube_ma"]),
        "run": [""] * n, "replicate": np.full(n, replicate, dtype=np.int32),
        "valid": validity != 0, "source": [source or path.name] * n,
        "spectrum": [ntpath.basename(f) for f in table.filenames],
        "real_time_s": np.full(n, doc.exposure_s if doc else math.nan),
        "date": [doc.date if doc else ""] * n,
        "file_line": table.file_lines,
    }
    for key, column in POINT_COLUMNS.items():
        values = table.column(key)
        if values is not None and column not in points and key != "position (mm)":
            points[column] = values.astype(np.int32) if column == "validity" else values
    line_cols = table.line_columns
    lines, notes = unified_lines(line_cols)
    warnings += notes
    idx = [table.columns.index(c) for c in line_cols]
    values = table.data[:, idx]
    flags = np.where(values < 0, "negative", "").astype("<U8")

    metadata = {
        "instrument": "itrax", "quantity": table.quantity_label, "evaluated": table.evaluated(),
        "section_name_source": name_source, "tube_source": ctx["tube_source"],
        "vendor_lines": "\t".join(line_cols),
    }
    if doc is not None:
        metadata.update(document=doc.source, tube_anode=doc.tube_anode, step_mm=f"{doc.step_mm:g}",
                        exposure_s=f"{doc.exposure_s:g}", section_name=doc.section_name)
    elif folder_name:
        metadata["section_name"] = folder_name
    if ctx["settings"] is not None:
        metadata["settings"] = ctx["settings"].source
    if warnings:
        metadata["warnings"] = "; ".join(warnings)
    return ElementTable(source=source or path.name, points=pd.DataFrame(points), lines=lines,
                        values={table.quantity: values}, flags=flags, metadata=metadata)
