"""Coverage of the 0.9 conformal intervals on held-out cores: the original method beside the new one.

Generates small stores (``xrfhub.synth``), and per seed holds out one core, draws a quarter of the
others for calibration (``intervals.choose_cores``) and trains the linear plugin of
``tests/test_intervals.py`` through ``xrfhub.ml.training.train`` (the generic path every regression
plugin takes). The run is calibrated with ``split-conformal-cores`` (score and weighting chosen by
leave-one-calibration-core-out coverage: calibration cores only); the same predictions are also
calibrated with the original ``split-conformal`` (pooled absolute residual). A second run on the
same split uses ``cross-conformal-cores`` (no core held apart: 5 folds of whole training cores,
out-of-fold scores, ``xrfhub.ml.crossconformal``). All three are scored on the held-out core. Prints one row per store, seed and method, and the pooled coverage
(held-out pairs of every seed together), the mean over cores and the mean width.

    python benchmarks/interval_coverage.py --out /tmp/ivbench            # 16 and 8 cores, CaCO3
    python benchmarks/interval_coverage.py --out /tmp/ivbench --target TOC --shifted
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

LEVEL = 0.9
STORES = {"16 cores": ({"n_cores": 16, "length_m": (1.2, 1.5), "lab_spacing_mm": 30.0, "n_30kv": 0, "n_50kv": 0,
                        "n_held_out": 1}, 5, 8),
          "8 cores": ({"n_cores": 8, "length_m": (1.2, 1.5), "lab_spacing_mm": 30.0, "n_30kv": 0, "n_50kv": 0,
                       "n_held_out": 1}, 5, 6)}


def build(root: Path, spec: dict, corpus_seed: int):
    """A hub from a generated corpus; (hub, normal cores, the shifted core)."""
    import xrfhub
    from xrfhub.synth import generate_corpus

    hub = root / "hub"
    truth = generate_corpus(root / "corpus", size=spec, seed=corpus_seed)
    if not hub.exists():
        xrfhub.ingest([root / "corpus" / "scans", *sorted((root / "corpus" / "lab").iterdir())], hub)
    normal = sorted(c for c, t in truth.cores.items() if t.has_scan and not t.held_out)
    return hub, normal, truth.held_out[0]


def one_seed(hub, plugin_file, out: Path, target: str, held: str, seed: int) -> list[dict]:
    from xrfhub.ml import intervals, registry, training
    from xrfhub.ml.loaders import labelled_samples

    training.train("lin", hub, stage="train", out=out, plugin_from=str(plugin_file), target=target,
                   holdout_cores=[held], sets={"seed": str(seed)}, progress=False, calibration_cores=["auto"],
                   interval_method=intervals.METHOD_CORES, overwrite=out.exists())
    new = intervals.Calibration.load(out)
    predictor = registry.load("lin", str(plugin_file)).predictor(out)
    cx, cy, ccores, _ = labelled_samples(hub, target, cores=new.cores)
    old = intervals.calibrate(predictor, cx, cy, ccores, target, method=intervals.METHOD)
    hx, hy, _, _ = labelled_samples(hub, target, cores=[held])
    pred = predictor(hx)
    cv_out = out.parent / f"{out.name}-cv"
    training.train("lin", hub, stage="train", out=cv_out, plugin_from=str(plugin_file), target=target,
                   holdout_cores=[held], sets={"seed": str(seed)}, progress=False,
                   interval_method=intervals.METHOD_CV, overwrite=cv_out.exists())
    cv = intervals.Calibration.load(cv_out)
    cv_pred = registry.load("lin", str(plugin_file)).predictor(cv_out)(hx)
    rows = []
    for cal, p in ((old, pred), (new, pred), (cv, cv_pred)):
        lower, upper = cal.interval(p, LEVEL)
        loco = next((r for r in cal.selection if r["score"] == cal.score and r["weighting"] == cal.weighting), {})
        rows.append({"seed": seed, "held_out": held, "method": cal.method, "score": f"{cal.score}/{cal.weighting}",
                     "loco_coverage": loco.get("coverage"), "calibration_cores": " ".join(cal.cores),
                     **intervals.coverage(hy, lower, upper),
                     "rmse": float(np.sqrt(np.mean((hy - p) ** 2)))})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--target", default="CaCO3")
    ap.add_argument("--stores", default=",".join(STORES))
    ap.add_argument("--corpus-seed", type=int, default=None, help="generator seed of every store (default 5)")
    ap.add_argument("--shifted", action="store_true", help="hold out the generator's shifted core (every seed)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_intervals import LINEAR_PLUGIN

    args.out.mkdir(parents=True, exist_ok=True)
    plugin_file = args.out / "lin.py"
    plugin_file.write_text(LINEAR_PLUGIN)
    all_rows = []
    for name in args.stores.split(","):
        spec, corpus_seed, n_seeds = STORES[name]
        corpus_seed = corpus_seed if args.corpus_seed is None else args.corpus_seed
        root = args.out / f"{name.replace(' ', '')}-c{corpus_seed}"
        start = time.perf_counter()
        hub, normal, shifted = build(root, spec, corpus_seed)
        for seed in range(n_seeds):
            held = shifted if args.shifted else normal[seed % len(normal)]
            for r in one_seed(hub, plugin_file, root / f"run{seed}", args.target, held, seed):
                all_rows.append({"store": name, **r})
        print(f"# {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(f"| store | seed | held-out core | method | score/weighting | LOCO coverage (calibration) | "
          f"coverage | mean width (wt%) | RMSE |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in all_rows:
        loco = f"{r['loco_coverage']:.3f}" if r["loco_coverage"] is not None else "-"
        print(f"| {r['store']} | {r['seed']} | {r['held_out']} | {r['method']} | {r['score']} | {loco} | "
              f"{r['coverage']:.3f} | {r['mean_width']:.2f} | {r['rmse']:.2f} |")
    print("\n| store | method | pooled coverage | mean over seeds | min | max | mean width (wt%) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.stores.split(","):
        for method in ("split-conformal", "split-conformal-cores", "cross-conformal-cores"):
            g = [r for r in all_rows if r["store"] == name and r["method"] == method]
            n = sum(r["n"] for r in g)
            pooled = sum(r["coverage"] * r["n"] for r in g) / n
            cov = [r["coverage"] for r in g]
            print(f"| {name} | {method} | {pooled:.3f} | {np.mean(cov):.3f} | {min(cov):.3f} | {max(cov):.3f} | "
                  f"{np.mean([r['mean_width'] for r in g]):.2f} |")
    (args.out / f"coverage_{args.target}{'_shifted' if args.shifted else ''}.json").write_text(
        json.dumps(all_rows, indent=1))


if __name__ == "__main__":
    main()
