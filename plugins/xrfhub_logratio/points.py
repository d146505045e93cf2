"""Per-point intensities of a whole store (element-table rows or spectra), for drift-corrected runs.

The drift correction (:mod:`.drift`) acts on single measurements, before lab samples average
them, so a corrected run reads intensities point by point: the element table's rows, or the net
peak areas of every valid spectrum of one voltage (streamed chunk by chunk, never all counts in
memory). Lab samples are then paired with points by depth as the store pairs them with spectra.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

import xrfhub
from xrfhub.errors import ConfigError

from .drift import STATE_COLUMNS
from .features import DEFAULT_ELEMENTS, PeakAreas, element_lines

_COORDS = ("core", "depth_mm", "valid", "date", *STATE_COLUMNS)


def _frame(ds) -> pd.DataFrame:
    return pd.DataFrame({c: ds[c].values for c in _COORDS if c in ds.coords})


def point_intensities(store, config, source: str, lines=None, *, progress: bool = False):
    """(areas over all rows, NaN where not measured; the rows' coordinates; line names; the group)."""
    if source == "elements":
        el = xrfhub.open(store, "elements", index=False)
        have = list(el["line"].values.astype(str))
        use = list(lines) if lines is not None else element_lines(have, config.elements)
        missing = [x for x in use if x not in have]
        if missing:
            raise ConfigError(f"the store's element table lacks line(s) {', '.join(missing)}")
        areas = el["area"].values[:, [have.index(x) for x in use]].astype(np.float64)
        points = _frame(el)
        if "valid" in points:
            areas[~points["valid"].to_numpy(bool)] = np.nan
        return areas, points, use, "elements"
    from xrfhub.ml.loaders import BatchStream, hub_counts, select_rows

    ds = xrfhub.open(store, "spectra", index=False)
    peaks = PeakAreas(ds["energy"].values, config.elements or DEFAULT_ELEMENTS, config.half_width_kev)
    if lines is not None and list(lines) != peaks.lines:
        raise ConfigError(f"the run was trained on lines {list(lines)}, the config gives {peaks.lines}")
    rows = select_rows(ds, tube_kv=config.tube_kv)
    areas = np.full((ds.sizes["spectrum"], len(peaks.lines)), np.nan)
    stream = BatchStream(hub_counts(store, ds.attrs["group"]), rows, batch_size=config.batch, shuffle=False,
                         mode="stream")
    batches = stream
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(stream, total=len(stream), desc="peak areas", unit="batch")
    for x, _y, got in batches:
        areas[got] = peaks(x)
    return areas, _frame(ds), peaks.lines, ds.attrs["group"]


def paired(store, target, areas, points: pd.DataFrame, *, window_mm: float, cores=None, exclude_cores=None):
    """Mean (corrected) point intensities of the lab samples within ``window_mm`` of their mid-depth."""
    from xrfhub.align import align_samples
    from xrfhub.ml.loaders import select_rows

    samples = xrfhub.open(store, "samples", index=False)
    if target not in samples:
        raise ConfigError(f"the store has no lab property {target!r}")
    rows = select_rows(samples, cores=cores, exclude_cores=exclude_cores, tube_kv=None, valid_only=False)
    y = samples[target].values.astype(np.float64)
    rows = rows[np.isfinite(y[rows])]
    table = pd.DataFrame({c: samples[c].values[rows] for c in ("core", "top_mm", "bottom_mm", "mid_mm")
                          if c in samples.coords or c in samples})
    usable = pd.DataFrame({"core": points["core"].astype(str), "depth_mm": points["depth_mm"].astype(float),
                           "valid": np.isfinite(areas).all(axis=1)})
    alignment = align_samples(usable, table.assign(core=table["core"].astype(str)), method="window",
                              window_mm=window_mm, tube_kv=None)
    keep = [i for i, idx in enumerate(alignment.indices) if len(idx)]
    if not keep:
        raise ConfigError(f"no lab {target} sample lies within {window_mm} mm of a measured point")
    means = np.array([np.mean(areas[alignment.indices[i]], axis=0) for i in keep])
    keep = np.asarray(keep)
    return means, y[rows][keep], samples["core"].values[rows][keep].astype(str)
