"""The ``qc`` kind: flags kept as NXprocess ``qc`` per core, served by the hub (``qc.command`` computes them).

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

from ..errors import StoreError
from ..records import CoreRecord
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

def _rows_in_tables(records: dict[str, CoreRecord]) -> np.ndarray:
    """Each element point's row in its own table, in the order the hub concatenates them."""
    return np.concatenate([np.arange(len(t.points)) for c in sorted(records) for t in records[c].elements]
                          or [np.zeros(0, np.int64)]).astype(np.int64)

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

def core_spectra_rows(rec: CoreRecord, block) -> dict[str, np.ndarray]:
    """One core's rows of ``qc/spectra_ch<N>`` (its rows of the spectra group, in ``block``'s order).

    The hub writes these core by core (``kinds.qc``), so an append computes the rows of the new
    cores only; a core that arrived after the last ``xrfhub qc`` is ``indeterminate``/``not_checked``.
    """
    got = spectra_flags({rec.core: rec}, block)
    n = len(block)
    if got is None:
        flags, reasons = np.full(n, "indeterminate", dtype=object), np.full(n, "not_checked", dtype=object)
        series = {c: np.full(n, np.nan) for c in SERIES}
    else:
        flags, reasons, frame = got
        series = {c: frame[c].to_numpy(dtype=np.float64) for c in SERIES}
    return {"qc_flag": flags, "qc_reasons": reasons, **series}

def spectra_group_dataset(target: str, coords: dict[str, np.ndarray], arrays: dict[str, np.ndarray],
                          provenance: str) -> xr.Dataset:
    """The ``qc/...`` dataset over rows of a spectra group from per-row arrays (see ``hub_datasets``)."""
    dim = layout.SPECTRUM
    data = {"qc_flag": ((dim,), arrays["qc_flag"], {"long_name": "quality flag", "flag_values": " ".join(FLAGS)}),
            "qc_reasons": ((dim,), arrays["qc_reasons"], {"long_name": f"reason codes ('{SEP}'-separated)"})}
    for c in SERIES:
        data[c] = ((dim,), np.asarray(arrays[c], dtype=np.float64), {})
    return xr.Dataset(data, coords={c: ((dim,), v) for c, v in coords.items()},
                      attrs={"kind": KIND, "target": target, "provenance": provenance})

def provenance_of(rec: CoreRecord) -> str | None:
    """The thresholds a core's QC ran with, as the hub group's ``provenance`` attribute (None: no QC)."""
    found = _process_data({rec.core: rec})
    return json.dumps(found[rec.core][0], sort_keys=True, default=str) if found else None

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

def format_counts(counts: dict) -> list[str]:
    """Text lines of :func:`summarize`'s counts: per group and core, flags then reasons."""
    lines = ["quality flags (xrfhub qc):"]
    for group, per_core in counts.items():
        for core, c in per_core.items():
            flags = ", ".join(f"{c['flags'][f]} {f}" for f in FLAGS if f in c["flags"])
            reasons = ", ".join(f"{r} {n}" for r, n in sorted(c["reasons"].items(), key=lambda kv: -kv[1]))
            lines.append(f"  {group}  {core:<16} {flags}" + (f"  ({reasons})" if reasons else ""))
    return lines
