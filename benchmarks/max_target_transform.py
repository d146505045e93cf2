"""MAX's CaCO3 fine-tune on the plain target against its log-ratio (``--set target_transform=logit``).

The README's commands on a generated store (pre-training 5 epochs with the held-out cores out,
then ``--set folds=4``, 60 epochs), once per target transform from the same pre-training, and the
Lee 2022 baseline on the same held-out cores (``--calibration-cores auto``). What decides (fixed
before the first run, docs/results.md, sixth pass): the out-of-fold R2 of the cross-fit; the
held-out cores are only reported. One JSON line per run is appended to ``OUT/results.jsonl``::

    python benchmarks/max_target_transform.py --out /tmp/lx demo:0/0 demo:0/1 demo:1/0

(``kind:generator-seed/training-seed``; the stores are those of ``benchmarks/max_recipe.py``.)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from max_recipe import build  # noqa: E402  (the same corpora and held-out cores)


def main(argv=None) -> None:
    import torch

    from xrfhub.ml import training

    torch.set_num_threads(1)  # a shared CPU: one core for the others
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--baseline", action="store_true", help="also train the baseline once per store")
    ap.add_argument("runs", nargs="+", help="kind:generator-seed/training-seed, e.g. demo:0/1")
    args = ap.parse_args(argv)
    results = args.out / "results.jsonl"
    for spec in args.runs:
        corpus, seed = spec.split("/")
        kind, g = corpus.split(":")
        base = args.out / f"{kind}-{g}"
        hub, held = build(base, kind, int(g))
        pre = base / f"s{seed}" / "pre"
        if not (pre / "run.json").exists():
            training.train("max", hub, stage="pretrain", out=pre, config="tiny", epochs=5, holdout_cores=held,
                           sets={"seed": seed}, progress=False, overwrite=pre.exists())
        variants = [("max", v) for v in ("none", "logit")] + ([("baseline", "")] if args.baseline else [])
        for model, variant in variants:
            start = time.perf_counter()
            if model == "max":
                folder = base / f"s{seed}" / f"ft-{variant}"
                s = training.train("max", hub, stage="finetune", target="CaCO3", init=pre, epochs=60, out=folder,
                                   sets={"seed": seed, "folds": "4", "target_transform": variant}, progress=False,
                                   overwrite=folder.exists())
            else:
                folder = base / "baseline"
                s = training.train("baseline", hub, stage="train", target="CaCO3", holdout_cores=held,
                                   calibration_cores=["auto"], out=folder, progress=False, overwrite=folder.exists())
            rec = {"run": spec, "model": model, "variant": variant, "held_out_cores": held,
                   "seconds": round(time.perf_counter() - start), "metrics": s.metrics}
            with results.open("a") as f:
                f.write(json.dumps(rec, default=str) + "\n")
            m = s.metrics
            print(f"{spec} {model} {variant}: validation R2 {m['validation']['r2']:.3f}, held-out R2 "
                  f"{m.get('held_out', {}).get('r2', float('nan')):.3f} ({rec['seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
