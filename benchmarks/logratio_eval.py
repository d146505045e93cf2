"""The log-ratio calibration on the evaluation protocol's own splits, beside the baseline, without MAX.

``xrfhub evaluate`` runs every model (MAX pre-training included: 94 minutes on the `benchmark`
corpus here). This script runs only the data-amount cells of the models named, with the same
protocol (held-out cores, seeds, 80/20 split, nested amounts) and the same cell folders, so its
numbers sit beside docs/results.md's row for row, and a later full ``xrfhub evaluate --out`` on
the same folder reuses them. Prints, per target and amount: R2 (sklearn), its 95% bootstrap
interval, RMSE, for each model, and the logratio/baseline RMSE ratio.

    python benchmarks/logratio_eval.py --store hub/ --holdout-cores SO264-58-1,SO264-17-3,PS97-065-2 \\
        --out report/ --models logratio,baseline --baseline-amounts all
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    from xrfhub.ml.evaluation.protocol import EvalConfig
    from xrfhub.ml.evaluation.report import _summarise, run_table
    from xrfhub.ml.evaluation.run import Evaluation, run_cells

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--holdout-cores", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--models", default="logratio,baseline")
    ap.add_argument("--baseline-amounts", default="all", help="data amounts run for the (slower) baseline")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--targets", default="CaCO3,TOC")
    args = ap.parse_args(argv)
    config = EvalConfig().replace(seeds=args.seeds, targets=args.targets, bootstrap="1000")
    holdout = tuple(c.strip() for c in args.holdout_cores.split(",") if c.strip())
    evaluation = Evaluation(args.store, holdout, args.out, config)
    models = [m.strip() for m in args.models.split(",")]
    baseline_amounts = {a.strip() for a in args.baseline_amounts.split(",")}
    cells = [c for c in evaluation.cells() if c.meta.get("kind") == "amount" and c.meta["model"] in models
             and (c.meta["model"] != "baseline" or str(c.meta["amount"]) in baseline_amounts)]
    results = run_cells(cells, args.out)
    by_cell = {r["cell"]: r for r in results}
    table = _summarise(run_table(results, "amount"), ["target", "model", "amount"], by_cell, config.bootstrap)
    table.to_csv(args.out / "logratio_data_amount.csv", index=False, float_format="%.4f")
    print("| target | model | pairs | n | R2 | CI low | CI high | RMSE | val R2 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(f"| {r.target} | {r.model} | {r.amount} | {r.n_train:.0f} | {r.r2_mean:.3f} | {r.r2_ci_low:.3f} | "
              f"{r.r2_ci_high:.3f} | {r.rmse_mean:.3f} | {r.val_r2_mean:.3f} |")
    for target in dict.fromkeys(table["target"]):
        t = table[(table["target"] == target) & (table["amount"] == "all")]
        ours, base = t[t["model"] == "logratio"], t[t["model"] == "baseline"]
        if len(ours) and len(base):
            ratio = float(ours["rmse_mean"].iloc[0]) / float(base["rmse_mean"].iloc[0])
            print(f"{target}, all pairs: RMSE logratio {float(ours['rmse_mean'].iloc[0]):.3f}, baseline "
                  f"{float(base['rmse_mean'].iloc[0]):.3f}, ratio {ratio:.2f}; "
                  f"R2 {float(ours['r2_mean'].iloc[0]):.3f} vs {float(base['r2_mean'].iloc[0]):.3f}")
    seconds = [r.get("seconds", np.nan) for r in results if r.get("model") == "logratio"]
    if seconds:
        print(f"logratio fit+score seconds per cell: median {np.nanmedian(seconds):.2f}")


if __name__ == "__main__":
    main()
