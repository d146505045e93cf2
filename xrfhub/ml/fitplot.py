"""The picture of a regression run: predicted against measured, core by core (``fit.png``).

Why: a geochemist judges a calibration by looking at it, not by one R2. The left panel shows
cores the model never trained on that chose or calibrated it: a cross-fitted run's training cores
out of fold (each point predicted by the fold model that left its core out), or the calibration
cores. One colour per core, so a core the model leans on shows as a cloud off the 1:1 line. The
right panel shows the held-out cores, the test set, with the run's interval around every
prediction. Each panel's title gives scikit-learn's R2 and the RMSE of what it shows. A run with
neither gets no picture.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..plots import pyplot, save_figure
from .metrics import regression_metrics

FILE = "fit.png"


def _panel(ax, y, pred, cores, title: str, *, lower=None, upper=None) -> None:
    y, pred, cores = np.asarray(y, float), np.asarray(pred, float), np.asarray(cores).astype(str)
    colours = pyplot().get_cmap("tab10")
    for i, core in enumerate(sorted(set(cores.tolist()))):
        m = cores == core
        if lower is not None:  # from bound to bound: a clipped interval may not reach its prediction
            ax.vlines(y[m], np.asarray(lower, float)[m], np.asarray(upper, float)[m], colors=[colours(i % 10)],
                      alpha=0.35, lw=0.8)
        ax.scatter(y[m], pred[m], s=12, color=colours(i % 10), label=f"{core} ({int(m.sum())})")
    lo = float(np.nanmin([y.min(), pred.min()]))
    hi = float(np.nanmax([y.max(), pred.max()]))
    ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--", label="1:1")
    score = regression_metrics(y, pred, float(np.mean(y)))
    if "r2" in score:
        title += f"\nR2 {score['r2']:.3f}, RMSE {score['rmse']:.2f}"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("measured")
    ax.set_ylabel("predicted")
    ax.legend(fontsize=6, loc="upper left", frameon=False)


def fit_figure(target: str, panels):
    """The figure (left open, for tests to read): ``panels`` is a list of ``(title, pairs)``, each
    ``pairs`` a dict of ``y``, ``pred``, ``cores`` and, for an interval, ``lower``, ``upper``."""
    panels = [(title, p) for title, p in panels if p is not None and len(p["y"])]
    fig, axes = pyplot().subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    for ax, (title, p) in zip(axes[0], panels):
        _panel(ax, p["y"], p["pred"], p["cores"], f"{target}: {title}", lower=p.get("lower"), upper=p.get("upper"))
    return fig


def write_fit_png(run_dir, target: str, panels) -> Path | None:
    """Write ``fit.png`` into the run folder; None (and nothing written) when no panel has pairs."""
    if not any(p is not None and len(p["y"]) for _, p in panels):
        return None
    return Path(save_figure(fit_figure(target, panels), Path(run_dir) / FILE))


def held_out_pairs(plugin, store, run_dir, target: str, holdout) -> dict | None:
    """The held-out cores' lab values and the run's predictions of them (``y``, ``pred``, ``cores``),
    for a run trained without calibration; None for a plugin that offers no ``predictor(run_dir)``
    or held-out cores without lab pairs."""
    from .loaders import labelled_samples

    if not hasattr(plugin, "predictor"):
        return None
    x, y, cores, _ = labelled_samples(store, target, cores=list(holdout))
    if not len(y):
        return None
    try:
        predictor = plugin.predictor(run_dir)
    except ConfigError:  # this run reads inputs other than spectra (e.g. logratio on element tables)
        return None
    return {"y": y, "pred": np.asarray(predictor(x), dtype=np.float64), "cores": cores}
