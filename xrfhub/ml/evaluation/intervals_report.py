"""The evaluation report's interval section: coverage and mean width on held-out cores, per model.

One row per (target, model, seed) run in ``intervals_runs.csv``; per (target, model) the pooled
coverage (over every seed's held-out pairs) and mean width in ``intervals.csv`` and in the summary,
with the cores where coverage fell below nominal by more than two binomial standard errors named:
there the calibration cores did not stand for the held-out core (exchangeability broken).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def interval_table(results: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per interval run, one row per target and model)."""
    runs = pd.DataFrame([{"target": r["target"], "model": r["model"], "seed": r["seed"],
                          "level": r["interval"]["level"], "method": r["interval"].get("method", "split-conformal"),
                          "score": r["interval"].get("score", "absolute"),
                          "weighting": r["interval"].get("weighting", "pairs"), "n_test": r["interval"]["n"],
                          "coverage": r["interval"]["coverage"], "mean_width": r["interval"]["mean_width"],
                          "half_width": r["interval"]["half_width"], "n_calibration": r["n_calibration"],
                          "calibration_cores": " ".join(r["calibration_cores"]), "test_r2": r["test"].get("r2"),
                          "test_rmse": r["test"].get("rmse")}
                         for r in results if r.get("kind") == "interval"])
    if runs.empty:
        return runs, runs
    rows = []
    for (target, model), g in runs.groupby(["target", "model"], sort=False):
        covered = float((g["coverage"] * g["n_test"]).sum() / g["n_test"].sum())
        rows.append({"target": target, "model": model, "level": g["level"].iloc[0], "method": g["method"].iloc[0],
                     "scores": " ".join(sorted(set(g["score"] + "/" + g["weighting"]))), "seeds": len(g),
                     "coverage": covered, "coverage_min": g["coverage"].min(), "coverage_max": g["coverage"].max(),
                     "mean_width": float(g["mean_width"].mean()), "test_rmse": float(g["test_rmse"].mean())})
    return runs, pd.DataFrame(rows)


def interval_section(results: list[dict], out: Path, config) -> str:
    """Write the interval tables into ``out`` and return the summary's Markdown section ('' if none)."""
    runs, summary = interval_table(results)
    if runs.empty:
        return ""
    runs.to_csv(Path(out) / "intervals_runs.csv", index=False, float_format="%.4f")
    summary.to_csv(Path(out) / "intervals.csv", index=False, float_format="%.4f")
    lines = ["", "## Prediction intervals (split conformal, whole calibration cores)", "",
             f"Per seed, a {config.calibration_fraction:g} share of the training cores (at least one) is held apart, "
             "the model fitted on the rest, and the held-apart cores' scores set the interval: method "
             f"`{config.interval_method}` (`split-conformal`: the ceil((n+1)*{config.interval:g})-th smallest absolute "
             "residual; `split-conformal-cores`: score and weighting chosen leaving one calibration core out, "
             "column scores, per seed). Coverage is counted on the held-out cores' lab values, pooled over seeds; "
             "min and max are per seed.", "",
             "| target | model | level | scores | seeds | coverage | min | max | mean width (wt%) | test RMSE |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        lines.append(f"| {r.target} | {r.model} | {r.level:g} | {r.scores} | {r.seeds} | {r.coverage:.3f} | "
                     f"{r.coverage_min:.3f} | {r.coverage_max:.3f} | {r.mean_width:.2f} | {r.test_rmse:.2f} |")
    notes = sorted({f"{r['target']}, {r['model']}, seed {r['seed']}: {n}" for r in results
                    if r.get("kind") == "interval" for n in r.get("notes", [])})
    if notes:
        lines += ["", "Cores where the interval does not hold (exchangeability broken):", ""]
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
