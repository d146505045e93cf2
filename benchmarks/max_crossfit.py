"""MAX fine-tuned cross-fitted by whole cores, with CV+ intervals, beside today's single fine-tune.

Today's ``tiny`` fine-tune holds three sets of labelled cores apart from each other: the cores it
trains on, one or two validation cores (the epoch choice) and one or two calibration cores (the
split-conformal interval). On a store of 6-10 cores that leaves 3-5 cores to learn from, and an
interval whose width is read off one or two cores, so it cannot know how far a new core's bias
may fall (issue 16: 90 % intervals covering 18-36 % of a store's held-out pairs).

Cross-fitting by cores uses every labelled core outside the held-out ones for all three jobs:

- the cores are split, seeded, into ``K = min(4, n)`` folds of whole cores;
- one fine-tune per fold trains on the other folds and chooses its epoch on its own fold;
- a prediction is the mean of the ``K`` fold models;
- the interval is CV+ (Barber, Candes, Ramdas & Tibshirani 2021, "Predictive inference with the
  jackknife+", Ann. Statist. 49(1)): for a new spectrum ``x`` and every labelled pair ``i`` with
  out-of-fold residual ``R_i`` from fold model ``k(i)``, the lower end is the ``floor(a (n + 1))``-th
  smallest of ``mu_k(i)(x) - R_i`` and the upper end the ``ceil((1 - a)(n + 1))``-th smallest of
  ``mu_k(i)(x) + R_i``. Also shown: the ensemble mean plus or minus the conformal quantile of the
  out-of-fold residuals, with pairs weighted alike and with every core weighted alike.

What decides (fixed before the first run, ``docs/results.md``): the out-of-fold R2 (every fold
model on its own fold, pooled), against today's calibration-core R2; never the held-out cores,
which are only reported (R2, RMSE, coverage and mean width of the 90 % interval).

Reuses the corpora, stores and pre-trainings of ``benchmarks/max_recipe.py`` (``ROOT/sSEED/pre-after``)::

    python benchmarks/max_crossfit.py --run c10:0=/tmp/mr-c10/c10-0:0 --out /tmp/crossfit
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from max_recipe import build  # noqa: E402  (the same corpora and held-out cores)

ALPHA = 0.1
EPOCHS = {"demo": 60, "c10": 60, "benchmark": 10}


def folds_of(cores: list[str], seed: int, k_max: int = 4) -> dict[str, int]:
    """Whole cores into ``min(k_max, n)`` folds: a seeded shuffle dealt round-robin."""
    order = sorted(cores)
    np.random.default_rng([seed, 11]).shuffle(order)
    k = min(k_max, len(order))
    return {c: i % k for i, c in enumerate(order)}


def cv_plus(fold_preds: np.ndarray, fold_of_pair: np.ndarray, residuals: np.ndarray, alpha: float):
    """CV+ interval per new spectrum. ``fold_preds``: (K, m) fold-model predictions of the m new
    spectra; ``fold_of_pair``/``residuals``: (n,) the fold and |out-of-fold residual| of each pair."""
    n = residuals.size
    mu = fold_preds[fold_of_pair]                      # (n, m): mu_{k(i)}(x_j)
    lows, highs = np.sort(mu - residuals[:, None], 0), np.sort(mu + residuals[:, None], 0)
    lo_rank, hi_rank = math.floor(alpha * (n + 1)), math.ceil((1 - alpha) * (n + 1))
    lower = lows[lo_rank - 1] if lo_rank >= 1 else np.full(mu.shape[1], -np.inf)
    upper = highs[hi_rank - 1] if hi_rank <= n else np.full(mu.shape[1], np.inf)
    return lower, upper


def conformal_quantile(residuals: np.ndarray, weights: np.ndarray, alpha: float) -> float:
    """The weighted (1 - alpha) conformal quantile: the smallest residual whose weight below it,
    with the new point's weight (the mean weight) added as an infinite score, reaches 1 - alpha."""
    order = np.argsort(residuals)
    r, w = residuals[order], weights[order] / (weights.sum() + weights.mean())
    reached = np.nonzero(np.cumsum(w) >= 1 - alpha)[0]
    return float(r[reached[0]]) if reached.size else float("inf")


def coverage(y, lower, upper) -> dict:
    inside = (y >= lower) & (y <= upper)
    return {"coverage": float(inside.mean()), "mean_width": float(np.mean(upper - lower))}


def run_one(label: str, root: Path, seed: int, out: Path, k_max: int) -> dict:
    from xrfhub.ml import registry
    from xrfhub.ml.loaders import labelled_samples
    from xrfhub.ml.metrics import regression_metrics

    kind = label.split(":")[0]
    hub, held = build(root, kind, int(label.split(":")[1]))
    pre = root / f"s{seed}" / "pre-after"
    x, y, cores, _ = labelled_samples(hub, "CaCO3", exclude_cores=list(held))
    hx, hy, hcores, _ = labelled_samples(hub, "CaCO3", cores=list(held))
    fold = folds_of(sorted(set(cores)), seed, k_max)
    pair_fold = np.array([fold[c] for c in cores])
    k = max(fold.values()) + 1
    plugin = registry.load("max")
    oof = np.full(y.size, np.nan)
    held_preds = np.zeros((k, hy.size))
    folder = out / label.replace(":", "-") / f"s{seed}"
    epochs = []
    for f in range(k):
        cache = folder / f"fold{f}.json"
        if cache.is_file():
            saved = json.loads(cache.read_text())
        else:
            tr, va = pair_fold != f, pair_fold == f
            cfg = registry.build_config(plugin, "tiny", {"seed": str(seed), "epochs": str(EPOCHS[kind])})
            start = time.perf_counter()
            fitted = plugin.fit_pairs(x[tr], y[tr], x[va], y[va], target="CaCO3", config=cfg,
                                      out=folder / f"fold{f}", init=pre, progress=False)
            saved = {"oof": fitted.predict(x[va]).tolist(), "held": fitted.predict(hx).tolist(),
                     "best_epoch": fitted.best_epoch, "seconds": round(time.perf_counter() - start, 1),
                     "cores": sorted(c for c, g in fold.items() if g == f)}
            folder.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(saved))
            print(f"# {label} s{seed} fold {f}: {saved['seconds']} s, epoch {saved['best_epoch']}", file=sys.stderr)
        oof[pair_fold == f] = saved["oof"]
        held_preds[f] = saved["held"]
        epochs.append(saved["best_epoch"])
    mean = held_preds.mean(0)
    resid = np.abs(y - oof)
    lo, hi = cv_plus(held_preds, pair_fold, resid, ALPHA)
    q_pairs = conformal_quantile(resid, np.ones_like(resid), ALPHA)
    per_core = {c: np.sum(cores == c) for c in set(cores)}
    q_cores = conformal_quantile(resid, np.array([1.0 / per_core[c] for c in cores]), ALPHA)
    # what `xrfhub train --set folds=K` stores: the cross-conformal calibration of the library on the
    # out-of-fold predictions (score and weighting chosen leaving one core out), around the mean
    from xrfhub.ml import intervals

    cal = intervals.from_predictions(y, oof, cores, "CaCO3", method=intervals.METHOD_CV)
    clo, chi = cal.interval(mean, 1 - ALPHA)
    row = {"corpus": label, "seed": seed, "k": k, "folds": {c: g for c, g in sorted(fold.items())},
           "held_out_cores": list(held), "best_epochs": epochs,
           "oof": regression_metrics(y, oof, float(np.mean(y))),
           "held_out": regression_metrics(hy, mean, float(np.mean(y))),
           "held_out_single": [regression_metrics(hy, p, float(np.mean(y)))["r2"] for p in held_preds],
           "interval_90": {"cv_plus": coverage(hy, lo, hi),
                           "oof_pairs": coverage(hy, mean - q_pairs, mean + q_pairs),
                           "oof_cores": coverage(hy, mean - q_cores, mean + q_cores),
                           "cross_conformal": {**coverage(hy, clo, chi), "score": cal.score,
                                               "weighting": cal.weighting}},
           "held_out_by_core": {c: {"bias": float(np.mean(mean[hcores == c] - hy[hcores == c])),
                                    "cv_plus": coverage(hy[hcores == c], lo[hcores == c], hi[hcores == c])["coverage"],
                                    "cross_conformal": coverage(hy[hcores == c], clo[hcores == c],
                                                                chi[hcores == c])["coverage"]}
                                for c in sorted(set(hcores))}}
    return row


def main(argv=None) -> None:
    import torch

    torch.set_num_threads(1)  # two runs share the 2-core machine
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", action="append", required=True,
                    help="corpus=ROOT:seed, e.g. c10:0=/tmp/mr-c10/c10-0:0 (repeatable)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=4)
    args = ap.parse_args(argv)
    log = args.out / "crossfit.json"
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in args.run:
        label, rest = spec.split("=")
        root, seed = rest.rsplit(":", 1)
        row = run_one(label, Path(root), int(seed), args.out, args.folds)
        rows = json.loads(log.read_text()) if log.is_file() else []
        rows = [r for r in rows if (r["corpus"], r["seed"]) != (label, int(seed))] + [row]
        log.write_text(json.dumps(rows, indent=1))
        iv = row["interval_90"]
        print(f"{label} s{seed}: OOF R2 {row['oof']['r2']:.3f}; held-out R2 {row['held_out']['r2']:.3f} "
              f"(single folds {', '.join(f'{v:.3f}' for v in row['held_out_single'])}); 90 % coverage "
              f"CV+ {iv['cv_plus']['coverage']:.2f} (width {iv['cv_plus']['mean_width']:.1f}), "
              f"OOF pairs {iv['oof_pairs']['coverage']:.2f}, OOF cores {iv['oof_cores']['coverage']:.2f}, "
              f"cross-conformal {iv['cross_conformal']['coverage']:.2f} (width {iv['cross_conformal']['mean_width']:.1f}, "
              f"{iv['cross_conformal']['score']}/{iv['cross_conformal']['weighting']})", flush=True)
    table(json.loads(log.read_text()))


#: today's default (tiny, whole-core validation, split-conformal on the calibration cores), as
#: measured by benchmarks/max_recipe.py on the same corpora, seeds and pre-trainings
TODAY = Path(__file__).parent.parent / "docs" / "results" / "max_recipe" / "fourth_pass.json"


def table(rows) -> None:
    today = {}
    if TODAY.is_file():
        for r in json.loads(TODAY.read_text()):
            sets = r.get("sets") or {}
            if sets.get("val_split") == "cores" and "refit" not in sets:
                today[(r["corpus"], r["seed"])] = r
    print("\n| run | today: calibration-core R2 | cross-fit: out-of-fold R2 | held-out R2 today | held-out R2 "
          "cross-fit (single folds) | 90 % coverage today (width) | cross-conformal (width) | CV+ (width) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["corpus"], r["seed"])):
        t = today.get((r["corpus"], r["seed"]))
        iv = r["interval_90"]
        tiv = (t or {}).get("held_out", {}).get("interval_90") if t else None
        print(f"| {r['corpus']} s{r['seed']} | {t['calibration']['r2']:.3f} | " if t else f"| {r['corpus']} s{r['seed']} | - | ",
              end="")
        print(f"{r['oof']['r2']:.3f} | {t['held_out']['r2']:.3f} | " if t else f"{r['oof']['r2']:.3f} | - | ", end="")
        print(f"**{r['held_out']['r2']:.3f}** ({min(r['held_out_single']):.2f}-{max(r['held_out_single']):.2f}) | "
              + (f"{tiv['coverage']:.2f} ({tiv['mean_width']:.1f}) | " if tiv else "- | ")
              + f"{iv['cross_conformal']['coverage']:.2f} ({iv['cross_conformal']['mean_width']:.1f}) | "
              f"{iv['cv_plus']['coverage']:.2f} ({iv['cv_plus']['mean_width']:.1f}) |")


if __name__ == "__main__":
    main()
