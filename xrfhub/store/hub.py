"""The Zarr v3 hub: all cores concatenated along one row dimension per kind.

Written with xarray so that ``xarray.open_zarr`` gives the right dimensions and dask arrays;
core and depth are plain coordinates (a MultiIndex cannot be written) and the core/depth index
is built on open (see ``xrfhub.index``). Every group carries the checksums of its arrays,
computed from the in-memory data at write time, so ``xrfhub validate`` can tell a damaged chunk
from a good one.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from .. import _lazydask
from ..errors import StoreError
from ..records import SpectraBlock
from . import layout

_lazydask.install()

_ZSTD = ZstdCodec(level=3)
#: Row-chunked numeric arrays (counts, mean spectra, diffraction intensities): LZ4 behind a byte
#: shuffle (Blosc). The high bytes of counts are mostly zero, so shuffling first compresses them
#: ~6.8x; zstd would give ~8.2x but decodes slower, and the hub exists to feed models: the
#: streaming loader measured 62k spectra/s with zstd and 91k with LZ4 here (benchmarks/loader.py).
#: The NeXus archive keeps gzip. Stores written with zstd stay readable (the codec is in the metadata).
_ROW_CODEC = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
#: Group attributes that are bookkeeping for ``xrfhub validate``, not shown to readers.
_CHECKSUM_ATTRS = ("checksums", "block_checksums")


def array_sha256(values: np.ndarray) -> str:
    """Digest of an array's values in C order (independent of chunking and compression)."""
    values = np.ascontiguousarray(values)
    if values.dtype.kind in "OUT":
        return hashlib.sha256("\x1f".join(map(str, values.ravel().tolist())).encode()).hexdigest()
    return hashlib.sha256(values.view(np.uint8).ravel()).hexdigest()


def _block_rows(name: str, chunked: dict[str, tuple]) -> int:
    """Rows per checksum block of a variable: its chunk rows when chunked, else the spectra chunk size."""
    return int(chunked[name][0]) if name in chunked else layout.SPECTRA_CHUNK_ROWS


def block_digest(values: np.ndarray) -> str:
    """Short digest of one block of rows (64 bits: enough to detect damage, small in the attributes)."""
    return array_sha256(values)[:16]


def digest_of_blocks(digests: list[str]) -> str:
    """The whole-array checksum of an array kept in blocks: a digest of its block digests.

    An append then computes digests for its new blocks only (``store.rows``); the blocks still
    say where damage is, and this one value still says whether any is.
    """
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def block_checksums_of(variables, chunked: dict[str, tuple]) -> dict[str, dict]:
    """Block digests of ``variables`` (name -> xarray Variable), as a group write records them."""
    return _block_checksums(xr.Dataset(dict(variables)), chunked)


def _block_checksums(ds: xr.Dataset, chunked: dict[str, tuple]) -> dict[str, dict]:
    """Digests of consecutive row blocks of every array longer than one block.

    One digest per array says *that* an array is damaged; one per block of rows says *where*,
    so ``xrfhub validate`` can name the cores whose rows sit in a damaged chunk.
    """
    out = {}
    for name, var in ds.variables.items():
        rows = _block_rows(name, chunked)
        if var.ndim >= 1 and var.shape[0] > rows:
            values = np.asarray(var.values)
            out[name] = {"rows": rows, "digests": [block_digest(values[i:i + rows])
                                                   for i in range(0, len(values), rows)]}
    return out


def _to_zarr(ds: xr.Dataset, hub_path, group: str, chunked: dict[str, tuple]) -> None:
    encoding = {}
    for name, var in ds.variables.items():
        enc = {"compressors": [_ZSTD]}
        if name in chunked:
            enc["chunks"] = chunked[name]
            if var.dtype.kind in "uif":
                enc["compressors"] = [_ROW_CODEC]
        if var.dtype == object:
            enc.pop("compressors")
        encoding[name] = enc
    blocks = _block_checksums(ds, chunked)
    ds.attrs["checksums"] = json.dumps({name: digest_of_blocks(blocks[name]["digests"]) if name in blocks
                                        else array_sha256(np.asarray(var.values))
                                        for name, var in ds.variables.items()}, sort_keys=True)
    ds.attrs["block_checksums"] = json.dumps(blocks, sort_keys=True)
    ds.to_zarr(hub_path, group=group, mode="w", zarr_format=3, consolidated=False, encoding=encoding)


def spectra_dataset(block: SpectraBlock, nominal_gain: float, nominal_offset: float) -> xr.Dataset:
    """The ``spectra`` kind for one channel count, from a concatenated block."""
    n, n_ch = block.counts.shape
    coords = {}
    for name, (dtype, units, long_name) in layout.SPECTRUM_COORDS.items():
        values = block.coords[name].to_numpy()
        values = values.astype(object) if dtype == "str" else values.astype(dtype)
        attrs = {"long_name": long_name}
        if units:
            attrs["units"] = units
        coords[name] = ((layout.SPECTRUM,), values, attrs)
    # the scale(s) of depth_mm said on the variable itself, so a reader of the hub alone sees
    # when depths are section-relative (two sections of one core then share depths)
    coords["depth_mm"][2]["depth_scale"] = ", ".join(sorted({str(v) for v in block.coords["depth_scale"]}))
    coords["channel"] = ((layout.CHANNEL,), np.arange(n_ch, dtype=np.int32), {"long_name": "detector channel"})
    coords["energy"] = ((layout.CHANNEL,), nominal_offset + nominal_gain * np.arange(n_ch),
                        {"units": "keV", "long_name": "nominal energy (per-spectrum calibration in "
                                                       "energy_gain_kev, energy_offset_kev)"})
    counts = xr.Variable((layout.SPECTRUM, layout.CHANNEL), block.counts,
                         {"units": "counts", "long_name": "X-ray fluorescence counts"})
    return xr.Dataset({"counts": counts}, coords=coords,
                      attrs={"kind": "spectra", "n_channels": n_ch})


def nominal_calibration(coords: pd.DataFrame) -> tuple[float, float]:
    """The group's nominal energy scale: the median over its first chunk of rows.

    Only the first chunk, so that appending rows never changes it (the per-spectrum
    calibration is in ``energy_gain_kev`` / ``energy_offset_kev``).
    """
    head = coords.iloc[:layout.SPECTRA_CHUNK_ROWS]
    return (float(np.median(head["energy_gain_kev"].to_numpy(dtype=float))),
            float(np.median(head["energy_offset_kev"].to_numpy(dtype=float))))


def write_spectra(hub_path, block: SpectraBlock) -> xr.Dataset:
    ds = spectra_dataset(block, *nominal_calibration(block.coords))
    rows = max(1, min(layout.SPECTRA_CHUNK_ROWS, len(block)))
    chunked = {name: (layout.COORD_CHUNK_ROWS,) for name in layout.SPECTRUM_COORDS}
    _to_zarr(ds, hub_path, layout.spectra_group(block.n_channels), {**chunked, "counts": (rows, block.n_channels)})
    return ds


def write_table(hub_path, group: str, ds: xr.Dataset, chunked: dict[str, tuple] | None = None) -> None:
    """Write any kind's dataset (samples, elements, predictions, diffraction, sources)."""
    _to_zarr(ds, hub_path, group, chunked or {})


def sources_dataset(sources: dict[str, dict]) -> xr.Dataset:
    names = sorted(sources)
    cols = {"sha256": [], "format": [], "kind": [], "size": [], "ingested": []}
    for name in names:
        info = sources[name]
        for col in cols:
            cols[col].append(info.get(col, ""))
    data = {col: (("source",), np.array(vals, dtype=np.int64 if col == "size" else object))
            for col, vals in cols.items()}
    return xr.Dataset(data, coords={"name": (("source",), np.array(names, dtype=object))},
                      attrs={"kind": "sources"})


def finalize(hub_path, cores=None) -> None:
    """Last step of writing a hub: identifiers, then Zarr v3 consolidated metadata.

    The root gets ``core_uuids`` (core id -> its stable UUID, as in the NeXus files) and every
    prediction group its ``run_uuid``. Consolidating the metadata of the whole tree into the
    root's ``zarr.json`` lets plain ``xr.open_zarr(hub, group=...)`` open any group without
    the "no consolidated metadata" warning, in one read instead of one per array; it must come
    after every other write of the generation, since later writes would not be in it.
    """
    import warnings

    from .. import identifiers

    root = zarr.open_group(hub_path, mode="r+", zarr_format=3, use_consolidated=False)
    if cores is not None:  # None: a run was added, the cores are the parent's
        root.attrs["core_uuids"] = json.dumps({c: identifiers.core_uuid(c) for c in sorted(cores)})
    root.attrs.update({"description": "xrfhub hub: one group per kind (spectra/ch<N>, samples, elements, "
                                      "predictions/<run>, diffraction/<grid>, sources); open one with "
                                      "xr.open_zarr(hub, group=...) or all with xr.open_datatree(hub, engine='zarr')"})
    if "predictions" in root:
        for name in root["predictions"].group_keys():
            g = root["predictions"][name]
            if "run_uuid" not in g.attrs:  # set once, when the run's group is written
                g.attrs["run_uuid"] = identifiers.run_uuid(str(g.attrs.get("run", name)))
    with warnings.catch_warnings():  # zarr says consolidation is not in the v3 spec yet; we know
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(hub_path, zarr_format=3)


# ---------------------------------------------------------------------------- reading


def groups(hub, kinds=layout.KINDS) -> dict[str, list[str]]:
    """Kinds present in a hub and their groups, e.g. ``{"spectra": ["spectra/ch2048"]}``.

    ``kinds``: the kind names to look for (``xrfhub.kinds.names()`` adds registered ones).
    """
    try:
        root = zarr.open_group(hub, mode="r")
    except FileNotFoundError:
        raise StoreError(f"{hub}: the Zarr hub is missing; run `xrfhub rebuild`") from None
    found: dict[str, list[str]] = {}
    for kind in kinds:
        if kind not in root:
            continue
        node = root[kind]
        if "kind" in node.attrs:  # a single-group kind (samples, elements)
            found[kind] = [kind]
        else:
            subs = sorted(f"{kind}/{name}" for name in node.group_keys())
            if subs:
                found[kind] = subs
    return found


#: groups with at most this many rows load every coordinate (cheap, and simplest for small stores)
LAZY_STRINGS_FROM = 65_536
#: coordinates of large groups loaded when a group opens: what the core/depth(/voltage) index
#: and the usual row selections need; every other coordinate (scan, section, file name, header,
#: calibration, times, ...) stays lazy (dask) until asked for: decoding a million strings costs
#: about a second per coordinate, and ``open`` must not read what nobody asked for
EAGER = frozenset({"core", "depth_mm", "tube_kv", "valid", "line", "phase", "two_theta", "energy", "channel"})


def open_group(hub, group: str, *, chunks="auto") -> xr.Dataset:
    """Open one group lazily; 1-D coordinates are loaded, on large groups only those in ``EAGER``."""
    ds = xr.open_zarr(hub, group=group, consolidated=False, chunks={} if chunks == "auto" else chunks,
                      zarr_format=3)
    ds = ds.drop_attrs(deep=False).assign_attrs({k: v for k, v in ds.attrs.items() if k not in _CHECKSUM_ATTRS})
    loaded = {}
    group_arrays = None
    for name, var in ds.coords.items():
        if var.ndim != 1:
            continue
        data = var.variable._data  # never ``.data``/``.values`` here: those would read the array
        if name not in EAGER and var.size > LAZY_STRINGS_FROM:
            lazy = var.variable if hasattr(data, "dask") else var.variable.chunk()
            if var.dtype.kind in "TUSO":  # numpy's StringDType as object strings, when read
                lazy = lazy.copy(data=lazy.data.map_blocks(lambda b: b.astype(object), dtype=object))
            loaded[name] = lazy
            continue
        if hasattr(data, "dask"):  # read straight from zarr: one decode, no task graph
            if group_arrays is None:
                group_arrays = zarr.open_group(hub, path=group, mode="r", zarr_format=3)
            values = np.asarray(group_arrays[name][:])
            var = var.variable.copy(data=values.astype(object) if values.dtype.kind == "T" else values)
        else:
            var = var.variable.load()
            if var.dtype.kind == "T":  # numpy's StringDType: object strings work everywhere downstream
                var = var.astype(object)
        loaded[name] = var
    if loaded:
        ds = ds.assign_coords(loaded)
    for name, var in ds.data_vars.items():
        if var.dtype.kind == "T":
            ds[name] = var.load().astype(object)
    return ds


def stored_checksums(hub, group: str) -> dict[str, str]:
    attrs = zarr.open_group(hub, path=group, mode="r").attrs
    return json.loads(attrs.get("checksums", "{}"))


def stored_block_checksums(hub, group: str) -> dict[str, dict]:
    """Per-array ``{"rows": R, "digests": [...]}`` for arrays longer than one block ({} for old hubs)."""
    attrs = zarr.open_group(hub, path=group, mode="r").attrs
    return json.loads(attrs.get("block_checksums", "{}"))

