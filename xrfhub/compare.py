"""Two prediction runs of one property, core by core: where two models disagree, sample first.

Why: on generated 10-core corpora MAX and the log-ratio calibration each miss a few test cores,
off by 4-6 wt% over a whole core, and rarely the same core. Where their per-core medians differed
by more than 4 wt%, one of the two was 4-6 wt% off; where they differed by under 3 wt%, MAX was
within 1.3 wt% (docs/results.md, tenth pass). Neither model can say which cores it misses; the
pair can point at them. A core repository then spends its next lab samples on the cores at the
top of this table, most usefully on those without lab values yet. To choose between the two
models, each run's ``interpolation_r2`` (its training cores scored out of fold) is set beside the
table: a figure the test cores did not make.

The table reads the two runs as the store holds them (``xrfhub predict`` wrote them over the same
spectra) and compares the spectra both predicted. With intervals (``predict --interval``) in both
runs, it also gives the share of each core's spectra whose two intervals do not overlap: there at
least one of the two intervals misses.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import ConfigError

BOUND_SUFFIXES = ("_lower", "_upper")


def _target(a, b, target: str | None) -> str:
    """The property both runs predict: ``target`` if both hold it, or the only one they share."""
    def values(ds):
        return {v for v in ds.data_vars if not v.endswith(BOUND_SUFFIXES)}

    shared = sorted(values(a) & values(b))
    if target is not None:
        if target not in shared:
            raise ConfigError(f"--target {target}: runs {a.attrs['run']} and {b.attrs['run']} both predict "
                              f"{', '.join(shared) or 'nothing in common'}")
        return target
    if len(shared) != 1:
        raise ConfigError(f"runs {a.attrs['run']} and {b.attrs['run']} share "
                          f"{', '.join(shared) or 'no predicted property'}; name one with --target")
    return shared[0]


def compare_runs(store, run_a: str, run_b: str, *, target: str | None = None) -> pd.DataFrame:
    """One row per core, sorted by ``|median_difference|`` (largest first). ``run_a`` and ``run_b``
    are prediction run ids (``xrfhub runs``) or training run folders (their latest prediction run).
    Columns: ``n_spectra`` predicted by both, ``median_a``, ``median_b``, ``median_difference``
    (the median over the core's spectra of a - b), ``p90_abs_difference`` (the 90th percentile of
    ``|a - b|``), ``intervals_apart`` (the share of spectra whose two intervals do not overlap; NaN
    without intervals in both runs) and ``lab_samples`` (the core's lab values of the property).
    ``attrs`` name the runs, the property and each run's ``interpolation_r2`` (or None)."""
    from .api import open as open_store

    run_a, run_b = _run_id(store, run_a), _run_id(store, run_b)
    if run_a == run_b:
        raise ConfigError(f"compare two different runs, not {run_a} with itself")
    a = open_store(store, "predictions", run=run_a, index=False)
    b = open_store(store, "predictions", run=run_b, index=False)
    if a.attrs.get("spectra_group") != b.attrs.get("spectra_group") or a.sizes != b.sizes:
        raise ConfigError(f"runs {run_a} ({a.attrs.get('spectra_group')}) and {run_b} "
                          f"({b.attrs.get('spectra_group')}) predict different spectra; compare runs of one group")
    name = _target(a, b, target)
    va, vb = (np.asarray(ds[name].values, dtype=np.float64) for ds in (a, b))
    both = np.isfinite(va) & np.isfinite(vb)
    if not both.any():
        raise ConfigError(f"no spectrum has a {name} prediction from both {run_a} and {run_b} (each run predicts "
                          "one tube voltage: see `xrfhub runs`)")
    bounds = [f"{name}{s}" for s in BOUND_SUFFIXES]
    apart = None
    if all(k in ds for ds in (a, b) for k in bounds):
        (la, ua), (lb, ub) = ((np.asarray(ds[k].values, dtype=np.float64) for k in bounds) for ds in (a, b))
        apart = (la > ub) | (lb > ua)
    cores = np.asarray(a["core"].values).astype(str)
    lab = _lab_counts(store, name)
    rows = []
    for core in sorted(set(cores[both])):
        sel = both & (cores == core)
        diff = va[sel] - vb[sel]
        rows.append({"core": core, "n_spectra": int(sel.sum()), "median_a": float(np.median(va[sel])),
                     "median_b": float(np.median(vb[sel])), "median_difference": float(np.median(diff)),
                     "p90_abs_difference": float(np.percentile(np.abs(diff), 90)),
                     "intervals_apart": float(np.mean(apart[sel])) if apart is not None else float("nan"),
                     "lab_samples": int(lab.get(core, 0))})
    table = pd.DataFrame(rows)
    table = table.iloc[np.argsort(-table["median_difference"].abs().to_numpy(), kind="stable")].reset_index(drop=True)
    table.attrs.update(run_a=run_a, run_b=run_b, target=name,
                       interpolation_r2_a=_interpolation_r2(a), interpolation_r2_b=_interpolation_r2(b))
    return table


def _run_id(store, run: str) -> str:
    """A prediction run id as given, or for a training run folder (``runs/caco3``) the most recent
    prediction run the store holds from it."""
    from pathlib import Path

    from .predictions import list_runs

    folder = Path(run)
    if not (folder / "run.json").is_file():
        return run
    made = [r["run"] for r in list_runs(store) if r["run_dir"] and Path(r["run_dir"]).resolve() == folder.resolve()]
    if not made:
        raise ConfigError(f"the store holds no predictions of the run in {run}: `xrfhub predict --run {run}` first")
    return made[-1]  # list_runs is oldest first


def _interpolation_r2(ds) -> float | None:
    """The training run's figure from its training cores alone (``interpolation_r2`` in its
    ``run.json``: a cross-fitted or cross-conformal run), the one to choose between two models on;
    None when the run has none or its folder is gone."""
    import json
    from pathlib import Path

    provenance = json.loads(ds.attrs.get("provenance", "{}"))
    if "interpolation_r2" in provenance:  # a mean of several runs keeps its own (xrfhub.ml.ensemble)
        value = provenance["interpolation_r2"]
        return None if value is None else float(value)
    run_dir = provenance.get("run_dir")
    path = Path(run_dir) / "run.json" if run_dir else None
    if path is None or not path.is_file():
        return None
    value = json.loads(path.read_text()).get("metrics", {}).get("interpolation_r2")
    return None if value is None else float(value)


def _lab_counts(store, name: str) -> dict[str, int]:
    """Lab values of ``name`` per core (none where the store has no such property)."""
    from .api import open as open_store
    from .errors import StoreError

    try:
        samples = open_store(store, "samples", index=False)
    except (StoreError, KeyError):  # a store without lab tables
        return {}
    if name not in samples:
        return {}
    ok = np.isfinite(np.asarray(samples[name].values, dtype=np.float64))
    cores, counts = np.unique(np.asarray(samples["core"].values).astype(str)[ok], return_counts=True)
    return dict(zip(cores, counts.tolist()))


def write_png(table: pd.DataFrame, path) -> str:
    """Each core's median difference as a bar, largest at the top; cores without lab values of the
    property in orange (where a new sample teaches most), the others in grey."""
    from .plots import pyplot, save_figure

    plt = pyplot()
    shown = table.iloc[::-1]  # barh draws the first row at the bottom
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.28 * len(shown)))
    colours = ["tab:orange" if n == 0 else "tab:grey" for n in shown["lab_samples"]]
    ax.barh(shown["core"], shown["median_difference"], color=colours)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"{table.attrs['target']}: median of A minus B over the core's spectra")
    ax.set_title(f"where two models disagree (orange: no lab values yet)\nA: {table.attrs['run_a']}\n"
                 f"B: {table.attrs['run_b']}", fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    return str(save_figure(fig, path))
