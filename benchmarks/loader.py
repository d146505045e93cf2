"""Loader throughput: spectra per second into a model, same transform, batches of 256.

(a) baseline: numpy fancy indexing of the whole counts array held in memory, in a random
    order, plus instance normalisation to float32;
(b) ours, streaming: ``xrfhub.loaders.spectra_stream(mode="stream")`` over the compressed Zarr
    hub (whole blocks, shuffled in a buffer, read ahead in parallel);
(c) ours, in memory: the same stream with ``mode="memory"`` (first epoch includes the load).

The store (>= 200,000 Poisson spectra drawn around the real mean spectrum, written by the
store's own writer) is built once and cached under ``--workdir``. Medians of ``--repeats``.

    python benchmarks/loader.py [--spectra 200000] [--repeats 3]
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


def rate(run) -> float:
    t = time.perf_counter()
    seen = run()
    return seen / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spectra", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/xrfhub-bench-loader"))
    args = ap.parse_args()

    import zarr

    import xrfhub
    from xrfhub.loaders import SpectrumTransform, spectra_stream

    store = args.workdir / f"store-{args.spectra}"
    if not (store / "store.json").exists():
        print(f"building a store of {args.spectra} spectra in {store} ...", flush=True)
        build_store(store, args.spectra)
    group = xrfhub.open(store, index=False).attrs["group"]
    gen, _ = xrfhub.api.resolve(store)
    z = zarr.open_array(f"{gen}/hub.zarr/{group}/counts", mode="r")
    print(f"{z.shape[0]} spectra x {z.shape[1]} channels, chunks {z.chunks}, "
          f"codec {type(z.compressors[0]).__name__}")
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

    streaming = spectra_stream(store, tube_kv=None, transform=transform, batch_size=args.batch, mode="stream")
    memory = spectra_stream(store, tube_kv=None, transform=transform, batch_size=args.batch, mode="memory")
    first_memory = rate(epoch(memory))
    a, b, c = [], [], []
    for r in range(args.repeats):
        a.append(rate(numpy_epoch))
        b.append(rate(epoch(streaming)))
        c.append(rate(epoch(memory)))
        print(f"  run {r + 1}: (a) numpy {a[-1]:8.0f}  (b) stream {b[-1]:8.0f}  (c) memory {c[-1]:8.0f} spectra/s",
              flush=True)
    a, b, c = statistics.median(a), statistics.median(b), statistics.median(c)
    print(f"(a) numpy in memory + transform : {a:9.0f} spectra/s (baseline)")
    print(f"(b) xrfhub loader, streaming    : {b:9.0f} spectra/s  ratio b/a {b / a:.2f}  (goal >= 20,000/s and >= 0.40)")
    print(f"(c) xrfhub loader, in memory    : {c:9.0f} spectra/s  ratio c/a {c / a:.2f}  "
          f"(first epoch, load included: {first_memory:.0f}/s)")


if __name__ == "__main__":
    main()
