"""Ingest throughput: the whole ``xrfhub ingest`` against a plain parse of the same files.

Ours: spectra per second of ``xrfhub ingest SCANS --store NEW`` in a fresh process (start-up,
parsing, NeXus, Zarr, fsync and commit included). Baseline, measured in the same run on the
same files: per file, read the text, replace ',' by '.', split lines, find the line starting
with '$DATA:', and int() every token after the line that follows it into a uint32 array.
Prints both, and the ratio ours / baseline (goal >= 1.5 on a 2-core machine). Medians of
``--repeats`` runs; the machine is shared and noisy.

    python benchmarks/ingest.py [--spectra 10000] [--repeats 3] [--workdir /tmp/xrfhub-bench-ingest]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def plain_parse(path: Path) -> np.ndarray:
    text = path.read_text().replace(",", ".")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$DATA:"))
    values = []
    for line in lines[start + 2:]:
        if line.startswith("$"):
            break
        values.extend(int(tok) for tok in line.split())
    return np.array(values, dtype=np.uint32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spectra", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/xrfhub-bench-ingest"))
    args = ap.parse_args()

    from xrfhub.synth import generate_corpus

    corpus = args.workdir / f"corpus-{args.spectra}"
    if not (corpus / "truth.json").exists():
        print(f"generating ~{args.spectra} synthetic .spe files in {corpus} ...", flush=True)
        generate_corpus(corpus, size=args.spectra, seed=42)
    files = sorted((corpus / "scans").rglob("*.spe"))
    n = len(files)
    print(f"{n} .spe files, {sum(f.stat().st_size for f in files) / 1e6:.0f} MB")

    baseline, ours = [], []
    for r in range(args.repeats):
        t = time.perf_counter()
        total = sum(int(plain_parse(f).size == 2048) for f in files)
        baseline.append(n / (time.perf_counter() - t))
        assert total == n

        store = args.workdir / "store"
        shutil.rmtree(store, ignore_errors=True)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "xrfhub_cli", "ingest", str(corpus / "scans"), "--store", str(store)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ours.append(n / (time.perf_counter() - t))
        print(f"  run {r + 1}: baseline {baseline[-1]:8.0f} spectra/s   xrfhub ingest {ours[-1]:8.0f} spectra/s",
              flush=True)
    b, o = statistics.median(baseline), statistics.median(ours)
    print(f"baseline plain parse : {b:8.0f} spectra/s (median of {args.repeats})")
    print(f"xrfhub ingest        : {o:8.0f} spectra/s (median of {args.repeats}; parse + NeXus + Zarr + commit, "
          "process start included)")
    print(f"ratio ours/baseline  : {o / b:.2f}  (goal >= 1.5)")


if __name__ == "__main__":
    main()
