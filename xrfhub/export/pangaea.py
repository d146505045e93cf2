"""The lab samples of a store as a PANGAEA-ready table (``.tab``), readable by ``xrfhub ingest``.

One row per lab sample: its event (the core id in the store), depth top/bottom/mid in metres
(PANGAEA's unit for sediment depth), every lab value with its quality flag as a prefix
(``?`` questionable, ``/`` not valid, ``*`` unknown), per prediction target the mean of the
latest run over the spectra the sample was aligned with, and per emission line the mean vendor
intensity of the element-table points inside the sample's interval. The metadata block gives
the citation, events, parameters with PANGAEA-style names, units and methods, licence and
identifiers. Values are written with enough digits to read back exactly.

Predictions are model output, not measurements: their parameters say so (METHOD/DEVICE), and
read back they are values named ``<target>_pred``, never the target itself.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import __version__, identifiers
from ..errors import StoreError

#: PANGAEA parameter names of common lab properties (the table header uses the short name)
PARAMETER_NAMES = {
    "CaCO3": "Calcium carbonate", "TOC": "Carbon, organic, total", "TC": "Carbon, total",
    "TN": "Nitrogen, total", "TS": "Sulfur, total", "Opal": "Opal, biogenic silica",
    "bSiO2": "Opal, biogenic silica",
}
INTENSITY_UNIT = {"cps": "cps", "area": "counts"}


def _num(x: float) -> str:
    return "" if not np.isfinite(x) else repr(float(x))


def _cell(value: float, flag: str) -> str:
    if flag == "/":
        return "/" + _num(value)
    return flag + _num(value) if np.isfinite(value) else ""


def _open(hub_path, group):
    from ..store import hub

    return hub.open_group(hub_path, group)


def sample_table(store) -> dict:
    """Columns of the export (a dict of name -> list) and what describes them."""
    from .. import api
    from ..store import hub, layout

    gen, _ = api.resolve(store)
    hub_path = f"{gen}/{layout.HUB}"
    present = hub.groups(hub_path)
    if "samples" not in present:
        raise StoreError(f"{store}: holds no lab samples; a PANGAEA export needs them (ingest a lab table)")
    s = _open(hub_path, "samples").load()
    n = s.sizes[layout.SAMPLE]
    props = [v for v in s.data_vars if s[v].attrs.get("units") == "wt%" and s[v].ndim == 1]
    top, bot, mid = (s[c].values.astype(float) for c in ("top_mm", "bottom_mm", "mid_mm"))
    table = {"Event": list(s["core"].values.astype(str))}
    params = [("Event label", "Event", "", "")]
    if np.isfinite(top).all() and np.isfinite(bot).all():
        table["Depth top [m]"] = [_num(v / 1000) for v in top]
        table["Depth bot [m]"] = [_num(v / 1000) for v in bot]
        params += [("Depth, top/min", "Depth top", "m", ""), ("Depth, bottom/max", "Depth bot", "m", "")]
    table["Depth sed [m]"] = [_num(v / 1000) for v in mid]
    params.append(("DEPTH, sediment/rock", "Depth sed", "m", "GEOCODE"))
    sources = sorted(set(s["source"].values.astype(str)))
    for p in props:
        flags = s[f"{p}_flag"].values.astype(str) if f"{p}_flag" in s else [""] * n
        table[f"{p} [%]"] = [_cell(v, f) for v, f in zip(s[p].values.astype(float), flags)]
        params.append((PARAMETER_NAMES.get(p, p), p, "%", f"METHOD/DEVICE: lab analysis ({', '.join(sources)})"))

    runs = {}
    if "predictions" in present and s.attrs.get("spectra_group"):
        matched = s["matched_spectrum"].values
        for g in present["predictions"]:
            ds = _open(hub_path, g)
            if ds.attrs.get("spectra_group") != s.attrs["spectra_group"]:
                continue
            for t in ds.data_vars:
                runs[t] = ds if t not in runs or ds.attrs["created"] > runs[t].attrs["created"] else runs[t]
        for t, ds in sorted(runs.items()):
            values = ds[t].values.astype(float)
            col = []
            for row in matched:
                rows = row[row >= 0]
                v = values[rows] if rows.size else np.array([])
                col.append(_num(np.nanmean(v)) if np.isfinite(v).any() else "")
            table[f"{t}_pred [{ds[t].attrs.get('units', 'wt%').replace('wt%', '%')}]"] = col
            params.append((f"{PARAMETER_NAMES.get(t, t)}, predicted", f"{t}_pred", "%",
                           f"METHOD/DEVICE: xrfhub prediction run {ds.attrs['run']} "
                           f"(run UUID {identifiers.run_uuid(ds.attrs['run'])}) * COMMENT: mean over the "
                           "spectra aligned with the sample; model output, not a measurement"))
    if "elements" in present:
        e = _open(hub_path, "elements")
        q = "cps" if "cps" in e else "area" if "area" in e else None
        if q is not None and "depth_mm" in e.coords:
            values = e[q].values.astype(float)
            ecore, edepth = e["core"].values.astype(str), e["depth_mm"].values.astype(float)
            half = float(s.attrs.get("window_mm", 5.0))
            lo = np.where(np.isfinite(top), top, mid - half)
            hi = np.where(np.isfinite(bot), bot, mid + half)
            for j, line in enumerate(e["line"].values.astype(str)):
                col = []
                for c, a, b in zip(table["Event"], lo, hi):
                    inside = (ecore == c) & (edepth >= a) & (edepth <= b)
                    v = values[inside, j]
                    col.append(_num(np.nanmean(v)) if np.isfinite(v).any() else "")
                unit = INTENSITY_UNIT[q]
                table[f"{line} [{unit}]"] = col
                params.append((f"{line} intensity", line, unit, "METHOD/DEVICE: XRF core scanner, vendor "
                               "peak fit * COMMENT: mean over the scanned points inside the sample interval"))
    igsn = {}
    from ..store.nexus import read_core_summary

    from ..store.catalog import Catalog

    for core, entry in Catalog(Path(gen)).cores().items():  # IGSNs a lab table put in the NeXus files
        igsn[core] = read_core_summary(Path(gen, entry["file"]))["igsn"]
    return {"table": table, "params": params, "n": n, "sources": sources, "igsn": igsn,
            "cores": sorted(set(table["Event"])), "runs": {t: ds.attrs["run"] for t, ds in runs.items()}}


def export(store, out, *, citation: str | None = None, licence: str = "", identifiers_file=None) -> Path:
    """Write the PANGAEA-ready table of ``store`` to ``out``; returns the path."""
    out = Path(out)
    info = sample_table(store)
    ids = identifiers.read_identifiers(identifiers_file) if identifiers_file else {}
    events = []
    for core in info["cores"]:
        parts = [core, f"UUID: {identifiers.core_uuid(core)}"]
        igsn = ids.get(core, {}).get("igsn") or info["igsn"].get(core, "")
        if igsn:
            parts.append(f"IGSN: {igsn}")
        events.append(" * ".join(parts))
    head = ["/* DATA DESCRIPTION:",
            f"Citation:\t{citation or 'not given (pass --citation)'}"]
    if ids.get(identifiers.DATASET, {}).get("doi"):
        head.append(f"DOI:\thttps://doi.org/{ids[identifiers.DATASET]['doi']}")
    head.append("Event(s):\t" + "\n\t".join(events))
    lines = []
    for name, short, unit, extra in info["params"]:
        text = f"{name} [{unit}] ({short})" if unit else f"{name} ({short})"
        lines.append(text + (f" * {extra}" if extra else ""))
    head.append("Parameter(s):\t" + "\n\t".join(lines))
    if licence:
        head.append(f"License:\t{licence}")
    head.append(f"Size:\t{info['n'] * (len(info['table']) - 1)} data points")
    head.append(f"Comment:\texported by xrfhub {__version__} from {Path(str(store)).name}; "
                f"lab tables: {', '.join(info['sources'])}; prediction runs: "
                f"{json.dumps(info['runs'], sort_keys=True) if info['runs'] else 'none'}")
    head.append("*/")
    cols = list(info["table"])
    body = ["\t".join(cols)] + ["\t".join(str(info["table"][c][i]) for c in cols) for i in range(info["n"])]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text("\n".join(head + body) + "\n", encoding="utf-8")
    tmp.replace(out)  # never a half-written table under the name asked for
    return out
