"""``xrfhub demo``: the whole path on the embedded default data, end to end.

Generates a synthetic corpus in the scanners' own formats (raw ``.spe`` folders, a PANGAEA
export and a CSV lab table), ingests it, prints ``info`` and a query, and draws a few spectra
with their element lines and a down-core profile with the lab values beside it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .errors import StoreError
from .summary import format_info, info
from .ingestion import ingest
from .plots import line_energy, plot_profile, plot_ramp, plot_spectra, roi_counts


def run_demo(out, *, size: str = "demo", seed: int = 0, echo=print) -> dict:
    """Run the demo in folder ``out``; returns paths and figures for callers and tests."""
    from . import api
    from .synth import generate_corpus

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus"
    store = out / "hub"
    t0 = time.perf_counter()
    if not (corpus / "truth.json").exists():
        echo(f"1/6 generating a synthetic corpus ({size}, seed {seed}) in {corpus} ...")
        generate_corpus(corpus, size=size, seed=seed)
    else:
        echo(f"1/6 corpus already present in {corpus}")
    lab_files = sorted(p for p in (corpus / "lab").iterdir() if p.is_file())
    echo(f"2/6 ingesting {corpus / 'scans'} and {len(lab_files)} lab table(s) into {store} ...")
    report = ingest([corpus / "scans", *lab_files], store, progress=True)
    echo(report.summary())
    lab_only = json.loads((corpus / "truth.json").read_text()).get("no_scan_core")
    if lab_only:
        echo(f"  (expected: the generator writes lab samples of core {lab_only} without any scan, on purpose, "
             "to show how a lab core that matches no scanned core is reported and kept)")
    echo("3/6 xrfhub info")
    echo(format_info(info(store)))

    ds = api.open(store)
    core = str(ds["core"].values[0])
    lo = float(ds.sel(core=core)["depth_mm"].min())
    sel = ds.sel(core=core, depth_mm=slice(lo, lo + 400))
    echo(f"4/6 query: ds.sel(core={core!r}, depth_mm=slice({lo:g}, {lo + 400:g})) -> {sel.sizes['spectrum']} spectra")
    from .selection import to_table

    cols = ["core", "depth_mm", "section", "position_mm", "tube_kv", "run", "live_time_s", "energy_gain_kev"]
    echo(to_table(sel)[cols].head(8).to_string(index=False))

    echo("5/6 pictures")
    pictures = _pictures(store, ds, core, out)
    for p in pictures:
        echo(f"  wrote {p}")
    pictures.append(_diffraction(store, out, seed, echo))
    echo(f"demo finished in {time.perf_counter() - t0:.1f} s; store at {store}")
    return {"store": store, "corpus": corpus, "pictures": pictures, "report": report}


def _diffraction(store, out: Path, seed: int, echo) -> Path:
    """A small pressure ramp simulated from its crystal structures, ingested beside the spectra."""
    from . import api
    from .synth.xrd import pressure_ramp, write_xy

    ramp = out / "ramp"
    echo(f"6/6 diffraction: simulating a (Mg,Fe)O pressure ramp (pymatgen) in {ramp} and ingesting it ...")
    if not (ramp / "labels.csv").exists():
        write_xy(pressure_ramp(n_patterns=60, transition=32, seed=seed), ramp)
    report = ingest([ramp], store, wavelength=0.4843, scan_coord="pressure_step")
    echo(report.summary())
    pat = api.open(store, "diffraction")
    echo(f"  xrfhub.open(store, 'diffraction'): {dict(pat.sizes)}, labels {sorted(set(pat['label'].values))}, "
         f"wavelength {float(pat['wavelength'][0]):g} A ({pat['wavelength_source'].values[0]})")
    return plot_ramp(pat["two_theta"].values, pat["intensity"].values, pat["label"].values, out / "ramp.png",
                     scan=("pressure_step", pat["pressure_step"].values),
                     wavelength_a=float(pat["wavelength"][0]), intensity_unit="simulated, arbitrary units")


def _pictures(store, ds, core: str, out: Path) -> list[Path]:
    from . import api

    kv10 = ds.sel(core=core)
    kv10 = kv10.isel(spectrum=np.flatnonzero(kv10["tube_kv"].values == 10.0))
    n = kv10.sizes["spectrum"]
    picks = np.unique(np.linspace(0, n - 1, 3).astype(int))
    energy = ds["energy"].values
    spectra_png = plot_spectra(energy, kv10["counts"].values[picks],
                               [f"{d:g} mm" for d in kv10["depth_mm"].values[picks]],
                               out / "spectra.png", title=f"{core}: 10 kV spectra", max_kev=12.0,
                               legend_title="depth")
    counts = kv10["counts"].values
    ca = roi_counts(energy, counts, line_energy("Ca"))
    fe = roi_counts(energy, counts, line_energy("Fe"))
    window = "counts"  # roi_counts' window sums, not fitted peak areas: the title says so
    series = {"Ca Kα": ca, "Fe Kα": fe, "ln(Ca/Fe)": np.log((ca + 1) / (fe + 1))}
    lab, lab_depth = {}, None
    try:
        samples = api.open(store, "samples").sel(core=core)
        lab_depth = samples["depth_mm"].values
        for prop in ("CaCO3", "TOC"):
            if prop in samples:
                lab[prop] = samples[prop].values
    except (KeyError, StoreError):  # a core without lab data still gets its profile
        lab = {}
    profile_png = plot_profile(kv10["depth_mm"].values, series, lab_depth, lab, out / "profile.png",
                               units={"Ca Kα": window, "Fe Kα": window},
                               title=f"{core}: down-core profile of the 10 kV spectra "
                                     "\n(Ca Kα, Fe Kα: counts summed within ±0.15 keV of the line, not fitted peak areas)")
    return [spectra_png, profile_png]
