"""Labels of diffraction patterns: a table saying what each pattern is.

A comma, semicolon or tab separated table with a header row and one row per pattern. The
pattern column is ``pattern_id``, ``pattern``, ``id``, ``file`` or ``name`` (file names lose a
known extension and their folder: ``data/MnO.xy`` -> ``MnO``). The labels come in one of three
shapes:

* one class per pattern: a ``class``, ``label`` or ``phase`` column;
* a set of phases per pattern: a ``phases`` (``labels``, ``classes``) column, the phases
  separated by ``;``, ``+`` or ``|`` (``MnO;TiO2``, ``Mn2O3+LiF``); a ``class``/``phase`` column whose
  cells hold such sets counts as one too (these characters always separate phases, so a class
  name cannot contain them);
* wide multi-hot: one column per phase holding 0 or 1 (also ``true``/``false``, ``yes``/``no``).

Labels are normalised: the phases of a set sorted and joined by ``;`` (``TiO2+MnO`` ->
``MnO;TiO2``); a wide row with no phase present has the empty label ``""``.
:class:`~xrfhub.records.PatternLabels` says ``multi=True`` for sets and wide tables. A pattern
listed twice with the same label is kept once; with different labels it is an error naming
both lines. Other columns (notes, ...) are read past in the class and set forms.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

import pandas as pd

from ..errors import InputError
from ..records import PatternLabels
from .lab_csv import _head_text, _records, parse_delimited, read_text, sniff_separator, split_lines

FORMAT = "xrd-labels"
KIND = "diffraction-labels"
DESCRIPTION = "Labels of diffraction patterns (CSV/TSV: pattern id -> class, set of phases, or 0/1 per phase)"

_PATTERN_NAMES = ("patternid", "pattern", "id", "file", "filename", "name", "patternname")
_CLASS_NAMES = ("class", "label", "phase")
_SET_NAMES = ("phases", "labels", "classes")
_SET_SEPARATORS = re.compile(r"\s*[;+|]\s*")
_TRUE = frozenset({"1", "1.0", "true", "yes", "y", "x"})
_FALSE = frozenset({"0", "0.0", "false", "no", "n", ""})
#: Pattern file extensions dropped from ids, so that labels name patterns as the readers do.
PATTERN_SUFFIXES = frozenset({".xy", ".xye", ".dat", ".csv", ".txt", ".tsv", ".chi", ".xrdml", ".raw", ".brml",
                              ".uxd", ".gsa", ".fxye", ".nxs", ".nx5", ".h5", ".hdf5", ".hdf", ".asc"})
_DEPTH_WORDS = frozenset({"depth", "top", "bottom", "mid", "depthm", "depthcm", "topcm", "bottomcm"})


def _key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    keys = [_key(h) for h in header]
    for name in names:  # the first name in preference order, not the first column
        if name in keys:
            return keys.index(name)
    return None


def pattern_id(cell: str) -> str:
    """A pattern id from a table cell: a file name loses its folder and known extension."""
    text = cell.strip()
    for pure in (PureWindowsPath, PurePosixPath):
        p = pure(text)
        if p.suffix.lower() in PATTERN_SUFFIXES:
            return p.stem
    return text


def _phases(cell: str) -> list[str]:
    return sorted({p for p in _SET_SEPARATORS.split(cell.strip()) if p})


def _layout(header: list[str]) -> tuple[int, int | None, bool] | None:
    """``(pattern column, label column or None for wide, set-valued?)``, or None when the header
    is not a labels table."""
    pat = _column(header, _PATTERN_NAMES)
    if pat is None:
        return None
    rest = [h for i, h in enumerate(header) if i != pat]
    if any(_key(h) in _DEPTH_WORDS for h in rest):
        return None  # a lab table with sample names, not labels
    sets = _column(header, _SET_NAMES)
    if sets is not None:
        return pat, sets, True
    single = _column(header, _CLASS_NAMES)
    if single is not None:
        return pat, single, False
    return (pat, None, True) if any(h.strip() for h in rest) else None


def sniff(head: bytes, name: str = "") -> bool:
    """A delimited header with a pattern column and a class/phases column, or with phase columns
    whose first rows hold only 0/1."""
    text = _head_text(head)
    if text is None or text.lstrip().startswith(("/*", "$", "<", "#")):
        return False
    lines = [line for line in split_lines(text)[:21] if line.strip()]
    if len(head) >= 8192 and len(lines) > 1:
        lines = lines[:-1]
    sep = sniff_separator(lines)
    if sep is None or len(lines) < 2:
        return False
    try:
        records = _records(lines[:11], sep)
    except Exception:  # noqa: BLE001 - a head csv cannot split is simply not ours
        return False
    header = [c.strip() for c in records[0][1]]
    layout = _layout(header)
    if layout is None:
        return False
    pat, label, _multi = layout
    if label is not None:
        return True
    flags = [c.strip().lower() for _n, cells in records[1:] for i, c in enumerate(cells) if i != pat]
    return bool(flags) and all(f in _TRUE or f in _FALSE for f in flags) and any(f in _TRUE for f in flags)


def read(path, *, source: str | None = None, raw: bytes | None = None, sep: str | None = None,
         **_options) -> PatternLabels:
    """Read a labels table into :class:`~xrfhub.records.PatternLabels` (see the module docstring).

    ``sep`` forces the separator; options meant for other readers are ignored.
    """
    text = read_text(path, raw)
    header, rows, _sep = parse_delimited(path, text, sep=sep)
    layout = _layout(header)
    if layout is None:
        raise InputError(path, f"expected a header with a pattern column ({', '.join(_PATTERN_NAMES)}) and a "
                               "class/label/phase column, a phases column, or one 0/1 column per phase; "
                               f"found {header}", line=1)
    pat, label, multi = layout
    phase_cols = [i for i, h in enumerate(header) if i != pat and h.strip()] if label is None else []
    out: dict[str, tuple[str, int]] = {}
    ids, labels, lines = [], [], []
    for line, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        cells = cells + [""] * (len(header) - len(cells))
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            raise InputError(path, f"row has {len(cells)} cells, the header {len(header)} columns", line=line)
        pid = pattern_id(cells[pat])
        if not pid:
            raise InputError(path, "pattern id is empty", line=line, field=header[pat])
        if label is None:
            present = []
            for i in phase_cols:
                value = cells[i].strip().lower()
                if value not in _TRUE and value not in _FALSE:
                    raise InputError(path, f"expected 0 or 1 (phase present or not), found {cells[i].strip()!r}",
                                     line=line, field=header[i])
                if value in _TRUE:
                    present.append(header[i].strip())
            value = ";".join(sorted(present))
        else:
            cell = cells[label].strip()
            phases = _phases(cell)
            if not phases:
                raise InputError(path, "label is empty: expected a class or a set of phases", line=line,
                                 field=header[label])
            multi = multi or len(phases) > 1
            value = ";".join(phases)
        if pid in out:
            earlier, first_line = out[pid]
            if earlier != value:
                raise InputError(path, f"pattern {pid!r} is labelled {earlier!r} on line {first_line} and "
                                       f"{value!r} here: one label per pattern", line=line, field=header[pat])
            continue
        out[pid] = (value, line)
        ids.append(pid)
        labels.append(value)
        lines.append(line)
    if not ids:
        raise InputError(path, "no label rows: the table is empty")
    table = pd.DataFrame({"pattern_id": pd.Series(ids, dtype=object), "label": pd.Series(labels, dtype=object),
                          "line": pd.Series(lines, dtype="int64")})
    return PatternLabels(source=source or Path(path).name, table=table, multi=multi)
