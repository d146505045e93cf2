"""The evaluation report: CSV tables, PNG figures and a Markdown summary beside the paper's numbers.

Uncertainty: each table row averages runs over seeds (mean and standard deviation) and carries a
95% bootstrap interval of that mean: the test pairs are resampled (seeded), every seed's R2 is
recomputed on the same resample and averaged. A claim of the paper "holds" when our difference
has the paper's sign and the intervals do not overlap, "holds within uncertainty" when only the
sign agrees, and "does not hold" otherwise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .protocol import ALL

TRANSFORM_NAMES = {"instance": "instance_normalize", "channel": "normalize", "log": "log"}  # the paper's names


# ---------------------------------------------------------------------------- statistics


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    sst = float(np.sum((y - y.mean()) ** 2))
    sse = float(np.sum((y - pred) ** 2))
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0)


def bootstrap_mean_r2(y: np.ndarray, preds: list[np.ndarray], n: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the seed-mean R2 under resampling of the test pairs."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < 3 or n < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    stats = np.empty(n)
    for i in range(n):
        take = rng.integers(0, len(y), len(y))
        stats[i] = np.mean([r2(y[take], np.asarray(p)[take]) for p in preds])
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def _summarise(runs: pd.DataFrame, by: list[str], results: dict, n_boot: int) -> pd.DataFrame:
    rows = []
    for key, group in runs.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        cells = [results[c] for c in group["cell"]]
        y = np.asarray(cells[0]["y"])
        low, high = bootstrap_mean_r2(y, [np.asarray(c["pred"]) for c in cells], n_boot)
        rows.append({**dict(zip(by, key)), "runs": len(group), "n_train": group["n_train"].mean(),
                     "n_test": len(y), "r2_mean": group["r2"].mean(), "r2_std": group["r2"].std(ddof=0),
                     "r2_ci_low": low, "r2_ci_high": high, "rmse_mean": group["rmse"].mean(),
                     "r2_vs_training_mean_mean": group["r2_vs_training_mean"].mean(),
                     "val_r2_mean": group["val_r2"].mean()})
    return pd.DataFrame(rows)


def run_table(results: list[dict], kind: str) -> pd.DataFrame:
    """One row per finished run of ``kind``."""
    rows = []
    for r in results:
        if r["kind"] != kind:
            continue
        rows.append({"cell": r["cell"], "model": r.get("model"), "target": r.get("target"),
                     "amount": str(r.get("amount")), "n_train": r["n_train"], "seed": r.get("seed"),
                     "mask_ratio": r.get("mask_ratio"), "transform": r.get("transform"), "lr": r.get("lr"),
                     "epochs": r.get("epochs"), "best_epoch": r.get("best_epoch"),
                     "r2": r.get("test", {}).get("r2"), "r2_vs_training_mean": r.get("test", {}).get("r2_vs_training_mean"),
                     "rmse": r.get("test", {}).get("rmse"), "val_r2": r["val"].get("r2"), "val_rmse": r["val"].get("rmse"),
                     "seconds": r.get("seconds")})
    return pd.DataFrame(rows)


def zero_shot(results: list[dict]) -> list[dict]:
    """The data-amount MAX runs on every training pair, re-scored on the few-shot test part."""
    out = []
    for r in results:
        if r["kind"] == "amount" and r["model"] == "max" and r["amount"] == ALL:
            where = {i: k for k, i in enumerate(r["test_index"])}
            take = [where[i] for i in r["zero_shot_index"]]
            y, pred = np.asarray(r["y"])[take], np.asarray(r["pred"])[take]
            from ..metrics import regression_metrics

            out.append({**r, "cell": r["cell"] + "#zero-shot", "kind": "fewshot", "amount": 0,
                        "n_train": 0, "y": y.tolist(), "pred": pred.tolist(),
                        "test": regression_metrics(y, pred, r["train_mean"])})
    return out


# ---------------------------------------------------------------------------- the report


def write_report(results: list[dict], out, *, reference: Path | None, holdout, config, store) -> Path:
    """Write tables, figures and ``summary.md`` into ``out``; returns the summary's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = results + zero_shot(results)
    by_cell = {r["cell"]: r for r in results}
    n_boot = config.bootstrap
    ref = _reference(reference)

    amount = run_table(results, "amount")
    amount_sum = _summarise(amount, ["target", "model", "amount"], by_cell, n_boot)
    amount_sum["paper_r2"] = [_paper_amount(ref, r.target, r.model, r.amount, r.n_train) for r in amount_sum.itertuples()]
    few = run_table(results, "fewshot")
    few_sum = _summarise(few, ["target", "amount"], by_cell, n_boot)
    few_sum["paper_r2"] = [_paper_case(ref, r.target, r.amount) for r in few_sum.itertuples()]
    sweep = pd.concat([run_table(results, "sweep"), _main_as_sweep(amount, config)], ignore_index=True)
    sweep_sum = _summarise(sweep, ["target", "mask_ratio", "transform"], by_cell, n_boot)
    tune = run_table(results, "tune")

    for name, table in [("data_amount_runs", amount), ("data_amount", amount_sum), ("fewshot_runs", few),
                        ("fewshot", few_sum), ("mask_sweep_runs", sweep), ("mask_sweep", sweep_sum),
                        ("learning_rate_choice", tune)]:
        table.to_csv(out / f"{name}.csv", index=False, float_format="%.4f")
    from . import figures

    figures.data_amount(amount_sum, out / "data_amount.png")
    figures.fewshot(few_sum, out / "fewshot.png")
    figures.mask_sweep(sweep_sum, _paper_sweep(ref), out / "mask_sweep.png")
    from .summary import markdown

    text = markdown(amount_sum, few_sum, sweep_sum, tune, _paper_sweep(ref), holdout=holdout, config=config,
                    store=store)
    from .intervals_report import interval_section

    text += interval_section(results, out, config)
    path = out / "summary.md"
    path.write_text(text)
    return path


def _main_as_sweep(amount: pd.DataFrame, config) -> pd.DataFrame:
    main = amount[(amount["model"] == "max") & (amount["amount"] == ALL)
                  & amount["seed"].isin(list(config.sweep_seeds))].copy()
    main["mask_ratio"], main["transform"] = config.mask_ratio, config.transform
    return main


def _reference(folder: Path | None) -> dict[str, pd.DataFrame]:
    if folder is None or not Path(folder).is_dir():
        return {}
    found = {}
    for name in ("xpt_finetune_data_amount", "xpt_finetune_data_amount_case", "xpt_finetune_pretrained_r2_mean"):
        path = Path(folder) / f"{name}.csv"
        if path.is_file():
            found[name] = pd.read_csv(path, index_col=0)
    return found


def _paper_amount(ref, target, model, amount, n_train) -> float:
    table = ref.get("xpt_finetune_data_amount")
    column = {"max": "r2_ft", "scratch": "r2_scratch"}.get(model)
    if table is None or column is None:
        return float("nan")
    rows = table[table["target"] == target]
    if rows.empty:
        return float("nan")
    row = rows.iloc[-1] if amount == ALL else rows[rows["data_no"] == int(amount)]
    if isinstance(row, pd.DataFrame):
        return float(row[column].iloc[0]) if len(row) else float("nan")
    return float(row[column])


def _paper_case(ref, target, amount) -> float:
    table = ref.get("xpt_finetune_data_amount_case")
    if table is None:
        return float("nan")
    rows = table[table["target"] == target]
    if rows.empty:
        return float("nan")
    if amount == ALL:
        return float(rows["r2_ft"].iloc[-1])
    match = rows[rows["data_no"] == int(amount)]
    return float(match["r2_ft"].iloc[0]) if len(match) else float("nan")


def _paper_sweep(ref) -> pd.DataFrame:
    """The paper's grid (R2 averaged over CaCO3 and TOC), best learning rate per cell, our names."""
    table = ref.get("xpt_finetune_pretrained_r2_mean")
    if table is None:
        return pd.DataFrame(columns=["mask_ratio", "transform", "paper_r2_mean", "paper_lr"])
    names = {v: k for k, v in TRANSFORM_NAMES.items()}
    best = table.loc[table.groupby(["mask_ratio", "transform"])["r2_mean"].idxmax()]
    return pd.DataFrame({"mask_ratio": best["mask_ratio"].values,
                         "transform": [names.get(t, t) for t in best["transform"]],
                         "paper_r2_mean": best["r2_mean"].values, "paper_lr": best["lr"].values})
