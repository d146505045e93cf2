"""The report's figures (PNG): data-amount curves, few-shot curves and the mask-ratio sweep."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...plots import pyplot, save_figure
from .protocol import ALL

COLOURS = {"max": "tab:red", "scratch": "tab:blue", "baseline": "tab:grey", "logratio": "tab:green",
           "mean": "tab:purple"}
LABELS = {"max": "MAX (pre-trained)", "scratch": "same ViT from scratch", "baseline": "Lee et al. 2022 (NMF + SVR)",
          "logratio": "log-ratio calibration (MLC)", "mean": "mean of MAX and log-ratio"}


def sort_amounts(table: pd.DataFrame) -> pd.DataFrame:
    """Rows in increasing data amount ("all" last)."""
    key = table["amount"].map(lambda a: float("inf") if str(a) == ALL else float(a))
    return table.assign(_key=key).sort_values("_key").drop(columns="_key")


def _errorbars(ax, rows: pd.DataFrame, x, **style):
    low = (rows["r2_mean"] - rows["r2_ci_low"]).clip(lower=0)
    high = (rows["r2_ci_high"] - rows["r2_mean"]).clip(lower=0)
    ax.errorbar(x, rows["r2_mean"], yerr=[low, high], capsize=3, marker="o", ms=4, **style)


def data_amount(summary: pd.DataFrame, path) -> None:
    plt = pyplot()
    targets = list(dict.fromkeys(summary["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(5.5 * len(targets), 4.2), squeeze=False)
    for ax, target in zip(axes[0], targets):
        for model in COLOURS:
            rows = sort_amounts(summary[(summary["target"] == target) & (summary["model"] == model)])
            if rows.empty:
                continue
            _errorbars(ax, rows, rows["n_train"], color=COLOURS[model], label=LABELS[model])
            # validation pairs come from the training cores: the in-distribution view, beside the test
            ax.plot(rows["n_train"], rows["val_r2_mean"], ls=":", marker=".", color=COLOURS[model], alpha=0.8,
                    label=f"{LABELS[model]}: validation (training cores)")
            below = rows["r2_mean"] < -1.0
            if below.any():
                ax.annotate(f"held-out R2 below -1 ({rows['r2_mean'][below].max():.2f} at best)",
                            (0.02, 0.02 + 0.05 * list(COLOURS).index(model)), xycoords="axes fraction",
                            fontsize=7, color=COLOURS[model])
            if rows["paper_r2"].notna().any():
                ax.plot(rows["n_train"], rows["paper_r2"], ls="--", color=COLOURS[model], alpha=0.6,
                        label=f"paper: {LABELS[model]}")
        ax.set_xscale("log")
        ax.set_xlabel("labelled training pairs")
        ax.set_ylabel("R2 on the held-out cores (sklearn)")
        ax.set_title(target)
        ax.set_ylim(max(-1.0, ax.get_ylim()[0]), 1.02)
        ax.axhline(0, color="0.7", lw=0.7)
        ax.legend(fontsize=6, loc="lower right")
    fig.suptitle("data-amount curves on the held-out cores: mean over seeds, 95% bootstrap interval; "
                 "dotted: validation; dashed: the paper's Figure 4", fontsize=10)
    save_figure(fig, path)


def fewshot(summary: pd.DataFrame, path) -> None:
    plt = pyplot()
    targets = list(dict.fromkeys(summary["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(5.5 * len(targets), 4.2), squeeze=False)
    for ax, target in zip(axes[0], targets):
        rows = sort_amounts(summary[summary["target"] == target])
        x = np.arange(len(rows))
        _errorbars(ax, rows, x, color=COLOURS["max"], label="MAX, ours")
        if rows["paper_r2"].notna().any():
            ax.plot(x, rows["paper_r2"], ls="--", color="k", marker="x", label="paper (Table 1 / Figure 5)")
        ax.set_xticks(x, [("0\n(zero-shot)" if str(a) == "0" else f"{a}") for a in rows["amount"]])
        ax.set_xlabel("pairs of the held-out cores fine-tuned on")
        ax.set_ylabel("R2 on the fixed few-shot test part")
        ax.set_title(target)
        ax.set_ylim(max(-1.0, ax.get_ylim()[0]), 1.02)
        ax.axhline(0, color="0.7", lw=0.7)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("zero-shot and few-shot on held-out cores")
    save_figure(fig, path)


def mask_sweep(summary: pd.DataFrame, paper: pd.DataFrame, path) -> None:
    plt = pyplot()
    ours = summary.groupby(["mask_ratio", "transform"], as_index=False)["r2_mean"].mean()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    labels = [f"{m:g}\n{t}" for m, t in zip(ours["mask_ratio"], ours["transform"])]
    x = np.arange(len(ours))
    ax.bar(x - 0.2, ours["r2_mean"], width=0.4, color="tab:red", label="ours: R2 held-out, mean of targets")
    merged = ours.merge(paper, on=["mask_ratio", "transform"], how="left")
    ax.bar(x + 0.2, merged["paper_r2_mean"], width=0.4, color="0.6", label="paper: R2 mean (best lr)")
    ax.set_xticks(x, labels)
    ax.set_xlabel("mask ratio / transform")
    ax.set_ylabel("R2")
    ax.set_ylim(min(0.0, float(np.nanmin(ours["r2_mean"])) - 0.05), 1.0)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("pre-training settings (the paper's Figure 2)")
    save_figure(fig, path)
