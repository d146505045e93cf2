"""Peak memory of `xrfhub ingest` against the size of the corpus (issue 13, item 3).

A corpus of N spectra (Avaatech ``.spe`` files, ``--per-core`` per core, written by the same
writer the demo uses) is ingested into a new store by the real command in a fresh process, and
its peak RSS and wall time are printed for each N. Ingest works in batches of whole folders
(``xrfhub.ingestion.BATCH_FILES`` files, each batch one committed generation), so its memory
should grow with the batch, not with the corpus: the figure that matters is how the peak moves
from one batch to several. The baseline, measured in the same run, is the smallest corpus.

    python benchmarks/ingest_memory.py --sizes 5000,20000,60000 --work /tmp/ingest-mem

Corpora are kept in ``--work`` and reused by later runs (``--fresh`` rewrites them).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
INGEST = r'''
import runpy, sys
sys.argv = ["xrfhub", "ingest", sys.argv[1], "--store", sys.argv[2]]
runpy.run_module("xrfhub_cli", run_name="__main__", alter_sys=True)
'''


def write_corpus(folder: Path, n: int, per_core: int, n_ch: int = 2048, seed: int = 0) -> int:
    """``n`` spectra in folders of ``per_core`` files, one folder per core; returns bytes written."""
    sys.path[:0] = [str(ROOT)]
    from xrfhub.synth.spe_writer import SpeMeta, write_spe

    rng = np.random.default_rng(seed)
    shape = np.exp(-0.5 * ((np.arange(n_ch) - n_ch * 0.18) / 9.0) ** 2) * 400 + 30
    t0 = dt.datetime(2024, 5, 1, 8, 0)
    tmp = folder.with_name(folder.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    total = 0
    for i in range(n):
        core, k = divmod(i, per_core)
        name = f"MEM{core:05d}"
        pos = 5.0 + 4.0 * k
        path = tmp / name / f"{name}_0000_{pos:07.1f}mm_10kV_{k:04d}.spe"
        write_spe(path, rng.poisson(shape).astype(np.int64),
                  SpeMeta(core=name, section="0000", position_mm=pos, date=t0 + dt.timedelta(minutes=k)))
        total += path.stat().st_size
    tmp.rename(folder)  # a corpus is there whole or not at all: reruns never reuse half a corpus
    return total


def ingest(corpus: Path, store: Path) -> tuple[float, float]:
    """(seconds, peak RSS GB) of the real command in a fresh process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "cli"), str(ROOT / "plugins")])}
    argv = [sys.executable, "-c", INGEST, str(corpus), str(store)]
    t = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        _pid, status, usage = os.wait4(p.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"ingest of {corpus} failed:\n{err.read().decode()[-3000:]}")
    return time.perf_counter() - t, usage.ru_maxrss / 1024 ** 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="5000,20000,60000", help="spectra per corpus, comma-separated")
    ap.add_argument("--per-core", type=int, default=500)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "xrfhub-ingest-memory")
    ap.add_argument("--fresh", action="store_true", help="rewrite the corpora")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sys.path[:0] = [str(ROOT)]
    from xrfhub import ingestion

    print(f"batch: {ingestion.BATCH_FILES} files; load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        corpus = args.work / f"corpus-{n}-{args.per_core}"
        if args.fresh:
            shutil.rmtree(corpus, ignore_errors=True)
        if not corpus.exists():
            t = time.perf_counter()
            size = write_corpus(corpus, n, args.per_core)
            print(f"wrote {n:,} spectra ({size / 1e9:.2f} GB) in {time.perf_counter() - t:.0f} s", flush=True)
        store = args.work / f"store-{n}"
        shutil.rmtree(store, ignore_errors=True)
        seconds, rss = ingest(corpus, store)
        rows.append({"spectra": n, "batches": -(-n // ingestion.BATCH_FILES), "ingest_s": seconds,
                     "rss_gb": rss, "spectra_per_s": n / seconds})
        print(json.dumps(rows[-1]), flush=True)
        shutil.rmtree(store, ignore_errors=True)
    print(f"\n| spectra | batches | ingest s | spectra/s | peak RSS GB |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['spectra']:,} | {r['batches']} | {r['ingest_s']:.1f} | {r['spectra_per_s']:.0f} | {r['rss_gb']:.2f} |")
    base, big = rows[0], rows[-1]
    print(f"largest/smallest corpus ({big['spectra']:,} vs {base['spectra']:,} spectra, "
          f"{big['spectra'] / base['spectra']:.0f}x): peak RSS {big['rss_gb'] / base['rss_gb']:.2f}x, "
          f"time {big['ingest_s'] / base['ingest_s']:.2f}x; load average {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
