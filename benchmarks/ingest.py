"""Ingest throughput per Avaatech dialect: the whole ``xrfhub ingest`` against a plain parse.

The corpus mixes the four dialects Avaatech heads write, each as one change from the plain
file (new head, LF, one count per line, decimal points):

    comma   header numbers with decimal commas (``15,0``)
    crlf    CRLF line ends
    packed  counts packed eight per line in 8-wide right-aligned fields (real heads pack 8-10)
    old     the old four-key head (no position, tube or calibration keys: the name fills them)

and, inside every dialect, both file-name schemes: half the cores in the space-separated
scheme (``CORE_0100  15.0mm  10s ...``), half in the 17 ``!``-separated fields. Counts are
Poisson draws around the real 10 kV mean spectrum (``xrfhub/data``), so the digits per count
are those of real files.

Ours: spectra per second of ``xrfhub ingest FOLDER --store NEW`` in a fresh process (start-up,
reading, sha256, parsing, NeXus, Zarr, fsync and commit included). Baseline, measured in the
same run on the same files: per file, read the text (universal newlines), replace ',' by '.',
split lines, find the line starting with '$DATA:', and int() every token after the line that
follows it into a uint32 array (no sha256, no metadata, nothing written). The ratio is
ours / baseline; the goal is >= 1.5 on each dialect alone and on the mix. Also shown, as
"read+parse": the reading stage of ingest alone, in this process (``sources.find`` and
``sources.parse_all``: read each file once, sha256, detect the format, parse counts and every
metadata field into Spectrum records), on the same files: what the readers cost, without
process start-up and without writing the store. Every figure is the median of ``--repeats``
runs (the machine is shared and noisy); baseline, stage and ingest runs are interleaved so that
load from other users falls on all three alike.

An ingest command also has a cost that does not grow with the files (process start, imports,
creating and committing the store): measured as the ingest of one file, right after each
timed ingest (so under the same load), and "ingest, marginal" is the rate beyond it,
(n - 1) / (t_n - t_1), median over the runs: what a corpus much larger than this one would
approach. The goal is judged on the whole command.

Wall-clock rates on a machine other users load are noisy; beside them, "by CPU" compares CPU
seconds (user + system: the child process's for ingest, all its threads summed, this process's
for the baseline), which load moves much less. The load average is printed before and after.

    python benchmarks/ingest.py [--per-dialect 2500] [--repeats 5] [--workdir /tmp/xrfhub-bench-ingest]
"""
from __future__ import annotations

import argparse
import os
import resource
import datetime as dt
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DIALECTS = ("comma", "crlf", "packed", "old")
GOAL = 1.5


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


def style_of(dialect: str):
    from xrfhub.synth.spe_writer import SpeStyle

    return {"comma": SpeStyle(decimal_comma=True), "crlf": SpeStyle(newline="\r\n"),
            "packed": SpeStyle(per_line=8), "old": SpeStyle(head="old")}[dialect]


def build_corpus(root: Path, per_dialect: int, seed: int = 42) -> dict[str, list[Path]]:
    """Write ``per_dialect`` spectra of each dialect under ``root/<dialect>/``; half of each
    dialect's cores use the space name scheme, half the ``!`` scheme. Returns the files."""
    from xrfhub.synth.realism import reference_mean_std
    from xrfhub.synth.spe_writer import SpeMeta, bang_name, space_name, write_spe

    mean, _ = reference_mean_std()
    rng = np.random.default_rng(seed)
    per_core = 490  # 5 sections of 98 points every 10 mm
    files: dict[str, list[Path]] = {}
    for d, dialect in enumerate(DIALECTS):
        style = style_of(dialect)
        written: list[Path] = []
        n_cores = max(2, -(-per_dialect // per_core))
        for c in range(n_cores):
            scheme = "space" if c % 2 == 0 else "bang"
            core = f"PS{75 + d}-{c + 1:03d}-1"
            start = dt.datetime(2015, 3, 1 + d, 8) + dt.timedelta(days=c)
            for k in range(min(per_core, per_dialect - len(written))):
                section, point = divmod(k, 98)
                meta = SpeMeta(core=core, section=f"{section * 100:04d}", position_mm=10.0 * (point + 1),
                               date=start + dt.timedelta(seconds=30 * k), real_s=float(rng.uniform(10.5, 11.5)),
                               total_cps=float(rng.uniform(8e4, 1.2e5)))
                counts = rng.poisson(mean * rng.uniform(0.8, 1.2))
                name = space_name(meta) if scheme == "space" else bang_name(meta)
                written.append(write_spe(root / dialect / core / "Run 1 at  10kV" / name, counts, meta, style))
        files[dialect] = sorted(written)
    (root / "done").write_text("ok\n")
    return files


def _cpu(who) -> float:
    use = resource.getrusage(who)
    return use.ru_utime + use.ru_stime


def time_baseline(files: list[Path]) -> tuple[float, float]:
    """Spectra per second of the plain parse: by wall clock, and by CPU seconds."""
    t, c = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    ok = sum(int(plain_parse(f).size == 2048) for f in files)
    rate, cpu_rate = len(files) / (time.perf_counter() - t), len(files) / (_cpu(resource.RUSAGE_SELF) - c)
    assert ok == len(files), f"{len(files) - ok} files did not give 2048 counts"
    return rate, cpu_rate


def time_stage(folders: list[Path], n: int) -> float:
    from xrfhub.sources import find, parse_all

    t = time.perf_counter()
    parsed = parse_all(find(folders))
    rate = n / (time.perf_counter() - t)
    bad = [p for p in parsed if p.error is not None or p.records is None]
    assert len(parsed) == n and not bad, f"{len(bad)} files not parsed: {bad[:1]}"
    return rate


def time_ingest(folders: list[Path], n: int, store: Path) -> tuple[float, float]:
    """Spectra per second of ``xrfhub ingest`` in a new process: by wall clock, and by CPU seconds."""
    shutil.rmtree(store, ignore_errors=True)
    t, c = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "xrfhub_cli", "ingest", *map(str, folders), "--store", str(store)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rate, cpu_rate = n / (time.perf_counter() - t), n / (_cpu(resource.RUSAGE_CHILDREN) - c)
    shutil.rmtree(store, ignore_errors=True)
    return rate, cpu_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-dialect", type=int, default=2500, help="spectra per dialect (default 2500)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/xrfhub-bench-ingest"))
    ap.add_argument("--only", choices=DIALECTS + ("mixed",), action="append",
                    help="measure only these (repeatable; default: each dialect and the mix)")
    args = ap.parse_args()

    root = args.workdir / f"dialects-{args.per_dialect}"
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        print(f"writing {len(DIALECTS)} x {args.per_dialect} .spe files in {root} ...", flush=True)
        files = build_corpus(root, args.per_dialect)
    else:
        files = {d: sorted((root / d).rglob("*.spe")) for d in DIALECTS}
    cases = {d: ([root / d], files[d]) for d in DIALECTS}
    cases["mixed"] = ([root / d for d in DIALECTS], [f for d in DIALECTS for f in files[d]])
    names = args.only or list(cases)
    for name in names:
        folders, fs = cases[name]
        schemes = {"bang" if "!" in f.name else "space" for f in fs}
        print(f"{name}: {len(fs)} files, {sum(f.stat().st_size for f in fs) / 1e6:.0f} MB, "
              f"name schemes {'+'.join(sorted(schemes))}", flush=True)

    time_stage([files[DIALECTS[0]][0]], 1)  # imports and reader discovery, outside the timings
    one = args.workdir / "one-file"
    shutil.rmtree(one, ignore_errors=True)
    one.mkdir(parents=True)
    shutil.copy(files[DIALECTS[0]][0], one / files[DIALECTS[0]][0].name)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    import xrfhub

    print(f"xrfhub from {Path(xrfhub.__file__).parent}", flush=True)
    rows = []
    for name in names:
        folders, fs = cases[name]
        base, stage, ours, fixed, marginal = [], [], [], [], []
        for r in range(args.repeats):
            base.append(time_baseline(fs))
            stage.append(time_stage(folders, len(fs)))
            ours.append(time_ingest(folders, len(fs), args.workdir / "store"))
            fixed.append(1.0 / time_ingest([one], 1, args.workdir / "store")[0])
            marginal.append((len(fs) - 1) / max(len(fs) / ours[-1][0] - fixed[-1], 1e-9))
            print(f"  {name} run {r + 1}: baseline {base[-1][0]:7.0f}   read+parse {stage[-1]:7.0f}   xrfhub ingest "
                  f"{ours[-1][0]:7.0f} spectra/s (by CPU: baseline {base[-1][1]:.0f}, ingest {ours[-1][1]:.0f}); "
                  f"one-file ingest {fixed[-1]:.2f} s", flush=True)
        med = statistics.median
        rows.append((name, len(fs), med(o for o, _ in ours), med(st for st in stage), med(b for b, _ in base),
                     med(o for _, o in ours) / med(b for _, b in base), med(fixed), med(marginal)))
    print(f"load average after: {os.getloadavg()[0]:.1f}", flush=True)

    print(f"\nmedians of {args.repeats} runs, spectra per second. ingest = whole `xrfhub ingest` into a fresh "
          "store in a new process\n(start-up, read, sha256, parse, NeXus, Zarr, commit); read+parse = its reading "
          "stage in-process (read once, sha256,\ndetect, counts and metadata); baseline = plain per-file parse of "
          f"the counts only (same files, same run). Goal: ratio >= {GOAL}.\n")
    print("| corpus | spectra | baseline | ingest | ingest / baseline | by CPU | one-file ingest (s) "
          "| ingest, marginal | marginal / baseline | read+parse | read+parse / baseline |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, n, o, st, b, by_cpu, fixed_s, marginal in rows:
        print(f"| {name} | {n} | {b:.0f} | {o:.0f} | **{o / b:.2f}**{' (goal met)' if o / b >= GOAL else ''} "
              f"| {by_cpu:.2f} | {fixed_s:.2f} | {marginal:.0f} | {marginal / b:.2f} | {st:.0f} | {st / b:.2f} |")


if __name__ == "__main__":
    main()
