"""``xrfhub info``: what a store holds, in numbers a geochemist and a data manager check first."""
from __future__ import annotations

import numpy as np

from . import api
from .store import hub, layout


def info(store) -> dict:
    """A JSON-able summary: kinds, cores, spectra, depth ranges, scan settings, samples, matches."""
    gen, pointer = api.resolve(store)
    manifest = api.manifest(store)
    hub_path = f"{gen}/{layout.HUB}"
    kinds = {}
    for kind, groups in hub.groups(hub_path).items():
        kinds[kind] = {g: dict(hub.open_group(hub_path, g).sizes) for g in groups}
    out = {
        "store": str(store), "generation": pointer["current"], "updated": pointer.get("updated"),
        "xrfhub_version": manifest.get("xrfhub_version"), "kinds": kinds,
        "n_sources": len(manifest["sources"]),
        "cores": {c: {k: v for k, v in m.items() if k != "scans"} | {"scans": sorted(m["scans"])}
                  for c, m in sorted(manifest["cores"].items())},
        "alignment": manifest.get("alignment"), "matches": manifest.get("alignment_summary", {}),
        "warnings": manifest.get("warnings", []),
        "history": manifest.get("history", []),
        "interrupted_writes": _leftovers(store),
    }
    if "spectra" in kinds:
        ds = api.open(store, "spectra", index=False)
        out["scan_settings"] = {
            name: _setting(ds[name].values)
            for name in ("tube_kv", "tube_ma", "live_time_s", "filter", "calibration_source", "instrument")
        }
        _spectra_by_voltage(ds, out["cores"])
    if "qc" in kinds:  # flags per core and reason (`xrfhub qc`)
        from .qc.store import info as qc_info

        out["qc"] = qc_info(hub_path, hub.groups(hub_path))
    if "samples" in kinds:
        s = api.open(store, "samples", index=False)
        props = [v for v in s.data_vars if f"{v}_flag" in s.data_vars]
        out["samples"] = {"n": int(s.sizes["sample"]),
                          "properties": {p: int(np.isfinite(s[p].values).sum()) for p in props}}
    return out


def _leftovers(store) -> list[dict]:
    """Half-built generations of killed writers (local stores only: a URL has no folders to list)."""
    from .store.generations import Store

    if "://" in str(store):
        return []
    return [{"folder": str(path), "bytes": size} for path, size in Store(store).leftovers()]


def _spectra_by_voltage(ds, cores: dict) -> None:
    """Per core, its spectra per tube voltage: one core's 10 and 30 kV spectra share depths,
    so users select a voltage (``ds.sel(core=..., tube_kv=10)``) before averaging."""
    import pandas as pd

    table = pd.crosstab(ds["core"].values.astype(str), ds["tube_kv"].values.astype(float))
    for core, row in table.iterrows():
        if core in cores:
            cores[core]["spectra_by_kv"] = {f"{kv:g}": int(n) for kv, n in row.items() if n}


#: More distinct numbers than this are a range, not a list: a live time measured per spectrum
#: has as many values as spectra, which no one reads one by one.
MAX_LISTED = 8


def _setting(values: np.ndarray):
    """The distinct values of one scan setting, or for many numbers their range and count."""
    distinct = sorted({_plain(v) for v in np.unique(values)}, key=lambda v: (v is None, str(type(v)), v))
    numbers = [v for v in distinct if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) > MAX_LISTED and len(numbers) == len([v for v in distinct if v is not None]):
        return {"min": min(numbers), "max": max(numbers), "distinct": len(numbers)}
    return distinct


def _shown(setting) -> str:
    if isinstance(setting, dict):
        return f"{setting['min']:g}-{setting['max']:g} ({setting['distinct']} distinct values)"
    return str(setting)


def _plain(v):
    if isinstance(v, (np.floating, float)):
        return None if np.isnan(v) else float(v)
    return v.item() if hasattr(v, "item") else v


def format_info(summary: dict) -> str:
    """The human form of :func:`info`."""
    lines = [f"store {summary['store']}  generation {summary['generation']}  (updated {summary['updated']})"]
    lines.append("kinds: " + "; ".join(f"{k} " + ", ".join(f"{g} {dict(sz)}" for g, sz in v.items())
                                       for k, v in summary["kinds"].items()))
    lines.append(f"sources: {summary['n_sources']} files")
    lines.append(f"cores: {len(summary['cores'])}")
    for core, c in summary["cores"].items():
        rng = (f"{c['depth_min_mm']:.1f}-{c['depth_max_mm']:.1f} mm" if c["depth_min_mm"] is not None
               else "no spectra")
        by_kv = ", ".join(f"{n} at {kv} kV" for kv, n in c.get("spectra_by_kv", {}).items())
        lines.append(f"  {core:<16} {c['n_spectra']:>7} spectra  {rng:<22} {len(c['scans'])} scan(s)  "
                     f"{c['n_samples']} lab samples" + (f"  ({by_kv})" if by_kv else ""))
        scales = c.get("depth_scales") or []
        if scales and scales != ["core"]:
            secs = [x for x in (c.get("sections") or []) if x]  # "" is no section (a discrete sample's)
            lines.append(f"  {'':<16} depth scale: {', '.join(scales)}" + (f" (sections {', '.join(secs)})" if secs else "")
                         + ("; section-relative depths: each section starts at its own 0, pass --sections FILE"
                            if "section-relative" in scales else ""))
        for grid, n in (c.get("diffraction") or {}).items():
            lines.append(f"  {'':<16} diffraction series {grid}: {n} pattern(s)"
                         + (f", {c.get('n_labels', 0)} labelled" if c.get("n_labels") else ""))
    if "scan_settings" in summary:
        lines.append("scan settings: " + "; ".join(f"{k} {_shown(v)}" for k, v in summary["scan_settings"].items()))
        if len(summary["scan_settings"].get("tube_kv", [])) > 1:
            lines.append("  spectra of several voltages share cores and depths: select one with "
                         "xrfhub.open(store).sel(core=..., tube_kv=10)")
    if "samples" in summary:
        s = summary["samples"]
        lines.append(f"lab samples: {s['n']} (" + ", ".join(f"{p}: {n}" for p, n in s["properties"].items()) + ")")
    if summary.get("alignment"):
        a = summary["alignment"]
        lines.append(f"alignment: {a['method']} (window +-{a['window_mm']} mm, tolerance {a['tolerance_mm']} mm, "
                     f"tube {a['tube_kv']} kV)")
    if summary.get("matches"):
        m = summary["matches"]
        counts = ", ".join(f"{m[k]} {k}" for k in ("matched", "unmatched", "no-scan", "overlapping", "duplicates")
                           if k in m)
        lines.append(f"matches: {m.get('n_samples', '?')} samples: {counts}")
        qc = m.get("qc") or {}
        if qc.get("qc_ran"):
            left = ", ".join(f"{n} {f}" for f, n in sorted(qc.get("left_out", {}).items())) or "none"
            lines.append(f"alignment left out QC-flagged spectra ({qc['policy']}): {left}")
        if m.get("cores_without_scan"):
            lines.append("lab cores without scans: " + ", ".join(m["cores_without_scan"]))
    if summary.get("qc"):
        from .qc.store import format_counts

        lines.extend(format_counts(summary["qc"]))
    if summary["warnings"]:
        lines.append(f"warnings ({len(summary['warnings'])}):")
        lines.extend(f"  {w}" for w in summary["warnings"][:20])
    if summary["history"]:
        lines.append(f"history: {len(summary['history'])} replaced version(s) kept")
    for left in summary.get("interrupted_writes", []):
        lines.append(f"interrupted write: {left['folder']} ({left['bytes'] / 1e6:.1f} MB) is a half-built generation "
                     "left by a writer that was stopped; the store does not use it, and the next ingest, predict "
                     "or rebuild removes it")
    return "\n".join(lines)
