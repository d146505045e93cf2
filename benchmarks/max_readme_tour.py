"""The README's model tour, verbatim, on demo stores of several generator seeds (issue 16, item 3).

For each seed: ``xrfhub demo --seed G`` makes the store, then the README's commands run as a user
types them (``--holdout-cores auto``: a seeded fifth of the labelled cores, drawn so that the
training cores keep the lab values' range), in fresh processes:

    xrfhub train max --stage pretrain --config tiny --epochs 5 --holdout-cores auto --out pre
    xrfhub train max --stage finetune --target CaCO3 --init pre --epochs 60 --set folds=4 --out caco3
    xrfhub train baseline --target CaCO3 --holdout-cores auto --calibration-cores auto --out caco3-lee2022
    xrfhub predict --run caco3 --interval 0.9

Printed per seed: the held-out core, MAX's held-out CaCO3 R2 and RMSE (scikit-learn's), the Lee
2022 baseline's on the same core, the RMSE ratio (ours / baseline), the 90 % interval's coverage and
mean width on the held-out pairs, and the minutes each took. Nothing is chosen on these numbers.
One JSON line per seed goes to ``OUT/results.jsonl``::

    python benchmarks/max_readme_tour.py --out /tmp/tour --seeds 0 1 2 3 [--jobs 2]
    python benchmarks/max_readme_tour.py --out /tmp/tour --seeds 0 1 2 3 --pretrain-epochs 25

The second line pre-trains longer on the same stores and scores against the first line's baseline.

Each job runs torch on one thread (``OMP_NUM_THREADS=1``), so ``--jobs 2`` fills this 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def xrfhub(*args, log: Path) -> float:
    """Run one ``xrfhub`` command in a fresh process; its output goes to ``log``; returns minutes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    with log.open("a") as f:
        f.write(f"$ xrfhub {' '.join(map(str, args))}\n")
        f.flush()
        done = subprocess.run([sys.executable, "-m", "xrfhub_cli", *map(str, args)], stdout=f, stderr=f, env=env)
    if done.returncode:
        raise SystemExit(f"xrfhub {' '.join(map(str, args))} exited {done.returncode}; see {log}")
    return (time.perf_counter() - start) / 60.0


def tour(root: Path, seed: int, pretrain_epochs: int = 5, baseline: bool = True) -> dict:
    store = root / f"seed{seed}"
    # the README's 5 pre-training epochs in the seed's folder; another length beside them
    work = store if pretrain_epochs == 5 else store / f"pretrain{pretrain_epochs}"
    work.mkdir(parents=True, exist_ok=True)
    log, hub = work / "log.txt", store / "demo" / "hub"
    minutes = {}
    if not (hub / "store.json").exists():
        minutes["demo"] = xrfhub("demo", "--out", store / "demo", "--seed", seed, log=log)
    minutes["pretrain"] = xrfhub("train", "max", "--store", hub, "--stage", "pretrain", "--config", "tiny",
                                 "--epochs", pretrain_epochs, "--holdout-cores", "auto", "--out", work / "pre",
                                 "--overwrite", log=log)
    minutes["finetune"] = xrfhub("train", "max", "--store", hub, "--stage", "finetune", "--target", "CaCO3",
                                 "--init", work / "pre", "--epochs", 60, "--set", "folds=4", "--out",
                                 work / "caco3", "--overwrite", log=log)
    if baseline:
        minutes["baseline"] = xrfhub("train", "baseline", "--store", hub, "--target", "CaCO3", "--holdout-cores",
                                     "auto", "--calibration-cores", "auto", "--out", store / "caco3-lee2022",
                                     "--overwrite", log=log)
        minutes["predict"] = xrfhub("predict", "--store", hub, "--run", work / "caco3", "--interval", 0.9, log=log)
    ours = json.loads((work / "caco3" / "run.json").read_text())
    base = json.loads((store / "caco3-lee2022" / "run.json").read_text())
    return {"seed": seed, "pretrain_epochs": pretrain_epochs, "held_out": ours["holdout_cores"],
            "baseline_held_out": base["holdout_cores"], "max": ours["metrics"]["held_out"],
            "out_of_fold": ours["metrics"]["validation"], "baseline": base["metrics"]["held_out"],
            "held_out_range": ours.get("held_out_range"), "warnings": ours.get("warnings", []),
            "minutes": {k: round(v, 1) for k, v in minutes.items()}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pretrain-epochs", type=int, default=5,
                    help="pre-training length (the README's 5; another runs in seedG/pretrainN beside it, "
                         "scored against the baseline of the README's run)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}")
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda s: tour(args.out, s, args.pretrain_epochs, args.pretrain_epochs == 5),
                                args.seeds))
    with (args.out / "results.jsonl").open("a") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    print(f"pre-training: {args.pretrain_epochs} epochs")
    print("| seed | held-out core | out-of-fold R2 (RMSE) | MAX held-out R2 (RMSE) | baseline R2 (RMSE) "
          "| RMSE ours / baseline | 90 % coverage (width) | minutes: pre-train, fine-tune |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        m, b, iv, oof = r["max"], r["baseline"], r["max"].get("interval_90", {}), r["out_of_fold"]
        print(f"| {r['seed']} | {', '.join(r['held_out'])} | {oof['r2']:.3f} ({oof['rmse']:.2f}) | {m['r2']:.3f} "
              f"({m['rmse']:.2f}) | {b['r2']:.3f} ({b['rmse']:.2f}) | {m['rmse'] / b['rmse']:.2f} "
              f"| {iv.get('coverage', float('nan')):.2f} ({iv.get('mean_width', float('nan')):.1f}) "
              f"| {r['minutes']['pretrain']}, {r['minutes']['finetune']} |")
    mean = sum(r["max"]["r2"] for r in results) / len(results)
    base = sum(r["baseline"]["r2"] for r in results) / len(results)
    print(f"mean held-out R2: MAX {mean:.3f}, baseline {base:.3f}; MAX >= 0.90 on "
          f"{sum(r['max']['r2'] >= 0.9 for r in results)} of {len(results)} seeds; finished "
          f"{time.strftime('%H:%M:%S UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
