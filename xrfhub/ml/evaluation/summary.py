"""The report's Markdown: each result beside the paper's, and whether the paper's conclusion holds."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .figures import sort_amounts
from .protocol import ALL


def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


#: Columns shown as whole numbers, and columns shown as given (learning rates, mask ratios).
_WHOLE = ("n_train", "n_test", "runs")
_PLAIN = ("lr", "mask_ratio")


def _cell(column: str, value) -> str:
    if not isinstance(value, (float, np.floating)):
        return str(value)
    if np.isnan(value):
        return "n/a"
    if column in _WHOLE:
        return f"{value:.0f}"
    return f"{value:g}" if column in _PLAIN else _f(value)


def _table(rows: pd.DataFrame, columns: dict[str, str]) -> str:
    head = "| " + " | ".join(columns.values()) + " |\n|" + "---|" * len(columns) + "\n"
    body = ""
    for _, row in rows.iterrows():
        body += "| " + " | ".join(_cell(c, row[c]) for c in columns) + " |\n"
    return head + body


def verdict(ours_a, ours_b, ci_a, ci_b) -> str:
    """Does "a beats b" hold? By sign, and by non-overlapping 95% intervals."""
    if np.isnan(ours_a) or np.isnan(ours_b):
        return "not measured"
    if ours_a <= ours_b:
        return "does not hold"
    if ci_a[0] > ci_b[1]:
        return "holds"
    return "holds within uncertainty (intervals overlap)"


def _row(table, **where):
    rows = table
    for key, value in where.items():
        rows = rows[rows[key].astype(str) == str(value)]
    return rows.iloc[0] if len(rows) else None


def _ci(row):
    return (row["r2_ci_low"], row["r2_ci_high"]) if row is not None else (np.nan, np.nan)


def _r2(row):
    return float(row["r2_mean"]) if row is not None else float("nan")


def claims(amount: pd.DataFrame, few: pd.DataFrame, sweep: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(the paper's finding, what we measured, verdict) for each finding we can test."""
    out = []
    for target in dict.fromkeys(amount["target"]):
        t = amount[amount["target"] == target]
        small = sort_amounts(t[t["model"] == "max"])["amount"].tolist()[:3]
        for n in small:
            a, b = _row(t, model="max", amount=n), _row(t, model="scratch", amount=n)
            out.append((f"{target}: pre-training helps with {n} labelled pairs (Figure 4: MAX above scratch)",
                        f"MAX {_f(_r2(a))} vs scratch {_f(_r2(b))}", verdict(_r2(a), _r2(b), _ci(a), _ci(b))))
        lo, hi = _row(t, model="max", amount=small[0]), _row(t, model="max", amount=ALL)
        out.append((f"{target}: more labelled pairs give better models (Figure 4)",
                    f"MAX with {small[0]} pairs {_f(_r2(lo))}, with all {_f(_r2(hi))}",
                    verdict(_r2(hi), _r2(lo), _ci(hi), _ci(lo))))
        a, b = _row(t, model="max", amount=ALL), _row(t, model="baseline", amount=ALL)
        if b is not None:
            out.append((f"{target}: MAX beats the Lee et al. 2022 baseline with all pairs",
                        f"MAX {_f(_r2(a))} vs baseline {_f(_r2(b))}", verdict(_r2(a), _r2(b), _ci(a), _ci(b))))
        b = _row(t, model="logratio", amount=ALL)
        if b is not None:  # not a finding of the paper: the field's standard calibration, set beside it
            out.append((f"{target}: MAX beats log-ratio calibration (MLC, Weltje et al. 2015) with all pairs",
                        f"MAX {_f(_r2(a))} vs log-ratio {_f(_r2(b))}", verdict(_r2(a), _r2(b), _ci(a), _ci(b))))
        m = _row(t, model="mean", amount=ALL)
        for other, name in (("max", "MAX alone"), ("logratio", "log-ratio alone"), ("baseline", "the baseline")):
            b = _row(t, model=other, amount=ALL)
            if m is not None and b is not None:  # ours, not the paper's: the README's last step
                out.append((f"{target}: the mean of MAX and log-ratio beats {name} with all pairs",
                            f"mean {_f(_r2(m))} vs {other} {_f(_r2(b))}", verdict(_r2(m), _r2(b), _ci(m), _ci(b))))
    if {"CaCO3", "TOC"} <= set(few["target"]):
        c, t = _row(few, target="CaCO3", amount=0), _row(few, target="TOC", amount=0)
        out.append(("zero-shot on new cores: CaCO3 transfers, TOC does not (Table 1: 0.975 vs 0.018)",
                    f"CaCO3 {_f(_r2(c))} vs TOC {_f(_r2(t))}", verdict(_r2(c), _r2(t), _ci(c), _ci(t))))
    for target in dict.fromkeys(few["target"]):
        rows = sort_amounts(few[few["target"] == target])
        if len(rows) < 2:
            continue
        zero, best = _row(rows, amount=0), rows.iloc[-1]
        out.append((f"{target}: fine-tuning on pairs of the new cores beats zero-shot (Figure 5)",
                    f"{best['amount']} pairs {_f(_r2(best))} vs zero-shot {_f(_r2(zero))}",
                    verdict(_r2(best), _r2(zero), _ci(best), _ci(zero))))
    mean = sweep.groupby(["mask_ratio", "transform"], as_index=False).agg(
        r2_mean=("r2_mean", "mean"), r2_ci_low=("r2_ci_low", "mean"), r2_ci_high=("r2_ci_high", "mean"))
    main_mask = mean.loc[mean["transform"] == "instance", "mask_ratio"]
    at_half = mean[mean["mask_ratio"] == 0.5]
    inst = _row(at_half, transform="instance")
    for other in ("channel", "log"):
        o = _row(at_half, transform=other)
        if inst is not None and o is not None:
            out.append((f"instance normalisation beats the {other} transform at mask ratio 0.5 (Figure 2)",
                        f"{_f(_r2(inst))} vs {_f(_r2(o))} (mean over targets)",
                        verdict(_r2(inst), _r2(o), _ci(inst), _ci(o))))
    if len(main_mask) > 1:
        inst_rows = mean[mean["transform"] == "instance"]
        spread = float(inst_rows["r2_mean"].max() - inst_rows["r2_mean"].min())
        out.append(("mask ratios 0.3-0.7 give similar results with instance normalisation (Figure 2: within 0.03)",
                    f"spread {_f(spread)} over ratios {', '.join(f'{m:g}' for m in inst_rows['mask_ratio'])}",
                    "holds" if spread <= 0.03 else "does not hold"))
    return out


def side_by_side(amount: pd.DataFrame) -> list[str]:
    """Every model with all training pairs, one column each (R2 with its interval, RMSE)."""
    rows = amount[amount["amount"].astype(str) == ALL]
    if rows.empty:
        return []
    models = list(dict.fromkeys(rows["model"]))
    head = "| target | " + " | ".join(models) + " |\n|---|" + "---|" * len(models)
    body = []
    for target in dict.fromkeys(rows["target"]):
        cells = []
        for model in models:
            r = _row(rows, target=target, model=model)
            cells.append("n/a" if r is None else
                         f"R2 {_f(_r2(r))} [{_f(r['r2_ci_low'])}, {_f(r['r2_ci_high'])}], RMSE {_f(r['rmse_mean'])}")
        body.append(f"| {target} | " + " | ".join(cells) + " |")
    return ["### All training pairs, model beside model (held-out cores, mean over seeds)", "", head, *body, ""]


def markdown(amount, few, sweep, tune, paper_sweep, *, holdout, config, store) -> str:
    c = config
    lines = [
        "# Evaluation report",
        "",
        f"Store `{store}`; held-out cores (the test set, never trained on, not even by pre-training): "
        f"{', '.join(holdout)}. Targets: {', '.join(c.targets)}. Seeds: {', '.join(map(str, c.seeds))}.",
        "",
        "R2 is scikit-learn's (against the mean of the values scored). `r2_vs_training_mean` in the CSV "
        "tables is the reference code's R2 against the training mean, reported under its own name. "
        "Intervals are 95% bootstrap intervals of the seed-mean R2 over resampled test pairs "
        f"({c.bootstrap} resamples).",
        "",
        "## Protocol and budget",
        "",
        f"- Model: MAX `{c.preset}` preset{' with ' + ', '.join(f'{k}={v}' for k, v in c.model_sets) if c.model_sets else ''}; "
        f"pre-training on at most {c.pretrain_spectra or 'all'} spectra of the training cores for "
        f"{c.pretrain_epochs} epochs (lr {c.pretrain_lr:g}), the epoch chosen on 5% of those spectra.",
        f"- Fine-tuning: about {c.finetune_budget} pair presentations per run, {c.min_epochs}-{c.max_epochs} epochs, "
        f"batch {c.batch}; the epoch chosen on validation (up to {c.val_limit} pairs of the 20% part); the learning "
        f"rate chosen on validation among {', '.join(f'{v:g}' for v in c.finetune_lrs)} with every training pair "
        "(seed 0), per model and target.",
        "- Baseline: Lee et al. (2022) published settings (no search), fitted on the same training pairs.",
        *(["- Log-ratio calibration (`logratio`, MLC form): net peak areas of Al, Si, S, Cl, K, Ca, Ti, Mn, Fe "
            "integrated on the paired spectra, log-ratios to one denominator line, ridge regression on "
            "ln(value/(100-value)) or ln(value); the transform, denominator and ridge strength chosen by "
            "cross-validation over whole training cores only."]
          if getattr(c, "logratio", False) else []),
        *(["- Mean (`mean`): the per-pair mean of MAX and the log-ratio calibration fitted on the same split, as "
           "`xrfhub predict --run A --run B` gives it; nothing is fitted for it. Its interval is calibrated on the "
           "mean of the two models' predictions of the same calibration cores."]
          if getattr(c, "logratio", False) else []),
        f"- Few-shot: {int(round(100 * c.fewshot_test_fraction))}% of the held-out pairs form a fixed test part; "
        "few-shot runs draw their pairs (80% fine-tune, 20% epoch choice) from the rest, starting from the "
        "pre-trained autoencoder. Zero-shot is the data-amount MAX run on every training pair, scored on "
        "that part. The test part comes from the same cores as the few-shot pairs, as in the paper's case study.",
        "",
        "## What the paper found, and whether it holds here",
        "",
        "| the paper's finding | measured here | verdict |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {v} |" for a, b, v in claims(amount, few, sweep)]
    lines += ["", "## Data-amount curves (Figure 4)", "", "![data amount](data_amount.png)", ""]
    cols = {"target": "target", "model": "model", "amount": "pairs", "n_train": "n", "r2_mean": "R2",
            "r2_std": "sd (seeds)", "r2_ci_low": "CI low", "r2_ci_high": "CI high", "rmse_mean": "RMSE",
            "val_r2_mean": "val R2", "paper_r2": "paper R2"}
    ordered = pd.concat([sort_amounts(g) for _, g in amount.groupby(["target", "model"], sort=False)])
    lines += [_table(ordered, cols), ""]
    lines += side_by_side(amount)
    lines += ["## Zero-shot and few-shot (Figure 5, Table 1)", "",
              "![few-shot](fewshot.png)", ""]
    cols = {"target": "target", "amount": "pairs", "r2_mean": "R2", "r2_std": "sd (seeds)", "r2_ci_low": "CI low",
            "r2_ci_high": "CI high", "rmse_mean": "RMSE", "n_test": "test pairs", "paper_r2": "paper R2"}
    ordered = pd.concat([sort_amounts(g) for _, g in few.groupby("target", sort=False)])
    lines += [_table(ordered, cols), "", "## Mask ratio and transform (Figure 2)", "", "![sweep](mask_sweep.png)", ""]
    merged = sweep.merge(paper_sweep, on=["mask_ratio", "transform"], how="left")
    cols = {"target": "target", "mask_ratio": "mask", "transform": "transform", "r2_mean": "R2",
            "r2_ci_low": "CI low", "r2_ci_high": "CI high", "val_r2_mean": "val R2",
            "paper_r2_mean": "paper R2 (mean of targets, best lr)"}
    lines += [_table(merged, cols), ""]
    if len(tune):
        lines += ["## Learning rates chosen on validation", "",
                  _table(tune, {"model": "model", "target": "target", "lr": "lr", "val_rmse": "val RMSE",
                                "val_r2": "val R2"}), ""]
    return "\n".join(lines)
