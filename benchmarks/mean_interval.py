"""The mean's 0.9 interval on the README tour's folders: its calibration beside the one before (issue 16, item 1).

Run after ``benchmarks/max_readme_tour.py`` and ``benchmarks/stack_tour.py`` on the same ``--out``
folder (each seed's ``caco3`` MAX run and ``caco3-mlc`` logratio run, both with out-of-fold
predictions of every training pair). For each seed it pairs the two runs' out-of-fold predictions
(:func:`xrfhub.ml.ensemble.mean_out_of_fold`), predicts the held-out cores' lab pairs with both
runs, and scores the mean's 0.9 interval on those pairs under two calibrations of the same numbers:

- **previous** (until the fourteenth pass): the score and weighting chosen leaving one core out
  among absolute, relative, log and the runs' spread, each with pooled or core-weighted pairs;
- **now** (:func:`xrfhub.ml.ensemble.calibrate_pairs`): the spread score over pooled pairs, its
  quantile at the level raised until each training core left out is covered 0.9 on average.

Printed per seed and on average: coverage of the held-out pairs and mean width (wt%). One JSON
line per seed goes to ``OUT/mean_interval.jsonl``; the held-out predictions are cached in
``OUT/seedG/mean_interval.npz``::

    python benchmarks/mean_interval.py --out /tmp/tour --seeds 30 31
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TARGET = "CaCO3"
LEVEL = 0.9


def pairs(store: Path) -> dict:
    """Out-of-fold pairs of both runs and their held-out predictions (cached in the seed's folder)."""
    from xrfhub.ml import ensemble
    from xrfhub.ml.loaders import labelled_samples, qc_policy

    cache = store / "mean_interval.npz"
    if cache.is_file():
        return dict(np.load(cache))
    runs = [store / "caco3", store / "caco3-mlc"]
    oof, _ = ensemble.mean_out_of_fold(runs, TARGET)
    holdout = json.loads((runs[0] / "run.json").read_text())["holdout_cores"]
    with qc_policy("exclude"):  # what `xrfhub train` reads by default
        hx, hy, hcores, _ = labelled_samples(store / "demo" / "hub", TARGET, cores=holdout)
    each = ensemble.predictor(runs).each(hx)
    found = {"y": np.asarray(oof["y"]), "e0": oof["each"][0], "e1": oof["each"][1],
             "cores": np.asarray(oof["cores"]).astype(str), "hy": np.asarray(hy, dtype=np.float64),
             "h0": each[0], "h1": each[1], "hcores": np.asarray(hcores).astype(str)}
    np.savez(cache, **found)
    return found


def previous(d: dict):
    """The calibration before the fourteenth pass, on the same pairs."""
    from xrfhub.ml import ensemble, intervals

    each = [d["e0"], d["e1"]]
    half = ensemble.spread(each)
    floor = max(float(np.median(half)), 1e-6)
    cal = intervals.from_predictions(d["y"], ensemble._mean(each), d["cores"], TARGET, method=intervals.METHOD_CV,
                                     scale=half + floor)
    return ensemble.Calibrated(cal, None, floor), f"{cal.score}/{cal.weighting}"


def now(d: dict):
    from xrfhub.ml import ensemble, intervals

    calibrated = ensemble.calibrate_pairs(d["y"], [d["e0"], d["e1"]], d["cores"], TARGET, intervals.METHOD_CV,
                                          level=LEVEL)
    return calibrated, f"level {calibrated.quantile_level:g}"


def seed_figures(root: Path, seed: int) -> dict:
    from xrfhub.ml import intervals

    d = pairs(root / f"seed{seed}")
    result = {"seed": seed, "held_out": sorted(set(d["hcores"].tolist()))}
    for name, calibrate in (("previous", previous), ("now", now)):
        calibrated, how = calibrate(d)
        lower, upper = calibrated.interval([d["h0"], d["h1"]], LEVEL)
        result[name] = {**intervals.coverage(d["hy"], lower, upper), "how": how,
                        "per_core": {c: intervals.coverage(d["hy"][d["hcores"] == c], lower[d["hcores"] == c],
                                                           upper[d["hcores"] == c])["coverage"]
                                     for c in result["held_out"]}}
    return result


def main(argv=None) -> None:
    from stack_tour import per_seed  # benchmarks/ is on the path of a script run from it

    results = per_seed(argv, __doc__.splitlines()[0], seed_figures, "mean_interval.jsonl")
    print("| seed | held-out cores | previous: coverage (width, score) | now: coverage (width, level) |")
    print("|---|---|---|---|")
    for r in results:
        cells = " | ".join(f"{r[k]['coverage']:.3f} ({r[k]['mean_width']:.1f}, {r[k]['how']})" for k in ("previous", "now"))
        print(f"| {r['seed']} | {', '.join(r['held_out'])} | {cells} |")
    for k in ("previous", "now"):
        cov = [r[k]["coverage"] for r in results]
        print(f"{k}: mean coverage {np.mean(cov):.3f} (from {min(cov):.3f} to {max(cov):.3f}), "
              f"mean width {np.mean([r[k]['mean_width'] for r in results]):.2f} wt%")
    ratio = np.mean([r["now"]["mean_width"] for r in results]) / np.mean([r["previous"]["mean_width"] for r in results])
    print(f"width now / previous: {ratio:.2f}")


if __name__ == "__main__":
    main()
