"""The MAX data set layout: a folder of per-spectrum CSV files, read as one source.

Users of MAX (the masked autoencoder for XRF spectra, dispink/xpt) hold their data in the
layout MAX's own scripts write (DESIGN section 3)::

    data/pretrain/<split>/info.csv          dirname, composite_id, cps, core, composite_depth_mm,
                                            section_depth_mm, filename, section
    data/pretrain/<split>/spe/<i>.csv       2048 integer counts, one per line, no header
    data/finetune/<target>/<split>/info.csv dirname (or filename), core, mid_depth_mm
    data/finetune/<target>/<split>/spe/<i>.csv     the sample's mean spectrum (floats)
    data/finetune/<target>/<split>/target/<i>.csv  one float: the lab value in wt%

``<split>`` is ``train`` or ``test`` (MAX holds whole cores out for testing); ``<target>`` is
written like ``CaCO3%`` or ``TOC%``. Older MAX scripts name the annotation file ``info_*.csv``;
one such file is accepted where ``info.csv`` is missing.

This is a *folder* reader (``sniff_dir``/``read_dir``), not a file reader: thousands of
small CSV files are one data set, fingerprinted and ingested as one source. What it gives:

* the pre-training spectra as :class:`~xrfhub.records.Spectrum`, counts as uint32. MAX's
  ``composite_depth_mm`` is the depth its lab samples are given on, so it becomes
  ``depth_mm``; ``section_depth_mm`` (the position in the section) becomes ``position_mm`` and
  ``section_top_mm = depth_mm - position_mm``, which keeps the store's rule depth = section top
  + position. The data set does not record the tube voltage: MAX used 10 kV spectra, so 10 kV
  is assumed (and said so in each spectrum's warnings) unless the original ``.spe`` name in
  ``filename`` gives it. No calibration either: the 20 eV/channel default, recorded as
  ``"default"``.
* the fine-tuning labels as one :class:`~xrfhub.records.LabTable` per target and split (one
  ``info.csv`` each, so ``line`` and ``sample_id`` point at one row of one file).
* the mean spectra those labels ship with, as :class:`PairedSpectra`. They are *not* stored:
  they are float means, and the store re-derives every sample's mean spectrum from the raw
  spectra by the same +-5 mm window MAX used. :func:`compare_paired` says where the store's mean
  differs from the provided one.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ..properties import canonical_property
from ..records import DEFAULT_CALIBRATION, Calibration, LabTable, Spectrum
from .avaatech_spe import parse_bang_name, parse_space_name
from .max_layout import (SplitFolder, _info_candidates, _join, _unlisted,  # noqa: F401 (public here too)
                         dataset_files, sniff_dir, split_folders)

FORMAT = "max-dataset"
KIND = "spectra+samples"
DESCRIPTION = "MAX data set folder (pretrain/ and finetune/<target>/, info.csv + spe/*.csv)"

N_CHANNELS = 2048  # every spectrum of the MAX data set has 2048 channels
ASSUMED_KV = 10.0  # MAX trained on 10 kV spectra; the layout does not record the voltage
WINDOW_MM = 5.0  # MAX paired a lab sample with the spectra within +-5 mm of its mid-depth

PRETRAIN_COLUMNS = ("dirname", "core", "composite_depth_mm")
FINETUNE_COLUMNS = ("core", "mid_depth_mm")  # plus the file column: dirname or filename

ReadBytes = Callable[[Path], bytes]


@dataclass
class PairedSpectra:
    """The mean spectra a fine-tuning split provides, row for row with its LabTable."""

    table: str  # the LabTable's source (the info.csv)
    target: str  # canonical property, e.g. "CaCO3"
    split: str
    sample_id: np.ndarray  # dirname of each row
    core: np.ndarray
    mid_mm: np.ndarray
    line: np.ndarray  # 1-based line in info.csv
    mean: np.ndarray  # (n, 2048) float64

    def __len__(self) -> int:
        return int(self.mean.shape[0])


@dataclass
class MaxDataset:
    """Everything one MAX data set folder holds, in the store's terms."""

    source: str  # the data set's name in the store; every inner source starts with it + "/"
    spectra: list[Spectrum] = field(default_factory=list)
    tables: list[LabTable] = field(default_factory=list)
    paired: list[PairedSpectra] = field(default_factory=list)  # one per table, same order
    splits: dict[str, str] = field(default_factory=dict)  # split folder (rel) -> "train"/"test"
    test_cores: list[str] = field(default_factory=list)  # cores of the test splits (MAX's holdout)
    warnings: list[str] = field(default_factory=list)

    def window_means(self, paired: PairedSpectra, *, window_mm: float = WINDOW_MM,
                     tube_kv: float | None = ASSUMED_KV) -> np.ndarray:
        """Mean of this data set's own spectra within ``window_mm`` of each sample (NaN: none).

        The same pairing the store makes (``xrfhub.align``), on the data set alone: what ingest
        can compare before anything is written.
        """
        from ..align import align_samples

        table = pd.DataFrame({"core": [s.core for s in self.spectra],
                              "depth_mm": [s.depth_mm for s in self.spectra],
                              "tube_kv": [s.tube_kv for s in self.spectra]})
        samples = pd.DataFrame({"core": paired.core, "mid_mm": paired.mid_mm})
        result = align_samples(table, samples, method="window", window_mm=window_mm, tube_kv=tube_kv)
        out = np.full(paired.mean.shape, np.nan)
        for i, rows in enumerate(result.indices):  # a few spectra per sample: no big stack
            if len(rows):
                out[i] = np.mean([self.spectra[j].counts for j in rows], axis=0)
        return out

    def check_paired(self, *, window_mm: float = WINDOW_MM, rtol: float = 1e-3) -> list[str]:
        """Warnings for every split whose provided mean spectra this data set does not reproduce."""
        out: list[str] = []
        for paired in self.paired:
            out.extend(compare_paired(paired, self.window_means(paired, window_mm=window_mm), rtol=rtol))
        return out


# --------------------------------------------------------------------------- layout


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _lines(raw: bytes) -> list[bytes]:
    lines = raw.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_counts(path: Path, raw: bytes) -> np.ndarray:
    """A pre-training spectrum: 2048 non-negative integer counts, one per line -> uint32."""
    lines = _lines(raw)
    try:  # fast path: numpy parses the whole column at once
        values = np.array(lines, dtype=np.int64)
    except (ValueError, OverflowError):
        values = np.array([_count(line, path, i) for i, line in enumerate(lines, start=1)], dtype=np.int64)
    bad = np.flatnonzero((values < 0) | (values > np.iinfo(np.uint32).max))
    if bad.size:
        raise InputError(path, f"count {int(values[bad[0]])} is not a count (expected 0 to 2**32-1)",
                         line=int(bad[0]) + 1)
    if values.size != N_CHANNELS:
        raise InputError(path, f"{values.size} channels, expected {N_CHANNELS} (one count per line; "
                               "every MAX spectrum has 2048 channels)")
    return values.astype(np.uint32)


def _count(line: bytes, path: Path, number: int) -> int:
    text = line.decode("latin-1").strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:  # "12.0" is an integer written by a float column: accept it, refuse "12.5"
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and value.is_integer() and 0 <= value < 2**32:
        return int(value)
    raise InputError(path, f"expected one integer count per line, found {text[:40]!r}", line=number)


def read_mean(path: Path, raw: bytes) -> np.ndarray:
    """A fine-tuning mean spectrum: 2048 finite floats, one per line -> float64."""
    lines = _lines(raw)
    out = np.empty(len(lines), dtype=np.float64)
    try:
        out[:] = np.array(lines, dtype=np.float64)
    except ValueError:
        for i, line in enumerate(lines, start=1):
            out[i - 1] = _number(line.decode("latin-1"), path, i, None, "one number per line")
    if not np.isfinite(out).all():
        raise InputError(path, "non-finite value: expected one finite number per line",
                         line=int(np.flatnonzero(~np.isfinite(out))[0]) + 1)
    if out.size != N_CHANNELS:
        raise InputError(path, f"{out.size} channels, expected {N_CHANNELS} (one value per line)")
    return out


def read_target(path: Path, raw: bytes) -> float:
    """A fine-tuning target: exactly one finite float (wt%)."""
    lines = [(i, ln) for i, ln in enumerate(_decode(raw).splitlines(), start=1) if ln.strip()]
    if len(lines) != 1 or len(lines[0][1].replace(",", " ").split()) != 1:
        raise InputError(path, f"expected one number (the lab value in wt%), found {len(lines)} line(s): "
                               f"{' | '.join(ln.strip() for _, ln in lines[:3])[:60]!r}",
                         line=lines[1][0] if len(lines) > 1 else (lines[0][0] if lines else None))
    return _number(lines[0][1], path, lines[0][0], None, "one number (the lab value in wt%)")


def _number(text: str, path, line: int, field: str | None, what: str = "a number") -> float:
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(path, f"expected {what}, found {text.strip()[:40]!r}", line=line, field=field)
    return value


def _optional(row: dict[str, str], column: str, path, line: int, what: str) -> float:
    """An optional number: NaN when the column is absent or the cell empty (pandas writes NaN
    as an empty cell) or written as ``nan``."""
    text = row.get(column, "").strip()
    if not text or text.lower() == "nan":
        return math.nan
    return _number(text, path, line, column, what)


# --------------------------------------------------------------------------- info.csv


@dataclass
class _Info:
    path: Path
    rel: str
    header: str  # the header line as written
    rows: list[tuple[int, dict[str, str], str]]  # (line, cells by column, the line as written)


def _info_file(sf: SplitFolder, role_columns: str) -> Path:
    found = _info_candidates(sf.path)
    if not found:
        raise InputError(sf.path / "info.csv", f"missing: every split folder of a MAX data set needs an "
                                               f"info.csv with columns {role_columns}")
    if len(found) > 1:
        raise InputError(sf.path / "info.csv", "missing, and several info*.csv files ("
                         + ", ".join(p.name for p in found) + ") could stand for it: keep one or name one info.csv")
    return found[0]


def _read_info(sf: SplitFolder, root: Path, required: tuple[str, ...], read: ReadBytes,
               alternatives: tuple[str, ...] = ()) -> _Info:
    """The rows of a split's info.csv with their line numbers; required columns checked."""
    listed = ", ".join(((f"{'|'.join(alternatives)}",) if alternatives else ()) + required)
    path = _info_file(sf, listed)
    text = _decode(read(path))
    lines = text.splitlines()
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError(path, f"empty file: expected a header with columns {listed}") from None
    missing = [c for c in required if c not in header]
    if alternatives and not any(a in header for a in alternatives):
        missing.insert(0, " or ".join(alternatives))
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}; found {', '.join(header) or 'none'} "
                               f"(a MAX info.csv has {listed})", line=1)
    rows = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise InputError(path, f"{len(cells)} cells, but the header has {len(header)} columns", line=line)
            rows.append((line, dict(zip(header, cells)), lines[line - 1]))
    except csv.Error as exc:
        raise InputError(path, f"not a CSV row ({exc})", line=reader.line_num) from None
    if not rows:
        raise InputError(path, "no rows: expected one row per spectrum")
    return _Info(path, path.relative_to(root).as_posix(), lines[0], rows)


def _read_listed(info: _Info, sf: SplitFolder, sub: str, name: str, line: int, col: str,
                 read: ReadBytes, used: set[str]) -> tuple[Path, bytes]:
    """The file a row names in ``sub/``, and its bytes; a missing one is the row's fault."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise InputError(info.path, f"file name {name!r} is not a file in {sub}/", line=line, field=col)
    path = sf.path / sub / name
    try:
        raw = read(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise InputError(info.path, f"names {sub}/{name}, which does not exist in {sf.path}",
                         line=line, field=col) from None
    used.add(f"{sub}/{name}")
    return path, raw


def _rows(info: _Info, col: str):
    """``(line, row, line as written, file name, core)`` per row: each file listed once, a core."""
    listed: dict[str, int] = {}
    for line, row, text in info.rows:
        name, core = row[col].strip(), row["core"].strip()
        if name in listed:
            raise InputError(info.path, f"spe/{name} is listed twice (also on line {listed[name]})",
                             line=line, field=col)
        if not core:
            raise InputError(info.path, "core id is empty", line=line, field="core")
        listed[name] = line
        yield line, row, text, name, core


def _name_meta(spe_name: str) -> dict:
    """Tube settings, run and replicate from the original ``.spe`` name, where it gives them."""
    stem = spe_name[:-4] if spe_name.lower().endswith(".spe") else spe_name
    try:
        fields = parse_bang_name(stem, spe_name) if stem.count("!") == 16 else parse_space_name(stem)
    except (InputError, ValueError):
        return {}
    keep = ("tube_kv", "tube_ma", "live_time_s", "filter", "run", "replicate")
    return {k: fields[k] for k in keep
            if k in fields and not (isinstance(fields[k], float) and math.isnan(fields[k]))}


# --------------------------------------------------------------------------- reading


def _read_pretrain(sf: SplitFolder, root: Path, source: str, calibration: Calibration, read: ReadBytes,
                   seen: dict[str, tuple[str, int]], used: set[str]) -> list[Spectrum]:
    info = _read_info(sf, root, PRETRAIN_COLUMNS, read)
    out = []
    for line, row, row_text, name, core in _rows(info, "dirname"):
        counts = read_counts(*_read_listed(info, sf, "spe", name, line, "dirname", read, used))
        depth = _number(row["composite_depth_mm"], info.path, line, "composite_depth_mm", "a depth in mm")
        position = _optional(row, "section_depth_mm", info.path, line, "a depth in mm")
        position = depth if math.isnan(position) else position
        cps = _optional(row, "cps", info.path, line, "a count rate")
        key = row.get("composite_id", "").strip() or f"{core}_{depth:g}"
        if key in seen:
            where, first = seen[key]
            raise InputError(info.path, f"composite id {key!r} occurs twice (also {where}, line {first}): "
                                        "one spectrum per core and depth", line=line, field="composite_id")
        seen[key] = (info.rel, line)
        meta = _name_meta(row.get("filename", "").strip())
        warnings = ()
        if "tube_kv" not in meta:
            warnings = (f"tube voltage not recorded in the MAX data set: assumed {ASSUMED_KV:g} kV "
                        "(MAX was trained on 10 kV spectra)",)
        out.append(Spectrum(
            counts=counts, core=core, section=row.get("section", "").strip(),
            section_top_mm=round(depth - position, 6), position_mm=position, depth_mm=depth,
            run=meta.get("run", ""), replicate=int(meta.get("replicate", 0)),
            tube_kv=float(meta.get("tube_kv", ASSUMED_KV)), tube_ma=meta.get("tube_ma", math.nan),
            live_time_s=meta.get("live_time_s", math.nan), filter=meta.get("filter", ""),
            total_cps=cps, calibration=calibration, instrument="avaatech",
            source=f"{source}/{_join(sf.rel, 'spe/' + name)}", header=f"{info.header}\n{row_text}",
            warnings=warnings))
    return out


def _read_finetune(sf: SplitFolder, root: Path, source: str, read: ReadBytes,
                   used: set[str]) -> tuple[LabTable, PairedSpectra]:
    info = _read_info(sf, root, FINETUNE_COLUMNS, read, alternatives=("dirname", "filename"))
    col = "dirname" if "dirname" in info.rows[0][1] else "filename"
    prop = canonical_property(sf.target or "target")
    ids, cores, mids, lines, values, means = [], [], [], [], [], []
    for line, row, _text, name, core in _rows(info, col):
        means.append(read_mean(*_read_listed(info, sf, "spe", name, line, col, read, used)))
        values.append(read_target(*_read_listed(info, sf, "target", name, line, col, read, used)))
        ids.append(name)
        cores.append(core)
        mids.append(_number(row["mid_depth_mm"], info.path, line, "mid_depth_mm", "a depth in mm"))
        lines.append(line)
    n = len(ids)
    samples = pd.DataFrame({
        "core": pd.Series(cores, dtype=object), "sample_id": pd.Series(ids, dtype=object),
        "top_mm": np.full(n, np.nan), "bottom_mm": np.full(n, np.nan),
        "mid_mm": np.asarray(mids, dtype=np.float64), "line": np.asarray(lines, dtype=np.int64),
        prop: np.asarray(values, dtype=np.float64)})
    flags = pd.DataFrame({prop: pd.Series([""] * n, dtype=object)}, index=samples.index)
    table_source = f"{source}/{info.rel}"
    table = LabTable(source=table_source, samples=samples, flags=flags, units={prop: "wt%"},
                     metadata={"format": FORMAT, "split": sf.split, "target_folder": sf.target,
                               "paired_spectra": f"{_join(sf.rel, 'spe')}: provided means not stored; "
                                                 f"the store re-derives them (+-{WINDOW_MM:g} mm window)"})
    paired = PairedSpectra(table_source, prop, sf.split, np.asarray(ids, dtype=object),
                           np.asarray(cores, dtype=object), np.asarray(mids, dtype=np.float64),
                           np.asarray(lines, dtype=np.int64), np.stack(means))
    return table, paired


def read_dir(path, *, source: str | None = None, calibration: Calibration | None = None,
             read_bytes: ReadBytes | None = None, **_options) -> MaxDataset:
    """Read a MAX data set folder (see the module docstring).

    ``source`` is the data set's name in the store (default: the folder's name); every
    spectrum's source is ``<source>/<path of its csv in the data set>`` and every table's
    ``<source>/<path of its info.csv>``. ``calibration`` overrides the 20 eV/channel default.
    ``read_bytes`` reads one file (the caller may fingerprint what is read on the way).
    Raises :class:`~xrfhub.errors.InputError` naming the file, line and column at fault.
    """
    root = Path(path)
    source = source or root.resolve().name
    read = read_bytes or (lambda p: Path(p).read_bytes())
    splits = split_folders(root)
    if not splits:
        raise InputError(root, "not a MAX data set: expected pretrain/<split>/ and/or finetune/<target>/<split>/ "
                               "folders, each with info.csv and spe/ (split: train or test)")
    calibration = calibration or DEFAULT_CALIBRATION
    data = MaxDataset(source)
    seen: dict[str, tuple[str, int]] = {}
    test_cores: set[str] = set()
    for sf in splits:
        data.splits[sf.rel or "."] = sf.split
        used: set[str] = set()  # "spe/<name>", "target/<name>" read for this split
        if sf.role == "pretrain":
            spectra = _read_pretrain(sf, root, source, calibration, read, seen, used)
            data.spectra.extend(spectra)
            cores = {s.core for s in spectra}
        else:
            table, paired = _read_finetune(sf, root, source, read, used)
            data.tables.append(table)
            data.paired.append(paired)
            cores = set(table.samples["core"])
        if sf.split.lower() == "test":
            test_cores |= cores
        for sub in ("spe", "target"):
            extra = _unlisted(sf.path / sub, sub, used)
            if extra:
                data.warnings.append(f"{source}/{_join(sf.rel, sub)}: {len(extra)} file(s) not listed in "
                                     f"info.csv ignored (e.g. {', '.join(extra[:3])})")
    data.test_cores = sorted(test_cores)
    data.tables = merge_targets(data.tables, source)
    return data


def merge_targets(tables: list[LabTable], source: str) -> list[LabTable]:
    """One table per split with every target as a column: MAX keeps each target in its own
    folder, but a row number names the same lab sample in all of them, and the store should
    hold that sample once (with CaCO3 and TOC), not once per property."""
    by_split: dict[str, list[LabTable]] = {}
    for t in tables:
        by_split.setdefault(t.metadata.get("split", ""), []).append(t)
    merged = []
    keys = ["core", "sample_id", "mid_mm"]
    for split, group in sorted(by_split.items()):
        if len(group) == 1:
            merged.append(group[0])
            continue
        samples = group[0].samples
        flags = group[0].flags.assign(**{k: samples[k] for k in keys})
        for t in group[1:]:
            prop_cols = [c for c in t.samples.columns if c not in samples.columns]
            samples = samples.merge(t.samples[keys + prop_cols], on=keys, how="outer")
            flags = flags.merge(t.flags.assign(**{k: t.samples[k] for k in keys}), on=keys, how="outer")
        flags = flags.drop(columns=keys).fillna("").reset_index(drop=True)
        samples = samples.reset_index(drop=True)
        samples["line"] = samples["line"].fillna(-1).astype(np.int64)
        units = {k: v for t in group for k, v in t.units.items()}
        meta = {"format": FORMAT, "split": split, "targets": ", ".join(sorted(units)),
                "merged_from": "; ".join(t.source for t in group)}
        merged.append(LabTable(source=f"{source}/finetune/{split}", samples=samples, flags=flags, units=units,
                               metadata=meta))
    return merged


# --------------------------------------------------------------------------- paired means


def paired_difference(paired: PairedSpectra, derived) -> np.ndarray:
    """Per sample: the largest |derived - provided| over channels, relative to the provided
    spectrum's maximum (at least 1 count). NaN where ``derived`` has no spectrum (a NaN row)."""
    derived = np.asarray(derived, dtype=np.float64)
    if derived.shape != paired.mean.shape:
        raise ConfigError(f"derived means have shape {derived.shape}, but {paired.table} provides "
                          f"{paired.mean.shape}: pass one row per sample, in the table's order")
    scale = np.maximum(np.abs(paired.mean).max(axis=1), 1.0)
    missing = ~np.isfinite(derived).all(axis=1)
    with np.errstate(invalid="ignore"):
        diff = np.abs(derived - paired.mean).max(axis=1) / scale
    diff[missing] = np.nan
    return diff


def compare_paired(paired: PairedSpectra, derived, *, rtol: float = 1e-3, examples: int = 3) -> list[str]:
    """Warnings where the store's mean spectra (``derived``, one row per sample of ``paired``,
    NaN rows for unmatched samples) differ from the ones the data set provides.

    A difference above ``rtol`` (relative to the spectrum's maximum) means the store paired the
    sample with other spectra than MAX did (a different window, spectra missing or added);
    the store keeps its own mean, so the warning says which samples to look at.
    """
    diff = paired_difference(paired, derived)
    n = len(paired)
    out = []

    def where(i):
        return f"{paired.sample_id[i]} (core {paired.core[i]}, {paired.mid_mm[i]:g} mm, line {paired.line[i]})"

    missing = np.flatnonzero(np.isnan(diff))
    if missing.size:
        out.append(f"{paired.table}: {missing.size} of {n} {paired.target} sample(s) have no spectrum in the "
                   f"store's window, so their provided mean spectrum cannot be re-derived: "
                   + ", ".join(where(i) for i in missing[:examples]) + (" ..." if missing.size > examples else ""))
    bad = np.flatnonzero(np.nan_to_num(diff, nan=0.0) > rtol)
    if bad.size:
        worst = bad[np.argsort(-diff[bad], kind="stable")]
        out.append(f"{paired.table}: the store's mean spectrum differs from the provided one for {bad.size} of "
                   f"{n} {paired.target} sample(s) (largest: {diff[worst[0]]:.3g} of the spectrum's maximum at "
                   + ", ".join(where(i) for i in worst[:examples]) + (" ..." if bad.size > examples else "")
                   + "); the store keeps the mean of the raw spectra it holds")
    return out
