"""QC in the store: computed from a generation, kept as NXprocess ``qc`` per core, served by the hub.

The NeXus files stay the source of truth: each core's ``qc`` process holds its spectra's flags
keyed by (scan, depth) and its element points' flags keyed by (source table, row), with the
thresholds and the xrfhub version as parameters. The hub's ``qc/<group>`` datasets (rows aligned
with ``spectra/ch<N>`` and ``elements``) are rebuilt from them like every other kind, and
``xrfhub.open`` joins them to those groups as the coordinates ``qc_flag`` and ``qc_reasons``.
Rows that arrived after the last ``xrfhub qc`` are ``indeterminate`` with reason ``not_checked``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from ..errors import StoreError
from ..records import CoreRecord, Process
from ..store import layout
from .params import QCParams
from .verdicts import FLAGS, SEP

PROCESS = "qc"
KIND = "qc"
#: Flags left out where they would bias results, by policy (``keep``: nothing left out).
POLICIES = {"exclude": ("bad", "suspect"), "strict": ("bad", "suspect", "indeterminate"), "keep": ()}
DEFAULT_POLICY = "exclude"
SERIES = ("throughput_cps", "throughput_ratio", "scatter_ratio", "ar_fraction", "peak_shift_kev")


def group_for(target: str) -> str:
    """The hub group holding the flags of ``target`` (``spectra/ch2048`` -> ``qc/spectra_ch2048``)."""
    return f"{KIND}/{target.replace('/', '_')}"


def left_out(flags, policy: str = DEFAULT_POLICY) -> np.ndarray:
    """Mask of the rows a policy leaves out."""
    if policy not in POLICIES:
        raise StoreError(f"unknown QC policy {policy!r}; policies: {', '.join(POLICIES)}")
    return np.isin(np.asarray(flags, dtype=object), POLICIES[policy])


@dataclass
class QCResult:
    """What one ``xrfhub qc`` computed: per target group, the rows' coordinates, flags and series."""

    params: QCParams
    generation: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    principal: dict[str, pd.DataFrame] = field(default_factory=dict)

    def counts(self) -> dict:
        """Flags and reasons per core (what ``xrfhub info`` shows)."""
        return summarize({g: (t["core"].to_numpy(), t["qc_flag"].to_numpy(), t["qc_reasons"].to_numpy())
                          for g, t in self.tables.items()})


# ---------------------------------------------------------------------------- computing


def compute(records: dict[str, CoreRecord], params: QCParams, *, progress: bool = False) -> QCResult:
    """Run every check over the spectra and element points of ``records`` (nothing is written)."""
    from ..build import _elements_dataset, concat_spectra
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


def _rows_in_tables(records: dict[str, CoreRecord]) -> np.ndarray:
    """Each element point's row in its own table, in the order the hub concatenates them."""
    return np.concatenate([np.arange(len(t.points)) for c in sorted(records) for t in records[c].elements]
                          or [np.zeros(0, np.int64)]).astype(np.int64)


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

    from ..build import AlignParams, load_records, write_generation
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


# ---------------------------------------------------------------------------- the hub


def _process_data(records: dict[str, CoreRecord]) -> dict[str, tuple[dict, dict]]:
    return {c: (p.parameters, p.data) for c, r in records.items() for p in r.processes if p.name == PROCESS}


def spectra_flags(records: dict[str, CoreRecord], block) -> tuple[np.ndarray, np.ndarray, pd.DataFrame] | None:
    """(flags, reasons, series) over the rows of a concatenated spectra block; None without QC."""
    found = _process_data(records)
    if not found:
        return None
    prefix = layout.spectra_group(block.n_channels).replace("/", "_")
    coords = block.coords
    index = {(c, s, round(float(d), 6)): i for i, (c, s, d) in enumerate(
        zip(coords["core"].astype(str), coords["scan"].astype(str), coords["depth_mm"].astype(float)))}
    n = len(coords)
    flags = np.full(n, "indeterminate", dtype=object)
    reasons = np.full(n, "not_checked", dtype=object)
    series = {c: np.full(n, np.nan) for c in SERIES}
    for core, (_params, data) in found.items():
        if f"{prefix}__scan" not in data:
            continue
        for j, (s, d) in enumerate(zip(data[f"{prefix}__scan"], data[f"{prefix}__depth_mm"])):
            i = index.get((core, str(s), round(float(d), 6)))
            if i is not None:
                flags[i], reasons[i] = str(data[f"{prefix}__flag"][j]), str(data[f"{prefix}__reasons"][j])
                for c in SERIES:
                    series[c][i] = data[f"{prefix}__{c}"][j]
    return flags, reasons, pd.DataFrame(series)


def element_flags(records: dict[str, CoreRecord], elements_ds: xr.Dataset):
    """(flags, reasons, series) over the rows of the elements dataset; None without QC."""
    found = _process_data(records)
    if not found:
        return None
    cores = elements_ds["core"].values.astype(str)
    sources = elements_ds["source"].values.astype(str)
    rows = _rows_in_tables(records)
    depth = elements_ds["depth_mm"].values.astype(float)
    index = {(c, s, int(r)): i for i, (c, s, r) in enumerate(zip(cores, sources, rows))}
    n = len(cores)
    flags = np.full(n, "indeterminate", dtype=object)
    reasons = np.full(n, "not_checked", dtype=object)
    series = {c: np.full(n, np.nan) for c in SERIES}
    for core, (_params, data) in found.items():
        if "elements__source" not in data:
            continue
        for j, (s, r, d) in enumerate(zip(data["elements__source"], data["elements__row"], data["elements__depth_mm"])):
            i = index.get((core, str(s), int(r)))
            if i is not None and abs(depth[i] - float(d)) < 1e-6:  # the same point, not a replaced table's row
                flags[i], reasons[i] = str(data["elements__flag"][j]), str(data["elements__reasons"][j])
                for c in SERIES:
                    series[c][i] = data[f"elements__{c}"][j]
    return flags, reasons, pd.DataFrame(series)


def hub_datasets(records: dict[str, CoreRecord], spectra: dict, spectra_ds: dict, elements_ds) -> dict[str, xr.Dataset]:
    """The hub's ``qc/...`` datasets, rows aligned with the groups they judge (empty without QC)."""
    found = _process_data(records)
    if not found:
        return {}
    params = next(iter(found.values()))[0]
    out = {}
    targets = [(layout.spectra_group(n), spectra_flags(records, spectra[n]), spectra_ds[n], layout.SPECTRUM)
               for n in spectra]
    if elements_ds is not None:
        targets.append(("elements", element_flags(records, elements_ds), elements_ds, layout.POINT))
    for target, got, base, dim in targets:
        flags, reasons, series = got
        data = {"qc_flag": ((dim,), flags, {"long_name": "quality flag", "flag_values": " ".join(FLAGS)}),
                "qc_reasons": ((dim,), reasons, {"long_name": f"reason codes ('{SEP}'-separated)"})}
        for c in SERIES:
            data[c] = ((dim,), series[c].to_numpy(dtype=np.float64), {})
        coords = {c: base[c].variable for c in ("core", "depth_mm", "scan", "source", "tube_kv") if c in base.coords}
        out[group_for(target)] = xr.Dataset(data, coords=coords, attrs={
            "kind": KIND, "target": target, "provenance": json.dumps(params, sort_keys=True, default=str)})
    return out


def join_flags(ds: xr.Dataset, hub_path, present: dict, group: str) -> xr.Dataset:
    """``ds`` (a spectra or elements group) with ``qc_flag`` and ``qc_reasons`` as coordinates, if QC ran."""
    from ..store import hub

    want = group_for(group)
    if want not in present.get(KIND, []):
        return ds
    qc = hub.open_group(hub_path, want)
    dim = layout.SPECTRUM if layout.SPECTRUM in ds.dims else layout.POINT
    if qc.sizes.get(dim) != ds.sizes.get(dim):
        raise StoreError(f"{want} has {qc.sizes.get(dim)} rows, {group} {ds.sizes.get(dim)}: run `xrfhub rebuild`")
    ds = ds.assign_coords(qc_flag=qc["qc_flag"].load().variable.astype(object),
                          qc_reasons=qc["qc_reasons"].load().variable.astype(object))
    ds.attrs["qc"] = qc.attrs.get("provenance", "{}")
    return ds


# ---------------------------------------------------------------------------- summaries


def summarize(groups: dict[str, tuple]) -> dict:
    """``{group: {core: {"flags": {flag: n}, "reasons": {code: n}}}}`` from (core, flag, reasons) arrays."""
    out = {}
    for group, (cores, flags, reasons) in groups.items():
        per = {}
        for core, flag, why in zip(cores, flags, reasons):
            d = per.setdefault(str(core), {"flags": {}, "reasons": {}})
            d["flags"][str(flag)] = d["flags"].get(str(flag), 0) + 1
            for code in str(why).split(SEP):
                if code:
                    d["reasons"][code] = d["reasons"].get(code, 0) + 1
        out[group] = {c: per[c] for c in sorted(per)}
    return out


def info(hub_path, present: dict) -> dict:
    """Flags per core and reason for every QC'd group of a hub ({} when QC never ran)."""
    from ..store import hub

    groups = {}
    for g in present.get(KIND, []):
        ds = hub.open_group(hub_path, g)
        groups[ds.attrs.get("target", g)] = (ds["core"].values, ds["qc_flag"].values, ds["qc_reasons"].values)
    return summarize(groups)


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


def format_counts(counts: dict) -> list[str]:
    """Text lines of :func:`summarize`'s counts: per group and core, flags then reasons."""
    lines = ["quality flags (xrfhub qc):"]
    for group, per_core in counts.items():
        for core, c in per_core.items():
            flags = ", ".join(f"{c['flags'][f]} {f}" for f in FLAGS if f in c["flags"])
            reasons = ", ".join(f"{r} {n}" for r, n in sorted(c["reasons"].items(), key=lambda kv: -kv[1]))
            lines.append(f"  {group}  {core:<16} {flags}" + (f"  ({reasons})" if reasons else ""))
    return lines
