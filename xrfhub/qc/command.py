"""``xrfhub qc`` as a command: compute the flags over a generation and commit them.

Kept apart from ``qc.store`` (the ``qc`` kind: flags in NeXus and the hub), which the write path
imports, so that the write path never reaches back to the command that drives it.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import StoreError
from ..records import CoreRecord, Process
from ..store import layout
from .params import QCParams
from .store import DEFAULT_POLICY, KIND, PROCESS, SERIES, QCResult, _rows_in_tables, left_out
from .verdicts import SEP


def compute(records: dict[str, CoreRecord], params: QCParams, *, progress: bool = False) -> QCResult:
    """Run every check over the spectra and element points of ``records`` (nothing is written)."""
    from ..build import concat_spectra
    from ..elements import elements_dataset as _elements_dataset
    from . import elements, spectra

    result = QCResult(params)
    blocks = concat_spectra(records)
    items = list(blocks.items())
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="qc spectra", unit="group")
    for n_ch, block in items:
        feats = spectra.measure(block.counts, block.coords, params)
        verdicts, series = spectra.check(feats, block.coords, params)
        table = block.coords[["core", "scan", "depth_mm", "run", "tube_kv", "replicate"]].reset_index(drop=True)
        table = pd.concat([table, series[list(SERIES)]], axis=1)
        table["qc_flag"], table["qc_reasons"] = verdicts.flags(), verdicts.reason_strings()
        result.tables[layout.spectra_group(n_ch)] = table
        elements_cols = {el: feats[f"{el}_net"].to_numpy() / np.maximum(feats["total_counts"].to_numpy(), 1.0)
                         for el in _principal_names(feats)}
        result.principal[layout.spectra_group(n_ch)] = pd.DataFrame(elements_cols)
    ds = _elements_dataset(records)
    if ds is not None:
        verdicts, series = elements.check(ds, params)
        table = pd.DataFrame({c: ds[c].values for c in ("core", "source", "depth_mm", "tube_kv") if c in ds.coords})
        table["row"] = _rows_in_tables(records)
        table = pd.concat([table, series.reindex(columns=list(SERIES))], axis=1)
        table["qc_flag"], table["qc_reasons"] = verdicts.flags(), verdicts.reason_strings()
        result.tables["elements"] = table
        area = np.asarray(ds["area"].values, dtype=float) if "area" in ds else None
        if area is not None:
            lines = [str(x) for x in ds["line"].values]
            idx = [i for i, ln in enumerate(lines) if elements._is_element(ln)]
            summed = np.nansum(np.clip(area[:, idx], 0, None), axis=1)
            seen = [i for i in idx if np.isfinite(area[:, i]).any()]
            med = np.full(len(idx), np.nan)
            med[[idx.index(i) for i in seen]] = np.nanmedian(area[:, seen], axis=0) if seen else []
            top = [idx[i] for i in np.argsort(-np.nan_to_num(np.asarray(med, float), nan=-np.inf))[:params.principal_elements]]
            result.principal["elements"] = pd.DataFrame({lines[i]: area[:, i] / np.where(summed > 0, summed, np.nan)
                                                        for i in top})
    return result


def _principal_names(feats: pd.DataFrame, k: int = 4) -> list[str]:
    from .spectra import ELEMENT_LINES

    med = {el: np.nanmedian(feats[f"{el}_net"]) for el in ELEMENT_LINES if feats[f"{el}_net"].notna().any()}
    return [el for el, m in sorted(med.items(), key=lambda kv: -kv[1]) if m > 0][:k]


def attach(records: dict[str, CoreRecord], result: QCResult, stamp: str) -> set[str]:
    """Replace every core's ``qc`` process with the new result; returns the cores changed."""
    parameters = {"thresholds": result.params.to_dict(), "xrfhub_version": __version__,
                  "policy_default": DEFAULT_POLICY}
    per_core: dict[str, dict[str, np.ndarray]] = {}
    for group, table in result.tables.items():
        prefix = "elements" if group == "elements" else group.replace("/", "_")
        key_cols = ("source", "row", "depth_mm") if group == "elements" else ("scan", "depth_mm")
        for core, sub in table.groupby("core", sort=True):
            data = per_core.setdefault(str(core), {})
            for col in key_cols:
                data[f"{prefix}__{col}"] = sub[col].to_numpy(dtype=object if col in ("scan", "source") else None)
            data[f"{prefix}__flag"] = sub["qc_flag"].to_numpy(dtype=object)
            data[f"{prefix}__reasons"] = sub["qc_reasons"].to_numpy(dtype=object)
            for col in SERIES:
                data[f"{prefix}__{col}"] = sub[col].to_numpy(dtype=np.float64)
    changed = set()
    for core, rec in records.items():
        had = any(p.name == PROCESS for p in rec.processes)
        rec.processes = [p for p in rec.processes if p.name != PROCESS]
        if core in per_core:
            rec.processes.append(Process(PROCESS, "xrfhub", __version__, stamp, parameters, per_core[core]))
        if had or core in per_core:
            changed.add(core)
    return changed


def run(store, params: QCParams = QCParams(), *, progress: bool = False, wait: float = 0.0,
        alignment: str | None = None) -> QCResult:
    """Compute QC over the store's current generation and commit it as a new generation.

    ``alignment`` sets which flags depth alignment leaves out from now on (``POLICIES``; None:
    as the store had it). The new generation's alignment uses the new flags.
    """
    from dataclasses import replace

    from ..build import AlignParams, write_generation
    from ..kinds import load_records
    from ..store.generations import Store, now_iso

    store = store if isinstance(store, Store) else Store(store)
    with store.writer(wait=wait):
        current = store.current()
        if current is None:
            raise StoreError(f"{store.root}: the store is empty; nothing to check")
        manifest = current.manifest()
        records = load_records(current, progress=progress)
        result = compute(records, params, progress=progress)
        if not result.tables:
            raise StoreError(f"{store.root}: holds no spectra and no element tables; nothing to check")
        changed = attach(records, result, now_iso())
        align = AlignParams(**manifest.get("alignment", {}))
        if alignment is not None:
            left_out([], alignment)  # refuses an unknown policy before anything is written
            align = replace(align, qc=alignment)
        gen = write_generation(store, current, records, changed, manifest["sources"],
                               align=align, core_map=manifest.get("core_map"),
                               event={"action": "qc", "thresholds": params.to_dict(), "summary": result.counts()},
                               progress=progress)
    result.generation = gen.name
    return result


def training_record(store, policy: str) -> dict:
    """What a training run records about QC: the policy, the spectra it left out, the pairs' alignment."""
    from .. import api
    from ..store import hub

    gen, _ = api.resolve(store)
    hub_path = f"{gen}/{layout.HUB}"
    present = hub.groups(hub_path)
    out = {"policy": policy, "qc_ran": bool(present.get(KIND)), "left_out_spectra": {}}
    for g in present.get(KIND, []):
        ds = hub.open_group(hub_path, g)
        if ds.attrs.get("target", "").startswith("spectra/"):
            flags, reasons = ds["qc_flag"].values, ds["qc_reasons"].values
            leave = left_out(flags, policy)
            by_reason: dict[str, int] = {}
            for why in reasons[leave]:
                for code in str(why).split(SEP):
                    if code:
                        by_reason[code] = by_reason.get(code, 0) + 1
            out["left_out_spectra"][ds.attrs["target"]] = {
                "n": int(leave.sum()), "by_flag": {str(f): int(n) for f, n in zip(*np.unique(flags[leave], return_counts=True))},
                "by_reason": by_reason}
            out["thresholds"] = json.loads(ds.attrs.get("provenance", "{}")).get("thresholds", {})
    out["alignment"] = api.manifest(store).get("alignment_summary", {}).get("qc", {})
    return out


def write_record(path, store, policy: str) -> None:
    """Write :func:`training_record` as JSON (an evaluation's ``qc.json``)."""
    from pathlib import Path

    Path(path).write_text(json.dumps(training_record(store, policy), indent=1, default=str))


