"""Pictures of a diffraction evaluation: F1 per class or phase, confusion counts, ramps.

Each function writes one PNG and returns its path (None when there is nothing to draw).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...plots import pyplot, save_figure
from .run import CELLS, HELD_OUT_FILE


def f1_bars(runs: pd.DataFrame, path: Path) -> Path | None:
    """Held-out F1 per class or phase: one bar per model and input (mean over seeds), one dot per seed."""
    names = [c for c in runs.columns if c.startswith("f1:")]
    if not names:
        return None
    plt = pyplot()
    variants = list(dict.fromkeys(zip(runs["model"], runs["input"])))
    width = 0.8 / len(variants)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) * max(1, len(variants)) / 2), 3.6))
    for v, (model, inp) in enumerate(variants):
        rows = runs[(runs["model"] == model) & (runs["input"] == inp)]
        x = np.arange(len(names)) + (v - (len(variants) - 1) / 2) * width
        ax.bar(x, rows[names].mean().values, width, label=f"{model}, {inp}", color=f"C{v}", alpha=0.8)
        for _, row in rows.iterrows():
            ax.plot(x, row[names].values.astype(float), ".", color="k", ms=3)
    ax.set_xticks(np.arange(len(names)), [n[3:] for n in names], rotation=30 if len(names) > 4 else 0, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1 on held-out series")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.set_title("F1 per class (bars: mean over seeds, dots: seeds)", fontsize=9)
    return save_figure(fig, path)


def confusions(results: list[dict], path: Path) -> Path | None:
    """Held-out confusion counts summed over seeds, one panel per model and input (for phase
    sets: TN/FP/FN/TP per phase, phases that never occur in truth or prediction left out)."""
    panels = {}
    for r in results:
        conf = r["metrics"].get("held_out", {}).get("confusion")
        if not conf:
            continue
        if "matrix" in conf:
            matrix, rows, cols = np.asarray(conf["matrix"]), conf["labels"], conf["labels"]
        else:
            rows = list(conf["per_phase"])
            matrix, cols = np.array([np.ravel(conf["per_phase"][p]) for p in rows]), ["TN", "FP", "FN", "TP"]
        key = (r["model"], r["input"])
        total, _, _ = panels.get(key, (0, rows, cols))
        panels[key] = (total + matrix, rows, cols)
    if not panels:
        return None
    _, rows0, cols0 = next(iter(panels.values()))
    if cols0 == ["TN", "FP", "FN", "TP"]:  # phases never true nor predicted anywhere: all TN, left out
        seen = np.any([m[:, 1:].sum(axis=1) > 0 for m, _, _ in panels.values()], axis=0)
        if seen.any():
            panels = {k: (m[seen], [r for r, keep in zip(rows, seen) if keep], c) for k, (m, rows, c) in panels.items()}
    plt = pyplot()
    inputs = list(dict.fromkeys(k[1] for k in panels))
    models = list(dict.fromkeys(k[0] for k in panels))
    _, rows0, cols0 = next(iter(panels.values()))
    size = (1.5 + 0.45 * len(cols0), 0.8 + 0.3 * len(rows0))
    fig, axes = plt.subplots(len(models), len(inputs), figsize=(size[0] * len(inputs), size[1] * len(models)),
                             squeeze=False)
    for (model, inp), (matrix, rows, cols) in panels.items():
        ax = axes[models.index(model), inputs.index(inp)]
        ax.imshow(matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
        if matrix.size <= 400:
            for (i, j), v in np.ndenumerate(matrix):
                ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(cols)), cols, fontsize=6, rotation=45, ha="right")
        ax.set_yticks(range(len(rows)), rows, fontsize=6)
        ax.set_title(f"{model}, {inp}", fontsize=8)
    fig.suptitle("held-out confusion, summed over seeds (rows: true class or phase)", fontsize=9)
    return save_figure(fig, path)


def ramps(results: list[dict], out: Path, path: Path) -> Path | None:
    """Predicted class along each held-out ramp, one panel per model and input, every seed
    (slightly offset), with the true switch (dashed black)."""
    variants = list(dict.fromkeys((r["model"], r["input"]) for r in results))
    plt = pyplot()
    fig, axes = plt.subplots(len(variants), 1, figsize=(7, 1.6 * len(variants) + 0.6), squeeze=False)
    drawn = False
    for ax, (model, inp) in zip(axes[:, 0], variants):
        runs = [r for r in results if (r["model"], r["input"]) == (model, inp)]
        for k, r in enumerate(runs):
            table_path = out / CELLS / r["cell"] / "run" / HELD_OUT_FILE
            classes = r["metrics"].get("classes", [])
            if not table_path.is_file() or not classes:
                continue
            table = pd.read_csv(table_path, keep_default_na=False)
            scan = next((c for c in table.columns if c not in ("series", "pattern_id", "true", "predicted")
                         and not c.startswith("top")), None)
            table = table.sort_values(["series", scan] if scan else ["series"], kind="stable")
            x = table[scan].to_numpy(float) if scan else np.arange(len(table), dtype=float)
            level = {c: i for i, c in enumerate(map(str, classes))}
            y = np.array([level.get(str(c), np.nan) for c in table["predicted"]]) + (k - (len(runs) - 1) / 2) * 0.08
            ax.plot(x, y, ".", ms=2.5, color=f"C{k}", label=f"seed {r['seed']}")
            true = np.array([level.get(str(c), np.nan) for c in table["true"]])
            change = np.flatnonzero(np.diff(true) != 0)
            if len(change) and k == 0:
                ax.axvline(x[change[0] + 1], color="k", ls="--", lw=1)
            ax.set_yticks(range(len(classes)), classes, fontsize=7)
            ax.set_xlabel(scan or "pattern", fontsize=7)
            drawn = True
        ax.set_title(f"{model}, {inp}", fontsize=8)
    if not drawn:
        pyplot().close(fig)
        return None
    axes[0, 0].legend(fontsize=6, loc="lower right")
    fig.suptitle("held-out ramp: predicted class along the scan (dashed: true switch)", fontsize=9)
    return save_figure(fig, path)
