"""MAX, the log-ratio calibration, and their mean, on the README tour's folders (issue 16, item 3).

Run after ``benchmarks/max_readme_tour.py`` on the same ``--out`` folder. For each seed it reads
the tour's cross-fitted MAX run (``seedG/caco3``: four fold models, ``folds.json``) and fits the
``logratio`` plugin (defaults, peak areas of the spectra) on the same cores:

- **out of fold, training cores only**: once per MAX fold, without that fold's cores (and without
  the held-out ones), scoring the fold's cores; so both models, and their mean, predict every
  training core from a model that never saw it, on the same folds;
- **held out**: once on every training core, as ``xrfhub train logratio --holdout-cores <the tour's>``.

The **stack** is the per-pair mean of the two predictions: equal weights, nothing fitted on any
score. It is also scored as a user gets it (``product`` in the JSON): ``logratio`` trained with
``--interval-method cross-conformal-cores`` (its own folds) into ``seedG/caco3-mlc``, and the mean
of the two runs as ``xrfhub predict --run ... --run ... --interval 0.9`` makes it. Printed per seed, for MAX, logratio and the stack: the interpolation-core out-of-fold R2 (the
figure a recipe is chosen on, see ``max_readme_tour.py``), the held-out CaCO3 R2 and RMSE
(scikit-learn's), each held-out core's bias, and the 90 % cross-conformal interval's coverage and
mean width on the held-out pairs (each model calibrated on its own out-of-fold predictions). The
Lee 2022 baseline's held-out R2 from the tour's run is printed beside them, with the RMSE ratio
(stack / baseline). One JSON line per seed goes to ``OUT/stack.jsonl``::

    python benchmarks/max_readme_tour.py --out /tmp/tour --corpus c10 --seeds 12 13
    python benchmarks/stack_tour.py --out /tmp/tour --seeds 12 13
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = "CaCO3"
LEVEL = 0.9
MODELS = ("max", "logratio", "stack")


def _logratio(hub: Path, holdout, work: Path):
    """Fit ``logratio`` without ``holdout`` as ``xrfhub train`` does; its predictor of mean spectra."""
    from xrfhub.ml import registry, training

    training.train("logratio", hub, stage="train", out=work, target=TARGET, holdout_cores=list(holdout),
                   progress=False)
    return registry.load("logratio").predictor(work)


def _product(hub: Path, store: Path, run_dir: Path, holdout, hx, hy) -> dict:
    """The mean as a user gets it: ``xrfhub train logratio --interval-method cross-conformal-cores``
    (its own folds) beside the MAX run, then ``xrfhub predict --run MAX --run LOGRATIO --interval 0.9``
    (:mod:`xrfhub.ml.ensemble`), scored on the held-out pairs: R2, RMSE and the interval's coverage."""
    from xrfhub.ml import crossconformal, ensemble, intervals, training
    from xrfhub.ml.loaders import labelled_samples
    from xrfhub.ml.metrics import regression_metrics

    mlc = store / "caco3-mlc"
    if not (mlc / crossconformal.OUT_OF_FOLD_FILE).is_file():
        training.train("logratio", hub, stage="train", out=mlc, target=TARGET, holdout_cores=list(holdout),
                       interval_method=intervals.METHOD_CV, overwrite=True, progress=False)
    if not (run_dir / crossconformal.OUT_OF_FOLD_FILE).is_file():  # MAX runs trained before the file existed
        saved = json.loads((run_dir / "folds.json").read_text())
        crossconformal.save_out_of_fold(run_dir, TARGET, saved["out_of_fold"], [f["cores"] for f in saved["folds"]])
    calibrated = ensemble.calibrate([run_dir, mlc])
    each = ensemble.predictor([run_dir, mlc]).each(hx)
    pred = np.mean(each, axis=0)
    lower, upper = calibrated.interval(each, LEVEL)
    reach = calibrated.interpolation_r2
    _, ty, _, _ = labelled_samples(hub, TARGET, exclude_cores=holdout)
    return {"interpolation_r2": reach, "held_out": regression_metrics(hy, pred, float(np.mean(ty))),
            "interval_90": intervals.coverage(hy, lower, upper), "interval_score": calibrated.calibration.score}


def seed_figures(root: Path, seed: int) -> dict:
    from xrfhub.ml import intervals, registry
    from xrfhub.ml.loaders import labelled_samples, qc_policy
    from xrfhub.ml.metrics import by_core, interpolation_r2, regression_metrics

    store = root / f"seed{seed}"
    hub, run_dir = store / "demo" / "hub", store / "caco3"
    run = json.loads((run_dir / "run.json").read_text())
    saved = json.loads((run_dir / "folds.json").read_text())
    holdout = list(run["holdout_cores"])
    with qc_policy("exclude"):  # what `xrfhub train` reads by default
        x, y, cores, _ = labelled_samples(hub, TARGET, exclude_cores=holdout)
        hx, hy, hcores, _ = labelled_samples(hub, TARGET, cores=holdout)
    oof = saved["out_of_fold"]
    if not (np.allclose(oof["y"], y) and list(oof["cores"]) == list(cores)):
        raise SystemExit(f"{run_dir}: its out-of-fold pairs are not the store's labelled pairs in order")
    fold_of = {c: i for i, f in enumerate(saved["folds"]) for c in f["cores"]}
    pool = sorted(fold_of)
    trained_on = {c: [o for o in pool if fold_of[o] != fold_of[c]] for c in pool}

    out_of_fold = {"max": np.asarray(oof["pred"], dtype=np.float64), "logratio": np.full(len(y), np.nan)}
    with tempfile.TemporaryDirectory(prefix="stack-") as tmp:
        for i, fold in enumerate(saved["folds"]):
            rows = np.isin(cores, fold["cores"])
            predictor = _logratio(hub, holdout + list(fold["cores"]), Path(tmp) / f"fold{i}")
            out_of_fold["logratio"][rows] = predictor(x[rows])
        full = _logratio(hub, holdout, Path(tmp) / "full")
        held = {"max": np.asarray(registry.load("max").predictor(run_dir)(hx), dtype=np.float64),
                "logratio": np.asarray(full(hx), dtype=np.float64)}
    out_of_fold["stack"] = (out_of_fold["max"] + out_of_fold["logratio"]) / 2
    held["stack"] = (held["max"] + held["logratio"]) / 2

    base = json.loads((store / "caco3-lee2022" / "run.json").read_text())["metrics"]["held_out"]
    result = {"seed": seed, "held_out": holdout, "baseline": {"r2": base["r2"], "rmse": base["rmse"]},
              "product": _product(hub, store, run_dir, holdout, hx, hy)}
    for name in MODELS:
        per_core = by_core(y, out_of_fold[name], cores, trained_on)
        cal = intervals.from_predictions(y, out_of_fold[name], cores, TARGET, method=intervals.METHOD_CV)
        lower, upper = cal.interval(held[name], LEVEL)
        score = interpolation_r2(per_core)
        result[name] = {"interpolation_r2": float("nan") if score is None else score,
                        "held_out": regression_metrics(hy, held[name], float(np.mean(y))),
                        "held_out_by_core": by_core(hy, held[name], hcores),
                        "interval_90": intervals.coverage(hy, lower, upper)}
    return result


def per_seed(argv, description: str, figures, jsonl: str) -> list[dict]:
    """Parse ``--out`` (the folder ``max_readme_tour.py`` wrote) and ``--seeds``, compute
    ``figures(out, seed)`` for each seed and append them to ``OUT/<jsonl>``, one line a seed; the
    scripts that read the tour's folders share this."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", required=True, type=Path, help="the folder max_readme_tour.py wrote")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    args = ap.parse_args(argv)
    results = [figures(args.out, s) for s in args.seeds]
    with (args.out / jsonl).open("a") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    return results


def main(argv=None) -> None:
    started = time.perf_counter()
    results = per_seed(argv, __doc__.splitlines()[0], seed_figures, "stack.jsonl")
    print("| seed | held-out cores | interpolation-core R2: MAX / logratio / stack | held-out R2 (RMSE): MAX "
          "| logratio | stack | baseline | RMSE stack / baseline | bias per held-out core (MAX; logratio) "
          "| 90 % coverage: MAX / logratio / stack |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        interp = " / ".join(f"{r[m]['interpolation_r2']:.3f}" for m in MODELS)
        scores = " | ".join(f"{r[m]['held_out']['r2']:.3f} ({r[m]['held_out']['rmse']:.2f})" for m in MODELS)
        bias = "; ".join(", ".join(f"{c} {r[m]['held_out_by_core'][c]['bias']:+.1f}" for c in r["held_out"])
                         for m in ("max", "logratio"))
        cover = " / ".join(f"{r[m]['interval_90']['coverage']:.2f}" for m in MODELS)
        print(f"| {r['seed']} | {', '.join(r['held_out'])} | {interp} | {scores} | {r['baseline']['r2']:.3f} "
              f"({r['baseline']['rmse']:.2f}) | {r['stack']['held_out']['rmse'] / r['baseline']['rmse']:.2f} "
              f"| {bias} | {cover} |")
    print("\nThe mean as `xrfhub predict --run MAX --run LOGRATIO --interval 0.9` gives it (logratio on its own folds):")
    for r in results:
        p = r["product"]
        print(f"seed {r['seed']}: held-out R2 {p['held_out']['r2']:.3f} (RMSE {p['held_out']['rmse']:.2f}), 0.9 interval "
              f"covers {p['interval_90']['coverage']:.2f}, mean width {p['interval_90']['mean_width']:.2f}; "
              f"interpolation-core R2 {p['interpolation_r2'] if p['interpolation_r2'] is None else round(p['interpolation_r2'], 3)}")
    for m in MODELS:
        r2 = [r[m]["held_out"]["r2"] for r in results]
        interp = [r[m]["interpolation_r2"] for r in results]
        print(f"{m}: mean interpolation-core R2 {np.nanmean(interp):.3f}; held-out R2 mean {np.mean(r2):.3f}, "
              f"median {np.median(r2):.3f}, >= 0.90 on {sum(v >= 0.9 for v in r2)} of {len(r2)}")
    print(f"finished in {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
