"""The README's model tour, verbatim, on demo stores of several generator seeds (issue 16, item 3).

For each seed: ``xrfhub demo --seed G`` makes the store, then the README's commands run as a user
types them (``--holdout-cores auto``: a seeded fifth of the labelled cores, drawn so that the
training cores keep the lab values' range), in fresh processes:

    xrfhub train max --stage pretrain --config tiny --epochs 5 --holdout-cores auto --out pre
    xrfhub train max --stage finetune --target CaCO3 --init pre --epochs 60 --set folds=4 \
        --set target_transform=logit --out caco3
    xrfhub train baseline --target CaCO3 --holdout-cores auto --calibration-cores auto --out caco3-lee2022
    xrfhub predict --run caco3 --interval 0.9

(The README's log-ratio and ``compare`` lines are scored on the same folders by
``benchmarks/stack_tour.py``.) Printed per seed: the held-out core, MAX's held-out CaCO3 R2 and RMSE (scikit-learn's), the Lee
2022 baseline's on the same core, the RMSE ratio (ours / baseline), the 90 % interval's coverage and
mean width on the held-out pairs, and the minutes each took. Nothing is chosen on these numbers.
One JSON line per seed goes to ``OUT/results.jsonl``.

``--corpus c10`` runs the same commands on a generated 10-core corpus instead of the demo store
(the issue's own setting: 10 cores of 3-4 m, lab samples every 80 mm, 10 kV only), made with
``xrfhub.synth.generate_corpus`` and read in with ``xrfhub ingest`` as a user would::

    python benchmarks/max_readme_tour.py --out /tmp/tour --seeds 0 1 2 3 [--jobs 2]
    python benchmarks/max_readme_tour.py --out /tmp/tour --seeds 0 1 2 3 --pretrain-epochs 25
    python benchmarks/max_readme_tour.py --out /tmp/tour --seeds 0 1 2 3 --finetune-set target_transform=none
    python benchmarks/max_readme_tour.py --out /tmp/tour10c --corpus c10 --seeds 0 1 2
    python benchmarks/max_readme_tour.py --out /tmp/tour10c --corpus c10 --seeds 0 1 2 --pretrain-set transform=clr
    python benchmarks/max_readme_tour.py --out /tmp/tour10c --corpus c10 --seeds 0 1 2 --unlabelled-cores 20

The second line pre-trains longer on the same stores and scores against the first line's baseline.
The third fine-tunes from the first line's pre-training with other ``--set`` options in place of
the README's (beside ``folds=4``), in ``seedG/<options>/``, and scores against the same baseline:
``target_transform=none`` is the seventh pass's plain target (docs/results.md). The last pre-trains
with other options (here clr inputs, the tenth pass) and fine-tunes as the README does, in
``seedG/pre-<options>/``, scored against the README run's baseline (run the README's line first).
``--unlabelled-cores N`` copies the seed's store into ``seedG/unlabelledN/hub``, ingests there the
scans (no lab values) of N more cores from further generated corpora of the same size (generator
seeds 1000+G, 2000+G, ...; a core whose name the store already has is left out), and runs the
README's pre-training and fine-tune on it: the same labelled pairs, folds and test cores, with
more spectra to pre-train on (the eleventh pass), scored against the README run's baseline.

Beside the held-out figures, each run prints the figure a recipe may be chosen on: the
**interpolation-core out-of-fold R2**. In the cross-fit (``folds=4``) every training core is
predicted by a fold model that never trained on it; a core whose CaCO3 lies inside the range of
the cores that model trained on is an interpolation core, as the held-out cores an ``auto`` draw
takes are. Each is scored by its own scikit-learn R2, as the test scores a held-out core, and the
figure is their mean. It reads training cores only.

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


def interpolation_r2(folds_json: Path) -> tuple[float, dict]:
    """The interpolation-core out-of-fold R2 (see above) of a cross-fitted run, and each core's
    metrics; read from ``folds.json``, so runs made before ``metrics.json`` reported it score too."""
    from xrfhub.ml.metrics import by_core, interpolation_r2 as mean_inside

    saved = json.loads(folds_json.read_text())
    oof = saved["out_of_fold"]
    pool = sorted(set(oof["cores"]))
    trained_on = {c: [o for o in pool if o not in f["cores"]] for f in saved["folds"] for c in f["cores"]}
    per_core = by_core(oof["y"], oof["pred"], oof["cores"], trained_on)
    score = mean_inside(per_core)
    return (float("nan") if score is None else score), per_core


README_SETS = ("target_transform=logit",)  # the README's fine-tune options beside folds=4
#: generated corpora beside the demo store (``xrfhub.synth.generate_corpus`` sizes)
CORPORA = {"c10": {"n_cores": 10, "length_m": (3.0, 4.0), "lab_spacing_mm": 80.0, "n_30kv": 0, "n_50kv": 0}}


def make_store(store: Path, corpus: str, seed: int, log: Path) -> float:
    """The seed's store in ``store/demo/hub``: ``xrfhub demo``, or a generated corpus ingested."""
    if corpus == "demo":
        return xrfhub("demo", "--out", store / "demo", "--seed", seed, log=log)
    from xrfhub.synth import generate_corpus

    start = time.perf_counter()
    folder = store / "demo" / "corpus"
    generate_corpus(folder, size=CORPORA[corpus], seed=seed)
    lab = sorted((folder / "lab").iterdir())
    return (time.perf_counter() - start) / 60.0 + xrfhub("ingest", folder / "scans", *lab, "--store",
                                                          store / "demo" / "hub", log=log)


UNLABELLED_DONE = "unlabelled_cores.txt"  # written once the extra scans are in the store


def add_unlabelled(hub: Path, target: Path, corpus: str, seed: int, n: int, log: Path) -> float:
    """Copy ``hub`` to ``target`` and ingest the scans of ``n`` more generated cores, without lab
    values; returns minutes."""
    import shutil

    from xrfhub.api import open as open_store
    from xrfhub.synth import generate_corpus

    start = time.perf_counter()
    shutil.rmtree(target, ignore_errors=True)  # an interrupted earlier try
    shutil.copytree(hub, target)
    have = set(map(str, open_store(target, "spectra", index=False)["core"].values))
    scans, k = [], 1
    while len(scans) < n:
        folder = target.parent / f"unlabelled{k}"
        truth = generate_corpus(folder, size=CORPORA[corpus], seed=1000 * k + seed)
        for core in sorted(truth.cores):
            path = folder / "scans" / core
            if len(scans) < n and core not in have and path.is_dir():
                scans.append(path)
                have.add(core)
        k += 1
    minutes = (time.perf_counter() - start) / 60.0 + xrfhub("ingest", *scans, "--store", target, log=log)
    (target.parent / UNLABELLED_DONE).write_text("\n".join(p.name for p in scans) + "\n")
    return minutes


def tour(root: Path, seed: int, pretrain_epochs: int = 5, baseline: bool = True, sets: tuple = README_SETS,
         corpus: str = "demo", pre_sets: tuple = (), unlabelled: int = 0) -> dict:
    store = root / f"seed{seed}"
    # the README's 5 pre-training epochs in the seed's folder; another length, other pre-training
    # options or other fine-tune options, beside them
    work = store if pretrain_epochs == 5 else store / f"pretrain{pretrain_epochs}"
    if pre_sets:
        work = work / ("pre-" + "+".join(s.replace("=", "-") for s in pre_sets))
    if unlabelled:
        work = work / f"unlabelled{unlabelled}"
    variant = tuple(sets) != README_SETS
    if variant:
        work = work / "+".join(s.replace("=", "-") for s in sets)
    work.mkdir(parents=True, exist_ok=True)
    log, hub = work / "log.txt", store / "demo" / "hub"
    pre = work.parent / "pre" if variant else work / "pre"
    minutes = {}
    if not (hub / "store.json").exists():
        minutes["demo"] = make_store(store, corpus, seed, log)
    if unlabelled:  # the seed's store plus the scans of more cores, pre-trained and fine-tuned on there
        if not (work / UNLABELLED_DONE).exists():
            minutes["unlabelled"] = add_unlabelled(hub, work / "hub", corpus, seed, unlabelled, log)
        hub = work / "hub"
    if not variant or not (pre / "run.json").exists():
        minutes["pretrain"] = xrfhub("train", "max", "--store", hub, "--stage", "pretrain", "--config", "tiny",
                                     "--epochs", pretrain_epochs, "--holdout-cores", "auto", "--out", pre,
                                     *[a for s in pre_sets for a in ("--set", s)], "--overwrite", log=log)
    extra = [a for s in sets for a in ("--set", s)]
    minutes["finetune"] = xrfhub("train", "max", "--store", hub, "--stage", "finetune", "--target", "CaCO3",
                                 "--init", pre, "--epochs", 60, "--set", "folds=4", *extra, "--out",
                                 work / "caco3", "--overwrite", log=log)
    if baseline and not (store / "caco3-lee2022" / "run.json").exists():
        minutes["baseline"] = xrfhub("train", "baseline", "--store", hub, "--target", "CaCO3", "--holdout-cores",
                                     "auto", "--calibration-cores", "auto", "--out", store / "caco3-lee2022",
                                     "--overwrite", log=log)
    if baseline:
        minutes["predict"] = xrfhub("predict", "--store", hub, "--run", work / "caco3", "--interval", 0.9, log=log)
    ours = json.loads((work / "caco3" / "run.json").read_text())
    base = json.loads((store / "caco3-lee2022" / "run.json").read_text())
    interp, per_core = interpolation_r2(work / "caco3" / "folds.json")
    return {"corpus": corpus, "seed": seed, "pretrain_epochs": pretrain_epochs, "pretrain_set": list(pre_sets),
            "unlabelled_cores": unlabelled,
            "finetune_set": list(sets),
            "interpolation_r2": interp, "interpolation_cores": per_core, "held_out": ours["holdout_cores"],
            "baseline_held_out": base["holdout_cores"], "max": ours["metrics"]["held_out"],
            "out_of_fold": ours["metrics"]["validation"], "baseline": base["metrics"]["held_out"],
            "held_out_range": ours.get("held_out_range"), "warnings": ours.get("warnings", []),
            "minutes": {k: round(v, 1) for k, v in minutes.items()}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--corpus", default="demo", choices=["demo", *CORPORA],
                    help="the store each seed makes: the demo's, or a generated corpus (see above)")
    ap.add_argument("--pretrain-epochs", type=int, default=5,
                    help="pre-training length (the README's 5; another runs in seedG/pretrainN beside it, "
                         "scored against the baseline of the README's run)")
    ap.add_argument("--finetune-set", action="append", metavar="KEY=VALUE",
                    help="fine-tune options in place of the README's (repeatable; folds=4 stays), from the "
                         "README's pre-training, in seedG/<options>/")
    ap.add_argument("--unlabelled-cores", type=int, default=0, metavar="N",
                    help="pre-train (and fine-tune) on the seed's store plus the scans of N more generated "
                         "cores without lab values, in seedG/unlabelledN/ (see above)")
    ap.add_argument("--pretrain-set", action="append", metavar="KEY=VALUE", default=[],
                    help="pre-training options beside the README's (repeatable), e.g. transform=clr: the "
                         "pre-training and the README's fine-tune run in seedG/pre-<options>/, scored against "
                         "the README run's baseline")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    import dask.array  # noqa: F401  imported here once: two threads importing dask at once can fail
    import xrfhub.api  # noqa: F401
    import xrfhub.synth  # noqa: F401

    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}")
    with ThreadPoolExecutor(args.jobs) as pool:
        sets = tuple(args.finetune_set or README_SETS)
        pre_sets = tuple(args.pretrain_set)
        readme = args.pretrain_epochs == 5 and sets == README_SETS and not pre_sets and not args.unlabelled_cores
        results = list(pool.map(lambda s: tour(args.out, s, args.pretrain_epochs, readme, sets, args.corpus,
                                               pre_sets, args.unlabelled_cores),
                                args.seeds))
    with (args.out / "results.jsonl").open("a") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    options = " ".join(args.finetune_set or README_SETS)
    print(f"corpus: {args.corpus}; pre-training: {args.pretrain_epochs} epochs {' '.join(args.pretrain_set)}; "
          f"fine-tune options: {options}")
    print("| seed | held-out core | interpolation-core R2 | out-of-fold R2 (RMSE) | MAX held-out R2 (RMSE) "
          "| baseline R2 (RMSE) | RMSE ours / baseline | 90 % coverage (width) | minutes: pre-train, fine-tune |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        m, b, iv, oof = r["max"], r["baseline"], r["max"].get("interval_90", {}), r["out_of_fold"]
        print(f"| {r['seed']} | {', '.join(r['held_out'])} | {r['interpolation_r2']:.3f} | {oof['r2']:.3f} "
              f"({oof['rmse']:.2f}) | {m['r2']:.3f} "
              f"({m['rmse']:.2f}) | {b['r2']:.3f} ({b['rmse']:.2f}) | {m['rmse'] / b['rmse']:.2f} "
              f"| {iv.get('coverage', float('nan')):.2f} ({iv.get('mean_width', float('nan')):.1f}) "
              f"| {r['minutes'].get('pretrain', '-')}, {r['minutes']['finetune']} |")
    mean = sum(r["max"]["r2"] for r in results) / len(results)
    base = sum(r["baseline"]["r2"] for r in results) / len(results)
    print(f"mean held-out R2: MAX {mean:.3f}, baseline {base:.3f}; MAX >= 0.90 on "
          f"{sum(r['max']['r2'] >= 0.9 for r in results)} of {len(results)} seeds; finished "
          f"{time.strftime('%H:%M:%S UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
