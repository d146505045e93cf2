"""``xrfhub validate``: is every NeXus file valid, and does the hub agree with them?

Checks, per core: the file opens (a truncated HDF5 file does not), it passes our application
definition (nexusformat's ``nxcheck`` and our own structural validator), its counts match the
checksums recorded at write time. Then, per hub group, every array is read block of rows by
block of rows and compared with the block checksums stored with the group at write time (a
damaged chunk either fails to decode or differs), and the hub's rows of each core are compared
with the counts in its NeXus file. Each problem names the core(s) and the command that repairs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import kinds
from .errors import StoreError
from .store import hub, layout, nxvalidate
from .store.generations import Generation, Store


@dataclass
class ValidationReport:
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self, *, limit: int = 20) -> str:
        """What was checked (the first ``limit`` items by name), then every problem."""
        lines = [f"checked {len(self.checked)} item(s):"]
        lines += [f"  {item}" for item in self.checked[:limit]]
        if len(self.checked) > limit:
            lines.append(f"  ... and {len(self.checked) - limit} more")
        lines += [f"PROBLEM: {p}" for p in self.problems]
        lines.append("store is valid" if self.ok else f"{len(self.problems)} problem(s) found")
        return "\n".join(lines)


def validate(store, *, nxcheck: bool = True) -> ValidationReport:
    """Check the current generation; ``nxcheck=False`` skips nexusformat's (slow) definition check."""
    store = store if isinstance(store, Store) else Store(store)
    gen = store.current()
    if gen is None:
        raise StoreError(f"{store.root}: the store is empty; nothing to validate")
    manifest = gen.manifest()
    report = ValidationReport()
    nexus_digests: dict[str, dict[str, str]] = {}  # core -> scan -> digest of the counts in its file
    for core, info in sorted(manifest["cores"].items()):
        path = gen.path / info["file"]
        report.checked.append(f"NeXus file of core {core}: {info['file']} (application definition, checksums)")
        problems, digests, readable = _check_core_file(path, info, nxcheck)
        if readable:
            nexus_digests[core] = digests
        for p in problems:
            report.problems.append(f"core {core} ({info['file']}): {p}. Repair: "
                                   + (_altered_repair(gen) if readable else _unreadable_repair(store, gen, info)))
    _check_hub(gen, manifest, nexus_digests, report)
    return report


# ---------------------------------------------------------------------------- NeXus files


def _check_core_file(path: Path, info: dict, run_nxcheck: bool) -> tuple[list[str], dict[str, str], bool]:
    """Problems of one core file, the digests of its counts per scan, and whether it could be read."""
    if not path.exists():
        return ["file missing"], {}, False
    try:
        record = kinds.read_core(path)
    except Exception as exc:  # noqa: BLE001 - h5py raises RuntimeError too for a file cut mid-write
        return [f"cannot be read ({type(exc).__name__}: {exc})"], {}, False
    digests = {scan: hub.array_sha256(block.counts.astype(np.uint32)) for scan, block in record.scans.items()}
    problems = list(nxvalidate.validate_core_file(path))
    if run_nxcheck:
        n_errors, _text = nxvalidate.nxcheck(path)
        if n_errors:
            problems.append(f"nxcheck reports {n_errors} error(s) against the application definition")
    for scan, expected in info["scans"].items():
        if scan not in digests:
            problems.append(f"scan {scan} missing")
        elif digests[scan] != expected["counts_sha256"]:
            problems.append(f"counts of scan {scan} differ from the checksum recorded at write time "
                            "(the file was altered or replaced after the commit)")
    return problems, digests, True


def _altered_repair(gen: Generation) -> str:
    return (f"if this file is the version you want, `xrfhub rebuild {gen.root}` makes the hub and the "
            f"manifest follow it (the NeXus files are the source of truth); otherwise restore the original "
            f"from {layout.HISTORY}/ or re-ingest the core's source files with --replace")


def _unreadable_repair(store: Store, gen: Generation, info: dict) -> str:
    intact = _intact_copy(store, gen, info)
    if intact is not None:
        return f"copy the intact version {intact} over {gen.path / info['file']}"
    # re-ingesting the core's sources does not help: they are unchanged, so ingest skips them
    return (f"restore the file from a backup or from {layout.HISTORY}/ (no intact copy is there or in an older "
            "generation); failing that, ingest the original source files into a new store. Until then "
            "ingest and rebuild stop at this core")


def _intact_copy(store: Store, gen: Generation, info: dict) -> Path | None:
    """Another file (not a hard link of the damaged one) whose counts match the manifest's checksums.

    Older generations hard-link unchanged core files, so they share the damage of an in-place
    truncation; a file replaced by a new inode, or a copy in ``history/``, may still be intact.
    """
    target = gen.path / info["file"]
    try:
        inode = target.stat().st_ino
    except OSError:
        inode = None
    stem = Path(info["file"]).stem
    candidates = sorted((store.root / layout.GENERATIONS).glob(f"g*/{info['file']}"), reverse=True)
    candidates += sorted(store.history_dir.glob(f"{stem}.g*{layout.NEXUS_SUFFIX}"), reverse=True)
    for path in candidates:
        try:
            if path == target or path.stat().st_ino == inode:
                continue
            record = kinds.read_core(path)
        except Exception:  # noqa: BLE001 - a damaged candidate is simply not an intact copy
            continue
        if all(s in record.scans and hub.array_sha256(record.scans[s].counts.astype(np.uint32)) == e["counts_sha256"]
               for s, e in info["scans"].items()):
            return path
    return None


# ---------------------------------------------------------------------------- the hub


@dataclass
class _Damage:
    """A block of rows of one array that cannot be read or differs from its write-time digest."""

    array: str
    start: int
    stop: int
    unreadable: bool
    detail: str = ""


def _check_hub(gen: Generation, manifest: dict, nexus_digests: dict, report: ValidationReport) -> None:
    hub_path = gen.hub_path
    try:
        present = hub.groups(hub_path)
    except StoreError as exc:
        report.problems.append(f"hub: {exc}")
        return
    for kind, groups in present.items():
        for group in groups:
            report.checked.append(f"hub group {group} (block checksums" + (", rows against the NeXus counts)"
                                                                        if kind == "spectra" else ")"))
            damaged_cores = _check_group(hub_path, group, gen.root, report)
            if kind == "spectra":
                _compare_with_nexus(hub_path, group, nexus_digests, manifest, damaged_cores, report, gen.root)


def _open(hub_path, group: str):
    import xarray as xr

    # chunks=None: lazily indexed arrays, so a slice reads only the chunks it touches
    return xr.open_zarr(hub_path, group=group, consolidated=False, zarr_format=3, chunks=None)


def _check_group(hub_path, group: str, root, report: ValidationReport) -> set[str]:
    """Check every array of a group block by block; report damage naming cores; return those cores."""
    try:
        ds = _open(hub_path, group)
        stored = hub.stored_checksums(hub_path, group)
        blocks = hub.stored_block_checksums(hub_path, group)
    except Exception as exc:  # noqa: BLE001 - any metadata/IO failure means a damaged group
        report.problems.append(f"hub group {group}: cannot be opened ({type(exc).__name__}: {exc}). "
                               f"Repair: xrfhub rebuild {root}")
        return set()
    damage = []
    for name, var in ds.variables.items():
        if name in stored:
            damage += _check_array(name, var, stored[name], blocks.get(name))
    cores = set()
    for d in damage:
        what = "cannot be read" if d.unreadable else "differs from its write-time checksum"
        where, named = _locate(ds, d)
        cores |= named
        detail = f" ({d.detail})" if d.detail else ""
        report.problems.append(f"hub group {group}: array {d.array!r}, {where}: {what}{detail}. "
                               f"Repair: xrfhub rebuild {root}")
    return cores


def _check_array(name: str, var, whole: str, blocks: dict | None) -> list[_Damage]:
    """Read ``var`` one block of rows at a time; blocks that fail to decode or differ are damage."""
    n = var.shape[0] if var.ndim else 1
    if blocks is None:  # one block: the whole array
        spans, digests = [(0, n)], [whole]
        digest = hub.array_sha256
    else:
        rows = int(blocks["rows"])
        spans = [(i, min(i + rows, n)) for i in range(0, n, rows)]
        digests = blocks["digests"]
        digest = hub.block_digest
        if len(digests) != len(spans):
            return [_Damage(name, 0, n, False, f"{n} rows where {len(digests)} blocks of {rows} were written")]
    damage = []
    for (start, stop), expected in zip(spans, digests):
        try:
            values = np.asarray((var[start:stop] if var.ndim else var).values)
        except Exception as exc:  # noqa: BLE001 - a codec or IO failure is what a damaged chunk gives
            damage.append(_Damage(name, start, stop, True, f"{type(exc).__name__}: {exc}"))
            continue
        if values.dtype.kind == "T":  # numpy StringDType from zarr: hash like the object strings written
            values = values.astype(object)
        if digest(values) != expected:
            damage.append(_Damage(name, start, stop, False))
    return damage


def _locate(ds, d: _Damage) -> tuple[str, set[str]]:
    """Say which rows (and so which cores) a damaged block holds, when the array is row-indexed."""
    var = ds.variables[d.array]
    core = ds.variables.get("core")
    if var.ndim == 0 or core is None or core.ndim != 1 or var.dims[0] != core.dims[0]:
        return "whole array", set()
    rows = f"{var.dims[0]} rows {d.start}-{d.stop - 1}"
    try:
        names = sorted({str(c) for c in np.asarray(core[d.start:d.stop].values).tolist()})
    except Exception:  # noqa: BLE001 - the core coordinate itself is damaged: rows are all we can say
        return f"{rows} (cores unknown: the core coordinate cannot be read)", set()
    return f"{rows}, core(s) {', '.join(names)}", set(names)


def _compare_with_nexus(hub_path, group, nexus_digests, manifest, skip: set[str], report, root) -> None:
    """The hub's rows of each core must hold exactly the counts of the core's NeXus file."""
    try:
        ds = _open(hub_path, group)
        cores = np.asarray(ds["core"].values).astype(object)
        scans = np.asarray(ds["scan"].values).astype(object)
    except Exception:  # noqa: BLE001 - already reported by the block check
        return
    n_ch = ds.sizes[layout.CHANNEL]
    # each core's rows, found once (a scan per core over a million rows would cost cores x rows)
    rows_of = pd.Series(np.arange(len(cores))).groupby(pd.Series(cores).astype(str).to_numpy()).indices
    for core, info in sorted(manifest["cores"].items()):
        if core in skip or core not in nexus_digests:
            continue  # damage already reported for these rows, or the file itself is unreadable
        mine = {s: v for s, v in info["scans"].items() if v["channels"] == n_ch}
        rows = np.asarray(rows_of.get(core, np.zeros(0, np.int64)), dtype=np.int64)
        if len(rows) != sum(v["n"] for v in mine.values()):
            report.problems.append(f"hub {group} holds {len(rows)} spectra of core {core}, its NeXus file "
                                   f"{sum(v['n'] for v in mine.values())}. Repair: xrfhub rebuild {root}")
            continue
        for scan in mine:
            sel = rows[scans[rows] == scan]
            try:
                # a scan's rows are contiguous (store order: core, scan, depth): read just that range
                counts = (np.zeros((0, n_ch), np.uint32) if len(sel) == 0 else
                          np.asarray(ds["counts"][sel.min():sel.max() + 1].values)[sel - sel.min()])
            except Exception as exc:  # noqa: BLE001
                report.problems.append(f"hub {group}: counts of core {core} cannot be read ({exc}). "
                                       f"Repair: xrfhub rebuild {root}")
                break
            if hub.array_sha256(counts.astype(np.uint32)) != nexus_digests[core].get(scan):
                report.problems.append(f"hub {group}: counts of core {core}, scan {scan} disagree with its "
                                       f"NeXus file {info['file']}. Repair: xrfhub rebuild {root}")
