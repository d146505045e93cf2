"""The baseline's hyper-parameter grid search: k folds grouped by core, scored by R2 of ln(wt%).

Lee et al. (2022) chose NMF components, C and gamma by a 10-fold grid search; their folds were
random rows, so neighbouring samples of one core sat on both sides of a split and flattered
the scores. Here a core is never in two folds (``GroupKFold``). The search sees only the rows it
is given (the plugin passes its training part: never validation, never held-out cores).

NMF does not depend on C or gamma, so it is fitted once per (fold, n_components) and every
(C, gamma) pair reuses its weights: the search costs folds x components NMF fits, not
folds x components x C x gamma as a naive pipeline grid would.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from xrfhub.errors import ConfigError
from xrfhub.ml.metrics import regression_metrics

from .model import NmfSvr, log_target, rbf_decision


@dataclass
class GridResult:
    """The winning parameters, every candidate's fold scores, and which cores each fold tested on."""

    n_components: int
    C: float
    gamma: float
    best_score: float
    folds: int
    test_cores: list[list[str]]
    n_rows: int
    table: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        best = {"n_components": self.n_components, "C": self.C, "gamma": self.gamma}
        return {"folds": self.folds, "rows": self.n_rows, "best": best, "best_cv_r2_log": self.best_score,
                "candidates": len(self.table), "test_cores_by_fold": self.test_cores}

    def to_csv(self, path) -> None:
        """One row per candidate: parameters, mean and std of the fold R2s, then each fold's R2."""
        cols = ["n_components", "C", "gamma", "mean_r2_log", "std_r2_log"] + [f"fold{i + 1}" for i in range(self.folds)]
        lines = [",".join(cols)]
        for row in self.table:
            values = [row["n_components"], row["C"], row["gamma"], row["mean"], row["std"], *row["scores"]]
            lines.append(",".join(f"{v:.10g}" for v in values))
        path.write_text("\n".join(lines) + "\n")


def grouped_folds(groups: np.ndarray, folds: int) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    """(train, test) row indices of up to ``folds`` folds, whole groups (cores) per fold.

    With fewer cores than folds each core becomes its own fold (leave-one-core-out): the number
    actually used is returned first.
    """
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ConfigError(f"the grid search groups folds by core but the training rows come from {n_groups} "
                          "core(s); it needs at least 2: hold out fewer cores or set grid=false")
    used = min(int(folds), n_groups)
    splits = list(GroupKFold(n_splits=used).split(np.zeros(len(groups)), groups=groups))
    return used, splits


def grid_search(counts: np.ndarray, y: np.ndarray, groups: np.ndarray, *, components, Cs, gammas, folds: int,
                max_iter: int, seed: int, progress: bool = False) -> GridResult:
    """Best (n_components, C, gamma) by mean R2 of ln(wt%) over core-grouped folds (ties: first listed)."""
    used, splits = grouped_folds(np.asarray(groups).astype(str), folds)
    pairs = list(itertools.product(Cs, gammas))
    scores = {(k, c, g): [] for k in components for c, g in pairs}
    steps = [(f, k) for f in range(used) for k in components]
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="grid search (fold x components)", unit="nmf")
    z = log_target(y)
    for fold, k in steps:
        train, test = splits[fold]
        model = NmfSvr(k, 1.0, 1.0, max_iter=max_iter, seed=seed).fit_components(counts[train])
        f_train, f_test = model.features(counts[train]), model.features(counts[test])
        for c, g in pairs:
            model.C, model.gamma = float(c), float(g)
            model.fit_regressor(f_train, y[train])
            pred = rbf_decision(f_test, model.support_vectors, model.dual_coef, model.intercept, model.gamma)
            scores[(k, c, g)].append(regression_metrics(z[test], pred, float(z[train].mean())).get("r2", np.nan))
    table = []
    for (k, c, g), s in scores.items():
        s = np.asarray(s, dtype=float)
        table.append({"n_components": int(k), "C": float(c), "gamma": float(g), "scores": s.tolist(),
                      "mean": float(np.nanmean(s)) if np.isfinite(s).any() else float("nan"),
                      "std": float(np.nanstd(s)) if np.isfinite(s).any() else float("nan")})
    ranked = [row for row in table if np.isfinite(row["mean"])]
    if not ranked:
        raise ConfigError("no grid candidate could be scored (every test fold had fewer than 2 samples)")
    best = max(ranked, key=lambda row: row["mean"])  # max keeps the first of equal scores
    groups = np.asarray(groups).astype(str)
    test_cores = [sorted(set(groups[test].tolist())) for _, test in splits]
    return GridResult(best["n_components"], best["C"], best["gamma"], best["mean"], used, test_cores, len(y),
                      table)
