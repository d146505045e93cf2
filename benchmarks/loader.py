"""Loader throughput: spectra per second into a model, same transform, batches of 256.

(a) baseline: numpy fancy indexing of the whole counts array held in memory, in a random
    order, plus instance normalisation to float32;
(b) ours, streaming: ``xrfhub.ml.loaders.spectra_stream(mode="stream")`` over the compressed Zarr
    hub (whole chunks decoded and transformed ahead by a thread pool, shuffled in a buffer);
(c) ours, in memory: the same stream with ``mode="memory"`` (first epoch includes the load).
``--with-dask`` adds (b) read through dask, the path a dask.distributed client takes.

Rates are wall-clock spectra/s; "cpu" is this process's CPU time per spectrum (all threads),
which shared, noisy cores disturb less. The store (>= 200,000 Poisson spectra drawn around the
real mean spectrum, written by the store's own writer, so with the hub's current codec) is built
once and cached under ``--workdir``, one store per codec. Medians of ``--repeats``.

    python benchmarks/loader.py [--spectra 200000] [--repeats 3] [--with-dask]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd


def build_store(path: Path, n: int, seed: int = 0) -> None:
    from xrfhub.records import SpectraBlock
    from xrfhub.store import hub, layout
    from xrfhub.store.generations import Store, write_json_atomic
    from xrfhub.synth import reference_mean_std

    mean, _ = reference_mean_std()
    rng = np.random.default_rng(seed)
    counts = np.empty((n, mean.size), dtype=np.uint32)
    for i in range(0, n, 8192):
        m = min(8192, n - i)
        scale = rng.uniform(0.7, 1.3, (m, 1))  # spectra differ in intensity, as real ones do
        counts[i:i + m] = rng.poisson(mean * scale)
    cores = np.repeat([f"BENCH-{k:03d}" for k in range(n // 2000 + 1)], 2000)[:n]
    coords = {}
    for name, (dtype, _u, _l) in layout.SPECTRUM_COORDS.items():
        if dtype == "str":
            coords[name] = np.full(n, "", dtype=object)
        elif dtype == "bool":
            coords[name] = np.ones(n, dtype=bool)
        else:
            coords[name] = np.zeros(n, dtype=dtype)
    coords["core"] = cores.astype(object)
    coords["depth_mm"] = (np.arange(n) % 2000) * 5.0
    coords["tube_kv"][:] = 10.0
    coords["energy_gain_kev"][:] = 0.02
    coords["header"] = np.full(n, "", dtype=object)
    coords["warnings"] = np.full(n, "", dtype=object)
    store = Store(path)
    with store.writer():
        gen = store.new_generation()
        hub.write_spectra(gen.hub_path, SpectraBlock(counts, pd.DataFrame(coords)))
        write_json_atomic(gen.path / layout.MANIFEST, {"generation": gen.name, "sources": {}, "cores": {},
                                                       "note": "loader benchmark store"})
        store.commit(gen)


def rate(run) -> tuple[float, float]:
    """Spectra per second (wall clock) and CPU microseconds per spectrum of one epoch."""
    t, cpu = time.perf_counter(), time.process_time()
    seen = run()
    return seen / (time.perf_counter() - t), (time.process_time() - cpu) / seen * 1e6


def codec_tag() -> str:
    """The hub's row codec in a directory name: a store cached under another codec is not reused."""
    from xrfhub.store import hub

    conf = hub._ROW_CODEC.to_dict()["configuration"]
    return f"{conf['cname']}{conf['clevel']}-{conf['shuffle']}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spectra", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/xrfhub-bench-loader"))
    ap.add_argument("--with-dask", action="store_true", help="also time the stream read through dask")
    args = ap.parse_args()

    import zarr

    import xrfhub
    from xrfhub.ml.loaders import spectra_stream
    from xrfhub.ml.transforms import SpectrumTransform

    store = args.workdir / f"store-{args.spectra}-{codec_tag()}"
    if not (store / "store.json").exists():
        print(f"building a store of {args.spectra} spectra in {store} ...", flush=True)
        build_store(store, args.spectra)
    group = xrfhub.open(store, index=False).attrs["group"]
    gen, _ = xrfhub.api.resolve(store)
    z = zarr.open_array(f"{gen}/hub.zarr/{group}/counts", mode="r")
    codec = z.compressors[0].to_dict()["configuration"] if z.compressors else {}
    stored = sum(f.stat().st_size for f in (Path(gen) / "hub.zarr" / group / "counts").rglob("*") if f.is_file())
    print(f"{z.shape[0]} spectra x {z.shape[1]} channels, chunks {z.chunks}, codec "
          f"{codec.get('cname', 'none')} clevel {codec.get('clevel', '-')} shuffle {codec.get('shuffle', '-')}: "
          f"{stored / 1e6:.0f} MB stored ({z.nbytes / stored:.1f}x)")
    transform = SpectrumTransform("instance")
    in_memory = z[:]
    rng = np.random.default_rng(0)

    def numpy_epoch():
        order = rng.permutation(len(in_memory))
        for i in range(0, len(order), args.batch):
            transform(in_memory[order[i:i + args.batch]])
        return len(order)

    def epoch(stream):
        def run():
            stream.set_epoch(stream.epoch + 1)
            return sum(len(rows) for _x, _y, rows in stream)
        return run

    kw = dict(tube_kv=None, transform=transform, batch_size=args.batch)
    # the first epoch of each loader is timed apart, as a warm-up: (c) loads the store in it,
    # (b) allocates the buffers it then keeps (the baseline's array is loaded before timing too)
    runs = {"a": numpy_epoch, "b": epoch(spectra_stream(store, mode="stream", **kw)),
            "c": epoch(spectra_stream(store, mode="memory", **kw))}
    first_stream, _ = rate(runs["b"])
    first_memory, _ = rate(runs["c"])
    if args.with_dask:
        runs["b-dask"] = epoch(spectra_stream(store, mode="stream", reader="dask", **kw))
    got = {k: [] for k in runs}
    for r in range(args.repeats):
        for k, run in runs.items():
            got[k].append(rate(run))
        print(f"  run {r + 1}: " + "  ".join(f"({k}) {got[k][-1][0]:7.0f}/s cpu {got[k][-1][1]:4.1f} us" for k in runs)
              + f"  b/a {got['b'][-1][0] / got['a'][-1][0]:.2f}", flush=True)
    med = {k: (statistics.median(v[0] for v in got[k]), statistics.median(v[1] for v in got[k])) for k in runs}
    (a, cpu_a), (b, cpu_b), (c, cpu_c) = med["a"], med["b"], med["c"]
    ratios = [x[0] / y[0] for x, y in zip(got["b"], got["a"])]
    print(f"(a) numpy in memory + transform : {a:9.0f} spectra/s  cpu {cpu_a:.1f} us/spectrum (baseline)")
    print(f"(b) xrfhub loader, streaming    : {b:9.0f} spectra/s  cpu {cpu_b:.1f} us/spectrum  ratio b/a {b / a:.2f} "
          f"(per run {min(ratios):.2f}-{max(ratios):.2f}; goal >= 20,000/s and >= 0.40; "
          f"first epoch: {first_stream:.0f}/s)")
    print(f"(c) xrfhub loader, in memory    : {c:9.0f} spectra/s  cpu {cpu_c:.1f} us/spectrum  ratio c/a {c / a:.2f} "
          f"(first epoch, load included: {first_memory:.0f}/s)")
    if "b-dask" in med:
        d, cpu_d = med["b-dask"]
        print(f"(b) through dask (client path)  : {d:9.0f} spectra/s  cpu {cpu_d:.1f} us/spectrum  ratio {d / a:.2f}")


if __name__ == "__main__":
    main()
