"""The report of a diffraction evaluation: CSV tables, PNG figures and ``summary.md``.

Scores are the plugins' own (``metrics.json`` of each run, on the held-out series): accuracy,
macro and per-class or per-phase F1, confusion counts, for phase sets the exact-match rate and
the threshold-free ranked recall, and for ramps 003's confidence with the boundary it implies
next to the true boundary. Comparisons are paired by seed (same seed, same split): a variant
is called better only when it is better in every seed, and the spread over seeds is shown.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .run import CELLS, HELD_OUT_FILE

SCORES = ("accuracy", "macro_f1", "exact_match", "ranked_recall", "ranked_exact")


def variant_name(result: dict) -> str:
    """A cell's model as the user wrote it, e.g. ``mtl-phase:mode=binary`` (its folder name
    cannot hold those characters everywhere)."""
    settings = result.get("settings") or {}
    return result.get("plugin", result["model"]) + "".join(f":{k}={v}" for k, v in settings.items())


def run_table(results: list[dict]) -> pd.DataFrame:
    """One row per run: its variant, held-out scores, per-class F1 (``f1:<name>``), validation F1."""
    rows = []
    for r in results:
        m, held = r["metrics"], r["metrics"].get("held_out", {})
        row = {"model": r["model"], "input": r["input"], "seed": r["seed"], "n_test": held.get("n", 0),
               **{k: held.get(k, np.nan) for k in SCORES},
               "val_macro_f1": m.get("validation", {}).get("macro_f1", np.nan),
               "fit_seconds": m.get("fit", {}).get("seconds", np.nan)}
        per_phase = held.get("confusion", {}).get("per_phase")
        if per_phase:  # as the plugins score it: over the phases that occur, true or predicted
            seen = [k for k, ((_, fp), (fn, tp)) in per_phase.items() if fp + fn + tp > 0]
            row["macro_f1"] = float(np.mean([held["f1"][k] for k in seen])) if seen else np.nan
            row["phases_seen"] = len(seen)
        row.update({f"f1:{k}": v for k, v in held.get("f1", {}).items() if not per_phase or k in seen})
        rows.append(row)
    return pd.DataFrame(rows)


def ramp_table(results: list[dict]) -> pd.DataFrame:
    """One row per run and held-out ramp: accuracy, 003 confidence, predicted and true boundary."""
    rows = []
    for r in results:
        for ramp in r["metrics"].get("ramp_report", []):
            if not ramp.get("patterns", {}).get("held_out"):
                continue
            true, found = ramp.get("true_boundary"), ramp.get("boundary")
            rows.append({"model": r["model"], "input": r["input"], "seed": r["seed"], "series": ramp["series"],
                         "n": ramp["n"], "accuracy": ramp.get("accuracy", np.nan), "confidence": ramp["confidence"],
                         "single_switch": ramp["single_switch"], "switches": ramp["switches"], "boundary": found,
                         "true_boundary": true, "boundary_error": (found - true) if None not in (found, true) else np.nan})
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, ramps: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds per model and input."""
    cols = [c for c in (*SCORES, "val_macro_f1", "fit_seconds") if c in runs and runs[c].notna().any()]
    g = runs.groupby(["model", "input"], sort=False)
    out = g[cols].mean().add_suffix("_mean").join(g[cols].std(ddof=1).add_suffix("_sd"))
    out.insert(0, "seeds", g.size())
    if len(ramps):
        r = ramps.assign(abs_boundary_error=ramps["boundary_error"].abs())
        rg = r.groupby(["model", "input"], sort=False)
        out = out.join(rg[["confidence", "abs_boundary_error"]].mean().rename(columns=lambda c: f"ramp_{c}_mean"))
        out = out.join(rg["single_switch"].mean().rename("ramp_single_switch_share"))
    return out.reset_index()


def paired(runs: pd.DataFrame, score: str = "macro_f1") -> list[dict]:
    """Paired comparisons: every model against the first at each input, and each model's
    inputs against the first input, seed by seed."""
    models, inputs = list(dict.fromkeys(runs["model"])), list(dict.fromkeys(runs["input"]))
    table = runs.pivot_table(index="seed", columns=["model", "input"], values=score)
    out = []

    def compare(a, b, what):
        if a not in table or b not in table:
            return
        diff = (table[b] - table[a]).dropna()
        if not len(diff):
            return
        verdict = ("better in every seed" if (diff > 0).all() else "worse in every seed" if (diff < 0).all()
                   else "no consistent difference")
        out.append({"comparison": what, "score": score, "a": table[a].mean(), "b": table[b].mean(),
                    "difference": diff.mean(), "min": diff.min(), "max": diff.max(), "seeds": len(diff),
                    "verdict": f"{b[0]} ({b[1]}) {verdict}" if a[0] != b[0] else f"{b[1]} {verdict}"})

    for inp in inputs:
        for model in models[1:]:
            compare((models[0], inp), (model, inp), f"{model} vs {models[0]}, {inp} input")
    for model in models:
        for inp in inputs[1:]:
            compare((model, inputs[0]), (model, inp), f"{model}: {inp} vs {inputs[0]} input")
    return out


def held_out_predictions(results: list[dict], out: Path, limit: int = 12) -> pd.DataFrame:
    """The held-out patterns' predictions of each variant's first seed (small test sets only)."""
    parts = []
    for r in results:
        path = out / CELLS / r["cell"] / "run" / HELD_OUT_FILE
        if r["seed"] != min(x["seed"] for x in results) or not path.is_file():
            continue
        table = pd.read_csv(path, keep_default_na=False)
        if len(table) > limit:
            return pd.DataFrame()
        parts.append(table.assign(model=r["model"], input=r["input"]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def write_report(results: list[dict], out, *, config, holdout, store) -> Path:
    """Tables, figures and ``summary.md`` into ``out``; returns the summary's path."""
    from . import classification_figures as figures

    out = Path(out)
    results = [{**r, "model": variant_name(r)} for r in results]
    runs, ramps = run_table(results), ramp_table(results)
    summary = summarise(runs, ramps)
    comparisons = pd.DataFrame(paired(runs))
    identified = held_out_predictions(results, out)
    runs.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    comparisons.to_csv(out / "comparisons.csv", index=False)
    if len(ramps):
        ramps.to_csv(out / "ramps.csv", index=False)
    if len(identified):
        identified.to_csv(out / "held_out_predictions.csv", index=False)
    pictures = [figures.f1_bars(runs, out / "f1.png"), figures.confusions(results, out / "confusion.png")]
    if len(ramps):
        pictures.append(figures.ramps(results, out, out / "ramps.png"))
    text = markdown(summary, comparisons, ramps, identified, [p for p in pictures if p], config=config,
                    holdout=holdout, store=store)
    path = out / "summary.md"
    path.write_text(text)
    return path


def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value)


def _md(table: pd.DataFrame, columns: dict[str, str]) -> str:
    head = "| " + " | ".join(columns.values()) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(_f(row[c]) for c in columns) + " |\n" for _, row in table.iterrows())


def markdown(summary, comparisons, ramps, identified, pictures, *, config, holdout, store) -> str:
    def pm(row, score):
        mean, sd = row.get(f"{score}_mean"), row.get(f"{score}_sd")
        return "-" if mean is None or not np.isfinite(mean) else f"{mean:.3f} ± {0.0 if not np.isfinite(sd) else sd:.3f}"

    shown = {k: k for k in ("model", "input", "seeds")}
    table = summary.copy()
    for score in (*SCORES, "val_macro_f1"):
        if f"{score}_mean" in table:
            table[score] = [pm(row, score) for _, row in table.iterrows()]
            shown[score] = score.replace("_", " ")
    text = [f"# Diffraction evaluation: target `{config.target}`\n",
            f"Store `{store}`; held-out series (test set, never trained on): {', '.join(holdout)}. "
            f"Seeds {', '.join(map(str, config.seeds))}; inputs: {', '.join(config.inputs)}"
            + (" (`als`: the published asymmetric-least-squares background removed before scaling)"
               if "als" in config.inputs else "")
            + ". Scores on the held-out series, mean ± standard deviation over seeds.\n", _md(table, shown)]
    if len(comparisons):
        text += ["\n## Paired comparisons (macro F1, same seed = same split)\n",
                 _md(comparisons, {"comparison": "comparison", "a": "a", "b": "b", "difference": "b - a",
                                   "min": "min", "max": "max", "verdict": "verdict"})]
    if len(ramps):
        text += ["\n## Ramps: 003 confidence beside accuracy\n",
                 "Confidence is 1 when the predictions switch class exactly once, wherever the switch falls; "
                 "the boundary error (predicted minus true switch index) and the accuracy say whether it falls "
                 "in the right place.\n",
                 _md(ramps, {c: c.replace("_", " ") for c in ("model", "input", "seed", "series", "accuracy",
                                                              "confidence", "switches", "boundary", "true_boundary",
                                                              "boundary_error")})]
    if len(identified):
        text += ["\n## Held-out patterns (first seed)\n",
                 _md(identified, {c: c for c in ("model", "input", "pattern_id", "true", "predicted")}
                     | {c: c for c in identified.columns if c.startswith("top")})]
    text += ["\n## Figures\n"] + [f"![{p.stem}]({p.name})\n" for p in pictures]
    return "\n".join(text)
