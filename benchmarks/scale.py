"""Does a write cost the change or the store? One-core appends and prediction write-backs on stores
of about 4, 40 and 400 cores (issue 13).

For each size the generator writes cores straight into a store (in-memory records of synthetic
spectra, committed through the store's own write path in batches: fast, and the same bytes an
ingest gives). Then, each in a fresh process:

* **append**: ``xrfhub ingest FOLDER --store S`` of one new core (242 real ``.spe`` files), run as
  the CLI runs it (``python -m xrfhub_cli``) in a fresh process; ``append_s`` is the command's own
  time after the imports (``append_total_s`` with them: the imports alone take seconds here);
* **predict write-back**: ``xrfhub.predictions.write_run`` of one value per spectrum of the store
  (what ``xrfhub predict`` calls once the model has run; the model's compute is left out);
* **open**: ``xrfhub.open(store)``; **sel**: one core's counts loaded; **epoch**: one streaming
  loader pass (``loaders.spectra_stream(mode="stream")``) over every spectrum.

Time is wall clock; RSS is the child's peak (``wait4``); bytes are those of files the write
created (files hard-linked from the parent generation are not written). ``--baseline SRC``
runs the same generator and append with another checkout's code (``/work/main``: the code
before this change) on the sizes up to ``--baseline-max`` cores, and prints the ratio; today's
figures from issue 13 (measured on main before this change) are printed beside. ``--million``
adds a store of >= 1,000,000 spectra (long on a small machine).

    python benchmarks/scale.py [--sizes 4,40,400] [--baseline /work/main] [--plot docs/results/scale.png]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent
#: issue 13's measurements on main (5 to 150 generated cores of ~1,460 spectra, a 242-spectrum append)
TODAY = [  # spectra stored, append s, append GB RSS, append MB written, predict s, predict GB, predict MB
    (29_000, 14.3, 1.0, 49, 25, 1.3, 145),
    (90_000, 33.7, 2.4, 150, 73, 3.2, 455),
    (219_000, 52.6, 5.4, 364, 119, 7.3, 1107),
]

GENERATE = r'''
import sys, numpy as np, pandas as pd
from xrfhub import build
from xrfhub.records import CoreRecord, SpectraBlock, SourceFile
from xrfhub.store.generations import Store
from xrfhub.store import layout
store, start, n_cores, per_core, n_ch, batch = sys.argv[1], *map(int, sys.argv[2:7])
s = Store(store)
rng = np.random.default_rng(start)
shape = np.exp(-0.5 * ((np.arange(n_ch) - n_ch * 0.18) / 9.0) ** 2) * 400 + np.exp(-np.arange(n_ch) / 400.0) * 30 + 1
cols = list(layout.SPECTRUM_COORDS)
def core(i):
    name = f"GEN{i:05d}"
    depth = 5.0 + 2.0 * np.arange(per_core)
    counts = rng.poisson(shape[None, :] * rng.uniform(0.8, 1.2, (per_core, 1))).astype(np.uint32)
    c = {"core": name, "section": "0000", "section_top_mm": 0.0, "position_mm": depth, "depth_mm": depth,
         "composite_depth_mm": np.nan, "scan": "r1_10kV_rep0", "run": "Run1", "replicate": 0, "tube_kv": 10.0,
         "tube_ma": 0.15, "live_time_s": 10.0, "real_time_s": 11.0, "filter": "No-Filter", "slit_dc_mm": 10.0,
         "slit_cc_mm": 12.0, "date": "", "energy_gain_kev": 0.02, "energy_offset_kev": 0.0,
         "calibration_source": "generator", "instrument": "generator", "detector": "", "valid": True,
         "source": [f"gen/{name}/{k:05d}.spe" for k in range(per_core)], "header": "", "warnings": ""}
    c.update({k: layout.SPECTRUM_COORD_DEFAULTS.get(k, "") for k in cols if k not in c})  # e.g. depth_scale
    df = pd.DataFrame({k: (v if np.ndim(v) else [v] * per_core) for k, v in c.items()})
    rec = CoreRecord(name)
    rec.scans["r1_10kV_rep0"] = SpectraBlock(counts, df)
    # the core's source files, as its NeXus file lists them after an ingest
    rec.sources = [SourceFile(n, n, __import__("hashlib").sha256(n.encode()).hexdigest(), "avaatech-spe", 9000)
                   for n in df["source"]]
    return name, rec
def sources(records):
    """One source per spectrum, as an ingest of .spe files registers them (sha256, content identity)."""
    out = {}
    for rec in records.values():
        for name in rec.scans["r1_10kV_rep0"].coords["source"]:
            digest = __import__("hashlib").sha256(name.encode()).hexdigest()
            out[name] = {"sha256": digest, "format": "avaatech-spe", "kind": "spectra", "size": 9000,
                         "path": name, "ingested": "", "identity": digest + ":" + digest[:16]}
    return out
for b in range(start, start + n_cores, batch):
    with s.writer():
        current = s.current()
        records = dict(core(i) for i in range(b, min(start + n_cores, b + batch)))
        if hasattr(build, "LazyRecords"):
            build.write_generation(s, current, records, set(records), sources(records), event={"action": "generate"})
        else:  # the code before issue 13 needs every record at each write
            old = build.load_records(current) if current else {}
            old.update(records)
            build.write_generation(s, current, old, set(records),
                                   {**(current.manifest()["sources"] if current else {}), **sources(records)},
                                   event={"action": "generate"})
'''

PREDICT = r'''
import sys, time, json, numpy as np, xrfhub
from xrfhub import predictions
import xarray, zarr, h5py
store = sys.argv[1]
t = time.perf_counter()
try:  # the loaders live in xrfhub.ml; a --baseline checkout may predate that
    from xrfhub.ml import loaders
except ImportError:
    from xrfhub import loaders
if hasattr(loaders, "predict_spectra"):
    # the streaming path every spectra plugin predicts through, with a line ratio for a model
    group, values = loaders.predict_spectra(store, lambda x: x[:, 360:380].sum(1) / np.maximum(x.sum(1), 1) * 100,
                                            tube_kv=None, progress=False)
else:
    group = "spectra/ch%s" % sys.argv[2]
    values = np.random.default_rng(0).uniform(0, 60, xrfhub.open(store, index=False).sizes["spectrum"])
model_s = time.perf_counter() - t
t = time.perf_counter()
predictions.write_run(store, {"CaCO3": values}, group=group, plugin="bench", provenance={"model": "bench"})
print(json.dumps({"inner_s": time.perf_counter() - t, "model_s": model_s}))
'''

PREDICT_CORE = r'''
import sys, time, json, numpy as np, xrfhub
from xrfhub import predictions
store = sys.argv[1]
ds = xrfhub.open(store, index=False)
values = np.full(ds.sizes["spectrum"], np.nan, dtype=np.float32)
mine = np.flatnonzero(np.char.startswith(ds["core"].values.astype(str), "NEW"))  # the appended core(s)
values[mine] = 30.0
t = time.perf_counter()
predictions.write_run(store, {"CaCO3": values}, group=ds.attrs["group"], plugin="bench", provenance={"model": "one core"})
print(json.dumps({"inner_s": time.perf_counter() - t, "n": int(len(mine))}))
'''

INGEST = r'''
import json, runpy, sys, time
import xrfhub_cli.main, xrfhub.ingestion, xarray, zarr, h5py  # imports first: timed apart
t = time.perf_counter()
sys.argv = ["xrfhub", "ingest", sys.argv[1], "--store", sys.argv[2]]
try:
    runpy.run_module("xrfhub_cli", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    if exc.code:
        raise
print(json.dumps({"inner_s": time.perf_counter() - t}))
'''

READS = r'''
import sys, time, json
t = time.perf_counter()
import xrfhub, xarray, zarr, dask.array, xrfhub.index  # the libraries open uses, imported first: timed apart
t_import = time.perf_counter() - t
t = time.perf_counter(); ds = xrfhub.open(sys.argv[1]); t_open = time.perf_counter() - t
core = str(ds["core"].values[len(ds["core"]) // 2])
t = time.perf_counter(); ds.sel(core=core)["counts"].load(); t_sel = time.perf_counter() - t
out = {"open_s": t_open, "sel_s": t_sel, "import_s": t_import}
if sys.argv[2] == "1":
    try:  # as in PREDICT: a --baseline checkout may have the loaders outside xrfhub.ml
        from xrfhub.ml import loaders
    except ImportError:
        from xrfhub import loaders
    t = time.perf_counter(); n = 0
    for batch in loaders.spectra_stream(sys.argv[1], mode="stream", batch_size=256, tube_kv=None, seed=0):
        n += len(batch[0]) if isinstance(batch, tuple) else len(batch)
    out["epoch_s"] = time.perf_counter() - t
    out["epoch_spectra"] = n
print(json.dumps(out))
'''

VALIDATE = r'''
import sys, time, json, xrfhub
t = time.perf_counter()
report = xrfhub.validate(sys.argv[1], nxcheck=False)
print(json.dumps({"validate_s": time.perf_counter() - t, "validate_ok": report.ok}))
'''


def _run(code_or_argv, src: Path, *args) -> tuple[float, float, str]:
    """Run in a fresh process with ``src`` on the path: (seconds, peak RSS GB, stdout)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(src / "cli"), str(src / "plugins")])}
    argv = ([sys.executable, "-c", code_or_argv, *map(str, args)] if isinstance(code_or_argv, str)
            else [sys.executable, *code_or_argv, *map(str, args)])
    t = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=src)
        _pid, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{argv[:4]} failed:\n{err.read().decode()[-3000:]}")
        return seconds, usage.ru_maxrss / 1024 ** 2, out.read().decode()


def _written(store: Path, before: set[str]) -> int:
    """Bytes of the files the last write created: in new generations, not hard links of older files."""
    total = 0
    for gen in (store / "generations").iterdir():
        if gen.name in before or not gen.name.startswith("g"):
            continue
        for p in gen.rglob("*"):
            if p.is_file() and p.stat().st_nlink == 1:
                total += p.stat().st_size
    return total


def _gens(store: Path) -> set[str]:
    return {p.name for p in (store / "generations").iterdir()}


def append_core(folder: Path, n: int, n_ch: int, seed: int) -> Path:
    """One new core of ``n`` Avaatech ``.spe`` files (the real reader and ingest path)."""
    from xrfhub.synth.spe_writer import SpeMeta, write_spe

    rng = np.random.default_rng(seed)
    shape = np.exp(-0.5 * ((np.arange(n_ch) - n_ch * 0.18) / 9.0) ** 2) * 400 + 30
    name = f"NEW{seed:05d}"
    t0 = dt.datetime(2024, 5, 1, 8, 0)
    for i in range(n):
        pos = 5.0 + 4.0 * i
        meta = SpeMeta(core=name, section="0000", position_mm=pos, date=t0 + dt.timedelta(minutes=i))
        write_spe(folder / name / f"{name}_0000_{pos:07.1f}mm_10kV_{i:04d}.spe",
                  rng.poisson(shape).astype(np.int64), meta)
    return folder / name


def measure(src: Path, store: Path, n_cores: int, args, work: Path, epoch: bool, per_core: int | None = None) -> dict:
    per_core = per_core or args.per_core
    row = {"cores": n_cores}
    if not (args.reuse and store.exists()):
        t, rss, _ = _run(GENERATE, src, store, 0, n_cores, per_core, args.channels,
                         max(1, min(args.batch, 50_000 // per_core)))
        row["generate_s"] = t
    seed = n_cores + 1000 * args.again
    core = append_core(work / f"append-{src.name}-{n_cores}-{args.again}", args.append, args.channels, seed=seed)
    before = _gens(store)
    t, rss, out = _run(INGEST, src, core, store)
    row.update(spectra=n_cores * per_core + args.append * (args.again if args.reuse else 0), append_total_s=t, append_s=json.loads(out.strip().splitlines()[-1])["inner_s"],
               append_rss_gb=rss, append_mb=_written(store, before) / 1e6)
    if args.predict:
        before = _gens(store)
        t, rss, out = _run(PREDICT, src, store, args.channels)
        got = json.loads(out.strip().splitlines()[-1])
        row.update(predict_total_s=t, predict_s=got["inner_s"], predict_model_s=got.get("model_s", float("nan")),
                   predict_rss_gb=rss, predict_mb=_written(store, before) / 1e6)
        before = _gens(store)
        t, rss, out = _run(PREDICT_CORE, src, store)
        got = json.loads(out.strip().splitlines()[-1])
        row.update(predict_core_s=got["inner_s"], predict_core_n=got["n"], predict_core_rss_gb=rss,
                   predict_core_mb=_written(store, before) / 1e6)
    if args.reads:
        _t, rss, out = _run(READS, src, store, "1" if epoch else "0")
        row.update(json.loads(out.strip().splitlines()[-1]), reads_rss_gb=rss)
    if args.validate:
        _t, rss, out = _run(VALIDATE, src, store)
        row.update(json.loads(out.strip().splitlines()[-1]), validate_rss_gb=rss)
    return row


def _fit(rows, key) -> float:
    """Growth per 1,000 spectra already stored (least squares over the sizes)."""
    x = np.array([r["spectra"] for r in rows], float) / 1000
    y = np.array([r[key] for r in rows], float)
    return float(np.polyfit(x, y, 1)[0]) if len(rows) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="4,40,400")
    ap.add_argument("--per-core", type=int, default=1460)
    ap.add_argument("--append", type=int, default=242)
    ap.add_argument("--channels", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=20, help="cores per generated generation")
    ap.add_argument("--baseline", type=Path, help="another checkout to compare with (e.g. /work/main)")
    ap.add_argument("--baseline-max", type=int, default=40, help="largest size run with the baseline")
    ap.add_argument("--million", action="store_true", help="add a store of >= 1,000,000 spectra")
    ap.add_argument("--no-predict", dest="predict", action="store_false")
    ap.add_argument("--no-reads", dest="reads", action="store_false")
    ap.add_argument("--no-validate", dest="validate", action="store_false")
    ap.add_argument("--million-per-core", type=int, default=2500, help="spectra per core of the million store")
    ap.add_argument("--epoch-max", type=int, default=40, help="largest size given a full loader epoch")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--reuse", action="store_true", help="measure again on the stores already in --work")
    ap.add_argument("--again", type=int, default=0, help="with --reuse: a fresh core to append (its number)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    plan = [(n, args.per_core) for n in sizes]
    if args.million:
        plan.append((-(-1_000_000 // args.million_per_core), args.million_per_core))
    work = args.work or Path(tempfile.mkdtemp(prefix="xrfhub-scale-"))
    ours, base = [], []
    for n, per_core in plan:
        row = measure(HERE, work / f"ours-{n}x{per_core}", n, args, work, epoch=n * per_core <= 20_000 * args.epoch_max,
                      per_core=per_core)
        ours.append(row)
        print("ours    ", json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
              flush=True)
        if args.baseline and n <= args.baseline_max:
            b = measure(args.baseline.resolve(), work / f"base-{n}", n, args, work, epoch=False, per_core=per_core)
            base.append(b)
            print("baseline", json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in b.items()}),
                  flush=True)
    nan = float("nan")
    print("\n| cores | spectra | append s | RSS GB | MB written | predict (model + write) s | write s | RSS GB | "
          "MB written | open s | sel s | epoch s | reads RSS GB | validate s | its RSS GB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in ours:
        print(f"| {r['cores']} | {r['spectra']:,} | {r['append_s']:.1f} | {r['append_rss_gb']:.2f} | "
              f"{r['append_mb']:.1f} | {r.get('predict_model_s', nan) + r.get('predict_s', nan):.1f} | "
              f"{r.get('predict_s', nan):.1f} | {r.get('predict_rss_gb', nan):.2f} | "
              f"{r.get('predict_mb', nan):.1f} | {r.get('open_s', nan):.2f} | {r.get('sel_s', nan):.2f} | "
              f"{r.get('epoch_s', nan):.1f} | {r.get('reads_rss_gb', nan):.2f} | {r.get('validate_s', nan):.1f} | "
              f"{r.get('validate_rss_gb', nan):.2f} |")
    for b in base:
        o = next(r for r in ours if r["cores"] == b["cores"])
        print(f"baseline at {b['cores']} cores: append {b['append_s']:.1f} s (ours/main {o['append_s'] / b['append_s']:.2f}), "
              f"RSS {b['append_rss_gb']:.2f} GB (ours/main {o['append_rss_gb'] / b['append_rss_gb']:.2f}), written "
              f"{b['append_mb']:.1f} MB ({o['append_mb'] / max(b['append_mb'], 1e-9):.2f}x); predict "
              f"{b.get('predict_s', float('nan')):.1f} s ({o.get('predict_s', float('nan')) / b.get('predict_s', float('nan')):.2f}x), "
              f"written {b.get('predict_mb', float('nan')):.1f} MB")
    today = [dict(spectra=t[0], append_s=t[1], append_rss_gb=t[2], append_mb=t[3]) for t in TODAY]
    print("\ngrowth per 1,000 spectra stored (least squares over the sizes), ours vs issue 13's figures for main:")
    for key, unit in (("append_s", "s"), ("append_rss_gb", "GB"), ("append_mb", "MB")):
        print(f"  {key:<14} ours {_fit(ours, key):+.5f} {unit}   main {_fit(today, key):+.5f} {unit}")
    print("\nA run predicting one core (the appended one; every other spectrum NaN):")
    print("| cores | spectra | predicted | write s | RSS GB | MB written |")
    print("|---|---|---|---|---|---|")
    for r in ours:
        if "predict_core_s" in r:
            print(f"| {r['cores']} | {r['spectra']:,} | {r['predict_core_n']} | {r['predict_core_s']:.2f} | "
                  f"{r['predict_core_rss_gb']:.2f} | {r['predict_core_mb']:.2f} |")
    first, last = ours[0], ours[-1]
    for key, what in (("append", "append one core"), ("predict_core", "a run predicting one core")):
        if f"{key}_s" in first and f"{key}_s" in last:
            print(f"largest/smallest store ({last['spectra']:,} vs {first['spectra']:,} spectra), {what}: time "
                  f"{last[f'{key}_s'] / first[f'{key}_s']:.2f}x, RSS {last[f'{key}_rss_gb'] / first[f'{key}_rss_gb']:.2f}x, "
                  f"bytes {last[f'{key}_mb'] / first[f'{key}_mb']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"ours": ours, "baseline": base, "today": TODAY}, indent=1))
    if args.plot:
        _plot(ours, base, args.plot)


def _plot(ours, base, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    t = np.array(TODAY, float)
    for ax, key, col, label in ((axes[0], "append_s", 1, "append one core: seconds"),
                                (axes[1], "append_rss_gb", 2, "append: peak RSS (GB)"),
                                (axes[2], "append_mb", 3, "append: MB written")):
        ax.plot([r["spectra"] for r in ours], [r[key] for r in ours], "o-", label="this change")
        if base:
            ax.plot([r["spectra"] for r in base], [r[key] for r in base], "s--", label="main (same run)")
        ax.plot(t[:, 0], t[:, col], "x:", color="grey", label="main (issue 13)")
        ax.set_xscale("log")
        ax.set_xlabel("spectra already in the store")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
