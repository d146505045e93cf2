"""The README's MAX commands (tiny pre-train + fine-tune) before and after the recipe changes of
issue 16, beside the Lee 2022 baseline on the same split, on generated corpora and seeds.

Per corpus and seed, through ``xrfhub.ml.training.train`` (what ``xrfhub train`` runs):

- **before**: the recipe this work started from: ``--calibration-cores auto`` as a plain seeded draw
  of a quarter of the labelled cores, ``--stage pretrain --config tiny --epochs P``, then
  ``--stage finetune --target CaCO3 --epochs F`` with the head on the cls token;
- **after**: the same commands with today's draw (it keeps the training cores' range of lab values),
  fine-tuned once per candidate of ``--candidates`` from the same pre-training; the candidate that
  equals the ``tiny`` preset's defaults is "after", and the others show what the choice was made
  against, on **validation** (the fine-tune's 20 % of the training cores' pairs) and on the
  calibration cores (whole cores the model never trained on). The held-out cores are only reported;
- ``xrfhub train baseline`` (Lee 2022) on the before and after calibration cores;
- **few labels** (``--few``): ``n`` pairs drawn by seed from the training cores (80 % fine-tune,
  20 % epoch choice), MAX from the after pre-training against the baseline on the same pairs,
  both scored on the held-out cores (the paper's claim: pre-training pays when labels are few).

Prints held-out R2 (sklearn) and RMSE and writes every run's metrics to ``<out>/max_recipe.json``
as it goes (a run that stops keeps what it finished and resumes from there).

    nice -n 10 python benchmarks/max_recipe.py --out /tmp/maxrecipe --corpora demo:0,benchmark:0 --seeds 0,1
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

CORPORA = {"demo": "demo",  # what `xrfhub demo` builds (6 cores, 30 and 50 kV runs too)
           "benchmark": "benchmark",  # the MAX evaluation's corpus (44 cores, 3 held out by the generator)
           "c10": {"n_cores": 10, "length_m": (3.0, 4.0), "lab_spacing_mm": 80.0, "n_30kv": 0, "n_50kv": 0}}
HELD_OUT = {"demo": ["M77-33-1"]}  # the README's; else the generator's held-out cores, else two cores
#: fine-tune candidates (``--set`` values) compared from the after pre-training
CANDIDATES = ("pool=cls", "pool=mean")
BEFORE = {"pool": "cls"}  # the fine-tune recipe this work started from (tiny: finetune_lr 1e-4)


def build(root: Path, kind: str, seed: int):
    """The corpus's store (generated and ingested once) and its held-out cores."""
    import xrfhub
    from xrfhub.synth import generate_corpus

    hub, truth_file = root / "hub", root / "corpus" / "truth.json"
    if hub.exists() and truth_file.is_file():
        cores = json.loads(truth_file.read_text())["cores"]
        normal = sorted(c for c, t in cores.items() if t["has_scan"] and not t["held_out"])
        generated = sorted(c for c, t in cores.items() if t["has_scan"] and t["held_out"])
    else:
        truth = generate_corpus(root / "corpus", size=CORPORA[kind], seed=seed)
        xrfhub.ingest([root / "corpus" / "scans", *sorted((root / "corpus" / "lab").iterdir())], hub)
        normal = sorted(c for c, t in truth.cores.items() if t.has_scan and not t.held_out)
        generated = sorted(c for c, t in truth.cores.items() if t.has_scan and t.held_out)
    held = [c for c in HELD_OUT.get(kind, []) if c in normal] or generated or normal[:2]
    return hub, held


def plain_draw(hub, held, seed: int) -> list[str]:
    """What ``--calibration-cores auto`` drew before this change: a plain seeded quarter."""
    from xrfhub.ml import intervals

    return intervals.choose_cores([c for c in intervals.labelled_cores(hub) if c not in held], seed=seed)


def main(argv=None) -> None:
    import torch

    from xrfhub.ml import training

    torch.set_num_threads(1)  # a shared CPU: one core for the others
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--corpora", default="demo:0,benchmark:0", help="kind:generator-seed, comma-separated")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--pretrain-epochs", type=int, default=5)
    ap.add_argument("--finetune-epochs", default="demo:60,benchmark:10,c10:60",
                    help="kind:epochs (the benchmark has 8x the demo's pairs: 10 epochs are ~1.3x its steps)")
    ap.add_argument("--pretrain-spectra", default="benchmark:8000",
                    help="kind:spectra pre-trained on at most (a seeded draw; the CPU budget)")
    ap.add_argument("--candidates", default=",".join(CANDIDATES).replace(",", ";"),
                    help="fine-tune candidates, ';'-separated, each 'key=value[,key=value]'")
    ap.add_argument("--few", default="10,30", help="few-label pair counts ('' to skip)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "max_recipe.json"
    rows = json.loads(log.read_text()) if log.is_file() else []
    done = {(r["corpus"], r["seed"], r["model"]) for r in rows}
    per_kind = lambda text: {k: int(v) for k, v in (p.split(":") for p in text.split(",") if p)}  # noqa: E731
    ft_epochs, budgets = per_kind(args.finetune_epochs), per_kind(args.pretrain_spectra)
    candidates = [dict(kv.split("=") for kv in c.split(",")) for c in args.candidates.split(";") if c]

    def record(row):
        rows.append(row)
        log.write_text(json.dumps(rows, indent=1))
        print(json.dumps(row), flush=True)

    for item in args.corpora.split(","):
        kind, corpus_seed = item.split(":")
        corpus = f"{kind}:{corpus_seed}"
        root = args.out / f"{kind}-{corpus_seed}"
        hub, held = build(root, kind, int(corpus_seed))
        for seed in (int(s) for s in args.seeds.split(",")):
            runs = root / f"s{seed}"
            pre_sets = {"seed": str(seed), **({"pretrain_spectra": str(budgets[kind])} if kind in budgets else {})}
            plain = plain_draw(hub, held, seed)
            pretrained = {}
            for name, cal in (("after", ["auto"]), ("before", plain)):
                pre = runs / f"pre-{name}"
                if not (pre / "run.json").is_file():
                    start = time.perf_counter()
                    training.train("max", hub, stage="pretrain", out=pre, config="tiny", epochs=args.pretrain_epochs,
                                   holdout_cores=held, calibration_cores=cal, sets=pre_sets, progress=False,
                                   overwrite=pre.exists())
                    print(f"# {corpus} seed {seed}: pre-training ({name}) {time.perf_counter() - start:.0f} s",
                          file=sys.stderr)
                pretrained[name] = pre
                if name == "after" and sorted(_run(pre)["calibration_cores"]) == sorted(plain):
                    pretrained["before"] = pre  # the same draw: one pre-training serves both
                    break
            # candidates first: "before" is then often one of them (same pre-training, same settings)
            fits = [("after " + ",".join(f"{k}={v}" for k, v in c.items()), pretrained["after"], c)
                    for c in candidates] + [("before", pretrained["before"], BEFORE)]
            for model, pre, sets in fits:
                key = [str(pre), sorted([k, str(v)] for k, v in sets.items())]
                same = next((r for r in rows if r["corpus"] == corpus and r["seed"] == seed
                             and r.get("run_key") == key and "same_run_as" not in r), None)
                if (corpus, seed, model) in done:
                    continue
                if same is not None:  # the very same commands ran under another name: one run, two rows
                    record({**same, "model": model, "same_run_as": same["model"]})
                    continue
                folder = runs / ("ft-" + model.replace(" ", "_").replace(",", "+").replace("=", "-"))
                start = time.perf_counter()
                s = training.train("max", hub, stage="finetune", target="CaCO3", init=pre, epochs=ft_epochs[kind],
                                   out=folder, sets=dict(sets), progress=False, overwrite=folder.exists())
                record({"corpus": corpus, "seed": seed, "model": model, "sets": sets, "held_out_cores": held,
                        "run_key": key,
                        "calibration_cores": _run(pre)["calibration_cores"], "pretrain": pre.name,
                        "finetune_epochs": ft_epochs[kind], "pool": _run(folder)["config"]["pool"],
                        "validation": s.metrics["validation"], "calibration": _calibration(s.metrics),
                        "held_out": s.metrics.get("held_out"), "best_epoch": s.metrics.get("best_epoch"),
                        "seconds": round(time.perf_counter() - start, 1)})
            for name in ("before", "after"):
                model = f"baseline ({name})"
                if (corpus, seed, model) in done or (name == "before" and pretrained["before"] is pretrained["after"]):
                    continue
                cal = _run(pretrained[name])["calibration_cores"]
                start = time.perf_counter()
                s = training.train("baseline", hub, stage="train", target="CaCO3", holdout_cores=held,
                                   calibration_cores=cal, sets={"seed": str(seed)}, out=runs / f"baseline-{name}",
                                   progress=False, overwrite=(runs / f"baseline-{name}").exists())
                record({"corpus": corpus, "seed": seed, "model": model, "held_out_cores": held,
                        "calibration_cores": cal, "validation": s.metrics.get("validation"),
                        "calibration": _calibration(s.metrics), "held_out": s.metrics.get("held_out"),
                        "seconds": round(time.perf_counter() - start, 1)})
            for n in (int(v) for v in args.few.split(",") if v):
                few_labels(record, done, corpus, seed, hub, held, pretrained["after"], n, runs / f"few{n}")
    table(rows)
    summary(rows)


def few_labels(record, done, corpus, seed, hub, held, pre, n, folder: Path) -> None:
    """MAX (from ``pre``) and the baseline on the same ``n`` pairs of the training cores."""
    from xrfhub.ml import registry
    from xrfhub.ml.loaders import labelled_samples
    from xrfhub.ml.metrics import regression_metrics

    cal = _run(pre)["calibration_cores"]
    x, y, cores, _ = labelled_samples(hub, "CaCO3", exclude_cores=list(held) + list(cal))
    hx, hy, _, _ = labelled_samples(hub, "CaCO3", cores=held)
    rng = np.random.default_rng([seed, n])
    pick = rng.choice(len(y), size=min(n, len(y)), replace=False)
    is_val = np.zeros(len(pick), bool)
    is_val[rng.choice(len(pick), size=max(1, len(pick) // 5), replace=False)] = True
    tr, va = pick[~is_val], pick[is_val]
    for model in ("max", "baseline"):
        name = f"few {n} {model}"
        if (corpus, seed, name) in done:
            continue
        plugin = registry.load(model)
        start = time.perf_counter()
        if model == "max":
            # about 2,500 pair presentations, as the MAX evaluation's data-amount runs (at least 60 epochs)
            epochs = int(min(400, max(60, -(-2500 // len(tr)))))
            cfg = registry.build_config(plugin, "tiny", {"seed": str(seed), "epochs": str(epochs)})
            fitted = plugin.fit_pairs(x[tr], y[tr], x[va], y[va], target="CaCO3", config=cfg, out=folder / model,
                                      init=pre, progress=False)
        else:
            cfg = registry.build_config(plugin, None, {"seed": str(seed)})
            fitted = plugin.fit_pairs(x[tr], y[tr], x[va], y[va], target="CaCO3", config=cfg, out=None,
                                      groups=cores[tr])
        record({"corpus": corpus, "seed": seed, "model": name, "n_pairs": int(len(pick)), "held_out_cores": held,
                **({"pool": cfg.pool} if model == "max" else {}),
                "validation": regression_metrics(y[va], fitted.predict(x[va]), fitted.train_mean),
                "held_out": regression_metrics(hy, fitted.predict(hx), fitted.train_mean),
                "seconds": round(time.perf_counter() - start, 1)})


def _run(folder: Path) -> dict:
    return json.loads((Path(folder) / "run.json").read_text())


def _calibration(metrics) -> dict | None:
    cal = metrics.get("calibration")
    return None if cal is None else {k: cal.get(k) for k in ("n", "r2", "rmse", "cores")}


def table(rows) -> None:
    """Per corpus and seed: validation / calibration-core / held-out R2 of every model."""
    def r2(r, key):
        m = r.get(key)
        return "-" if not m else f"{m['r2']:.3f}"

    print("\n| corpus | seed | model | val R2 | calibration-core R2 | held-out R2 | held-out RMSE |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["corpus"], r["seed"])):
        rmse = f"{r['held_out']['rmse']:.2f}" if r.get("held_out") else "-"
        print(f"| {r['corpus']} | {r['seed']} | {r['model']} | {r2(r, 'validation')} | {r2(r, 'calibration')} | "
              f"{r2(r, 'held_out')} | {rmse} |")


def summary(rows) -> None:
    """Held-out R2 (RMSE) per corpus and seed: MAX before and after (the candidate equal to the
    ``tiny`` preset's defaults), the baseline on each draw, and MAX after minus the baseline after;
    then the few-label pairs."""
    from xrfhub_max.config import PRESETS

    tiny = PRESETS["tiny"]

    def is_default(r):  # a candidate whose --set values are the tiny preset's
        sets = r.get("sets") or {}
        return (r["model"].startswith("after ") and "same_run_as" not in r
                and set(sets) <= {"pool", "finetune_lr"} and sets.get("pool") == tiny.pool
                and float(sets.get("finetune_lr", 1e-4)) == tiny.finetune_lr)

    after = next((r["model"] for r in rows if is_default(r)), f"after pool={tiny.pool}")

    def cell(r):
        return "-" if r is None or not r.get("held_out") else f"{r['held_out']['r2']:.3f} ({r['held_out']['rmse']:.1f})"

    print(f"\n| corpus | seed | MAX before | MAX after ({after[6:]}) | baseline, before draw | baseline, after draw | "
          "after - baseline (R2) | RMSE ratio after/baseline |")
    print("|---|---|---|---|---|---|---|---|")
    for corpus, seed in sorted({(r["corpus"], r["seed"]) for r in rows}):
        g = {r["model"]: r for r in rows if r["corpus"] == corpus and r["seed"] == seed}
        a, b = g.get(after), g.get("baseline (after)")
        bb = g.get("baseline (before)", b if g.get("before", {}).get("pretrain") == (a or {}).get("pretrain") else None)
        diff = ratio = "-"
        if a and b and a.get("held_out") and b.get("held_out"):
            diff = f"{a['held_out']['r2'] - b['held_out']['r2']:+.3f}"
            ratio = f"{a['held_out']['rmse'] / b['held_out']['rmse']:.2f}"
        print(f"| {corpus} | {seed} | {cell(g.get('before'))} | {cell(a)} | {cell(bb)} | {cell(b)} | {diff} | {ratio} |")
    few = sorted({(r["corpus"], r["seed"], r["n_pairs"]) for r in rows if "n_pairs" in r})
    if few:
        print("\n| corpus | seed | labelled pairs | MAX held-out R2 (RMSE) | baseline held-out R2 (RMSE) | RMSE ratio |")
        print("|---|---|---|---|---|---|")
        for corpus, seed, n in few:
            g = {r["model"]: r for r in rows if r["corpus"] == corpus and r["seed"] == seed}
            m, b = g.get(f"few {n} max"), g.get(f"few {n} baseline")
            ratio = f"{m['held_out']['rmse'] / b['held_out']['rmse']:.2f}" if m and b else "-"
            print(f"| {corpus} | {seed} | {n} | {cell(m)} | {cell(b)} | {ratio} |")


if __name__ == "__main__":
    main()
