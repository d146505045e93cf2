"""The diffraction results of docs/results.md: three simulated or measured sets, each ingested
into its own store and put through ``xrfhub evaluate --target phase|phases``.

1. ``ramp``: four simulated (Mg0.2Fe0.8)O pressure ramps (349 patterns x 4,023 points, the
   switch to the high-pressure structure at patterns 180, 185, 190, 195); ramp ``ramp3`` is held
   out. 003's binned models A and B and two 1-D networks, three seeds.
2. ``hydrothermal``: four simulated micro-XRD series (every combination of La-bastnaesite,
   calcite and rhenium, 15 patterns each, at 0.01 deg); series ``hydro3`` is held out.
   Multi-task CNN vs one binary CNN per phase, raw vs ALS-background-removed input, three seeds.
3. ``fixtures``: 1,500 patterns simulated from the 56 candidate CIF structures of
   ../shared/fixtures/xrd/references (mixtures of one or two, labelled by formula) as the only
   training data; the seven measured patterns there, with their phases as labels, held out and
   resampled onto the simulation grid. Multi-task CNN, raw vs ALS input, three seeds.

The budget is stated in each report's settings (``evaluation.json``) and below; it is what fits a
2-core CPU in about an hour. Reports (CSV, PNG, summary.md) are copied to --results; the runs
themselves stay in --workdir.

    python scripts/evaluate_diffraction.py [--sets ramp,hydrothermal,fixtures] [--workdir /tmp/xrd-eval]
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np

import xrfhub
from xrfhub.ml.evaluation.classification import evaluate

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "xrd"
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "diffraction"

# Budgets: the published recipes scaled down to the CPU. On 838 training patterns x 4,023
# points one full-batch step takes ~1.9 s (003 Model A), ~8.9 s (Model B), ~2.9 s (1-D CNN)
# here, so the ramps get 40 steps without the noisy copies (published: 700 / 550 / 300 steps
# on 11 copies of every pattern), the same for every model and seed, fixed before any run.
RAMP = {"models": "panosc-binned,panosc-binned-learned,spectra1d:arch=fcnn,spectra1d:arch=cnn",
        "inputs": "raw", "sets": "iterations=40,copies=0"}
HYDRO = {"sets": "epochs=30"}
CIFS = {"models": "mtl-phase", "sets": "epochs=25"}


def ramp_store(work: Path) -> Path:
    from xrfhub.synth.xrd import pressure_ramp, write_xy

    hub = work / "hub"
    folders = []
    for k, switch in enumerate((180, 185, 190, 195)):
        folder = work / f"ramp{k}"
        if not (folder / "labels.csv").is_file():
            ramp = pressure_ramp(transition=switch, seed=k)
            write_xy(dataclasses.replace(ramp, pattern_id=[f"ramp{k}_{i:03d}" for i in range(len(ramp))]), folder)
        folders.append(folder)
    if not hub.exists():
        xrfhub.ingest(folders, hub, wavelength=0.4843, scan_coord="pressure_step")
    return hub


def hydro_store(work: Path) -> Path:
    from xrfhub.synth.xrd import hydrothermal, write_xy

    hub = work / "hub"
    folders = []
    for k in range(4):
        folder = work / f"hydro{k}"
        if not (folder / "labels.csv").is_file():
            sim = hydrothermal(n_per_combo=15, seed=100 + k)
            write_xy(dataclasses.replace(sim, pattern_id=[f"hydro{k}_{i:03d}" for i in range(len(sim))]), folder)
        folders.append(folder)
    if not hub.exists():
        xrfhub.ingest(folders, hub, wavelength=0.6199)
    return hub


def by_formula(sim):
    """The simulation's phases merged per chemical formula (CIF stem = formula_spacegroup): the
    measured patterns are labelled by formula, so polymorphs count as one phase."""
    formulas = sorted({name.rsplit("_", 1)[0] for name in sim.phase_names})
    hot = np.zeros((len(sim), len(formulas)), dtype=bool)
    for k, name in enumerate(sim.phase_names):
        hot[:, formulas.index(name.rsplit("_", 1)[0])] |= sim.phases[:, k].astype(bool)
    return dataclasses.replace(sim, phase_names=tuple(formulas), phases=hot)


def fixture_store(work: Path) -> tuple[Path, str]:
    from xrfhub.synth.xrd import from_cifs, write_xy

    hub, sim_dir, measured = work / "hub", work / "simulated", work / "measured"
    if not (sim_dir / "labels.csv").is_file():
        sim = from_cifs(sorted((FIXTURES / "references").glob("*.cif")), 1500, two_theta=(10, 100, 0.04),
                        max_phases=2, seed=0)
        write_xy(by_formula(sim), sim_dir)
    if not (measured / "labels.csv").is_file():
        measured.mkdir(parents=True, exist_ok=True)
        rows = []
        for path in sorted(FIXTURES.glob("*.xy")):
            shutil.copy(path, measured / path.name)
            rows.append(f"{path.stem},{';'.join(sorted(path.stem.split('+')))}\n")
        (measured / "labels.csv").write_text("pattern_id,phases\n" + "".join(rows))
    if not hub.exists():
        xrfhub.ingest([sim_dir, measured], hub, wavelength=1.5406)
    from xrfhub_xrd.plugin import diffraction_grids

    sim_grid = next(g for g in diffraction_grids(hub)
                    if "simulated" in set(xrfhub.open(hub, "diffraction", grid=g)["core"].values.astype(str)))
    return hub, sim_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="ramp,hydrothermal,fixtures")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/xrd-eval"))
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    for name in args.sets.split(","):
        work = args.workdir / name
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if name == "ramp":
            hub = ramp_store(work)
            summary = evaluate(hub, ["ramp3"], work / "report", target="phase", sets=RAMP)
        elif name == "hydrothermal":
            hub = hydro_store(work)
            summary = evaluate(hub, ["hydro3"], work / "report", target="phases", sets=HYDRO)
        elif name == "fixtures":
            if not (FIXTURES / "references").is_dir():
                raise SystemExit(f"{FIXTURES} is absent: the fixtures set needs ../shared/fixtures/xrd")
            hub, grid = fixture_store(work)
            summary = evaluate(hub, ["measured"], work / "report", target="phases",
                               sets={**CIFS, "grid": f"common:{grid}"})
        else:
            raise SystemExit(f"unknown set {name!r}: ramp, hydrothermal or fixtures")
        dest = args.results / name
        dest.mkdir(parents=True, exist_ok=True)
        for path in summary.parent.iterdir():
            if path.is_file():
                shutil.copy(path, dest / path.name)
        print(f"{name}: {time.perf_counter() - started:.0f} s, report in {dest}", flush=True)


if __name__ == "__main__":
    main()
