"""Label selection by core and depth on the hub's row dimension: a custom xarray Index.

Every kind in the hub has one row dimension (``spectrum``, ``sample``, ``point``, ``pattern``)
carrying plain coordinates ``core`` (str) and ``depth_mm`` (float). They are stored plain
because a pandas MultiIndex cannot be written to Zarr, and a MultiIndex would not serve anyway:
rows are not unique on (core, depth) (10 and 30 kV runs, replicates, overlapping scans) and not
sorted. :class:`CoreDepthIndex` is built on open and lets users write::

    ds.sel(core="PS75-056-1", depth_mm=slice(100, 500))   # inclusive depth range in one core
    ds.sel(core=["A", "B"])                                # several cores
    ds.sel(depth_mm=slice(100, 500))                       # a depth range across all cores
    ds.sel(core="A", depth_mm=1015.0)                      # every row at exactly that depth
    ds.sel(core="A", depth_mm=1013.0, method="nearest")    # every row at the nearest depth
    ds.sel(core="A", tube_kv=10)                           # one core's 10 kV spectra
    ds.sel(core="A", tube_kv=30, depth_mm=1013.0, method="nearest")  # nearest 30 kV spectrum

Semantics, chosen so that a selection is always a *set of rows*:

- the row dimension is always kept (several rows may share a label) and rows come back in
  store order, never re-sorted by depth;
- ``core`` takes one name or a list of names; unknown names raise :class:`NotInIndexError`
  (a ``KeyError``) naming them and a few known cores;
- ``depth_mm`` takes a slice (inclusive at both ends; ``start > stop`` selects nothing, as a
  pandas slice on a sorted index does), a number or a list of numbers. Numbers match exactly
  unless ``method`` is given: ``"nearest"``, ``"pad"``/``"ffill"`` (deepest depth at or above
  the label) or ``"backfill"``/``"bfill"`` (shallowest at or below). Methods resolve *per core*:
  each selected core (all cores when none is named) contributes all its rows at its own best
  depth; ``tolerance`` drops cores whose best depth is too far. A number that matches no row
  raises :class:`NotInIndexError`. ``method`` never applies to ``core``.
- rows whose depth is NaN are reachable by core only.
- ``tube_kv`` (when the rows carry it: spectra measured at 10, 30, 50 kV share core and depth)
  takes one voltage or a list; other voltages are never mixed in. It filters *before* the depth
  rules apply, so ``method="nearest"`` finds the nearest depth measured at that voltage. A core
  without spectra at the voltage contributes no rows; a voltage the dataset lacks raises
  :class:`NotInIndexError` listing the voltages present.

Cost: the per-core depth order is computed once per index (``np.lexsort``, O(n log n), lazily on
the first ``sel``); a query then costs O(log n) per selected core plus the size of its result.
The coordinates are held in memory as numpy (they are small); data variables are never touched,
so dask-backed counts stay lazy.
"""
from __future__ import annotations

import difflib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import xarray as xr
from xarray import Index, IndexSelResult, Variable

from xrfhub.errors import ConfigError, NotInIndexError
from xrfhub.rowsets import best_depths, compact, factorize, frozen, sorted_union

__all__ = ["CoreDepthIndex", "NotInIndexError", "drop_core_depth_index",
           "with_core_depth_index"]

T_Xarray = TypeVar("T_Xarray", xr.Dataset, xr.DataArray)

_STRING_KINDS = "OUST"
_NUMBER_KINDS = "fiu"
_METHODS = {"nearest": "nearest", "pad": "pad", "ffill": "pad",
            "backfill": "backfill", "bfill": "backfill"}
_SHOWN_CORES = 5


class _Lookup:
    """Per-core orderings of one index's rows, built once and reused by every query.

    ``by_core`` lists row positions grouped by core in store order; ``by_depth`` the same
    groups sorted by depth (ties in store order, NaN last). ``bounds[c]:bounds[c+1]`` is core
    ``c``'s slice of both, and ``valid[c]`` the number of its non-NaN depths.
    """

    def __init__(self, core: np.ndarray, depth: np.ndarray):
        codes, names = factorize(core)
        self.codes: dict[Any, int] = {name: i for i, name in enumerate(names)}
        self.names: list = list(names)
        counts = np.bincount(codes, minlength=len(names))
        self.bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
        self.by_core = np.argsort(codes, kind="stable").astype(np.intp)
        # Order by depth (NaN last), then stably by core. The order among equal depths does
        # not matter: every query sorts its rows back into store order.
        by_depth = np.argsort(depth)
        self.by_depth = by_depth[np.argsort(codes[by_depth], kind="stable")].astype(np.intp)
        self.depth = depth[self.by_depth]
        nan_count = np.bincount(codes[np.isnan(depth)], minlength=len(names))
        self.valid = counts - nan_count

    def segment(self, code: int) -> tuple[int, np.ndarray]:
        """Start of core ``code`` in the sorted arrays and its non-NaN sorted depths."""
        start = int(self.bounds[code])
        return start, self.depth[start:start + int(self.valid[code])]


class CoreDepthIndex(Index):
    """An xarray index over the (core, depth) coordinates of one row dimension.

    Build it with :func:`with_core_depth_index` (or ``ds.set_xindex(["core", "depth_mm"],
    CoreDepthIndex)``); see the module docstring for the selection rules.
    """

    def __init__(self, core: np.ndarray, depth: np.ndarray, dim: Hashable,
                 core_name: Hashable = "core", depth_name: Hashable = "depth_mm",
                 kv: np.ndarray | None = None, kv_name: Hashable | None = None):
        self.core = frozen(core)
        self.depth = frozen(depth)
        self.dim = dim
        self.core_name = core_name
        self.depth_name = depth_name
        # the tube voltage, optional: rows of one core and depth differ by it (10/30/50 kV)
        self.kv = None if kv is None else frozen(kv)
        self.kv_name = kv_name if kv is not None else None
        self._lookup: _Lookup | None = None
        self._by_kv: dict[tuple, tuple[np.ndarray, CoreDepthIndex]] = {}

    @property
    def names(self) -> list[Hashable]:
        """The coordinates this index covers (core, depth and, when present, voltage)."""
        return [self.core_name, self.depth_name] + ([self.kv_name] if self.kv is not None else [])

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_variables(cls, variables: Mapping[Any, Variable], *,
                       options: Mapping[str, Any]) -> CoreDepthIndex:
        """Build from the two 1-D coordinates; which is which comes from ``options``
        (``core=``, ``depth=`` names) or else from their dtypes (text vs number)."""
        kv_name = options.get("kv")
        if len(variables) != (2 if kv_name is None else 3):
            raise ConfigError(f"CoreDepthIndex needs two coordinates (core, depth), or three "
                              f"with kv= naming the voltage, got {list(variables)}")
        core_name = options.get("core")
        depth_name = options.get("depth")
        if core_name is None or depth_name is None:
            core_name, depth_name = _guess_roles({k: v for k, v in variables.items() if k != kv_name})
        for name in (core_name, depth_name):
            if name not in variables:
                raise ConfigError(f"CoreDepthIndex: coordinate {name!r} is not among "
                                  f"{list(variables)}")
        core_var, depth_var = variables[core_name], variables[depth_name]
        if core_var.ndim != 1 or core_var.dims != depth_var.dims:
            raise ConfigError(
                f"CoreDepthIndex: {core_name!r} {core_var.dims} and {depth_name!r} "
                f"{depth_var.dims} must be 1-D over the same row dimension")
        depth = np.asarray(depth_var.values)
        if depth.dtype.kind not in _NUMBER_KINDS:
            raise ConfigError(f"CoreDepthIndex: depth coordinate {depth_name!r} must be "
                              f"numeric, got dtype {depth.dtype}")
        kv = None
        if kv_name is not None:
            if kv_name not in variables or variables[kv_name].dims != core_var.dims:
                raise ConfigError(f"CoreDepthIndex: voltage coordinate {kv_name!r} must be 1-D over "
                                  f"{core_var.dims}")
            kv = np.asarray(variables[kv_name].values)
            if kv.dtype.kind not in _NUMBER_KINDS:
                raise ConfigError(f"CoreDepthIndex: voltage coordinate {kv_name!r} must be numeric (kV), "
                                  f"got dtype {kv.dtype}")
        return cls(np.asarray(core_var.values), depth, core_var.dims[0], core_name, depth_name,
                   kv, kv_name)

    def _replace(self, core: np.ndarray, depth: np.ndarray,
                 kv: np.ndarray | None = None) -> CoreDepthIndex:
        return type(self)(core, depth, self.dim, self.core_name, self.depth_name, kv, self.kv_name)

    def _take(self, indexer) -> CoreDepthIndex:
        return self._replace(self.core[indexer], self.depth[indexer],
                             None if self.kv is None else self.kv[indexer])

    def create_variables(self, variables: Mapping[Any, Variable] | None = None
                         ) -> dict[Hashable, Variable]:
        """The (subset) coordinates, keeping the attributes and encoding of ``variables``.

        xarray calls this after ``isel``/``sel`` so the coordinates follow the data.
        """
        variables = variables or {}
        out = {}
        pairs = [(self.core_name, self.core), (self.depth_name, self.depth)]
        if self.kv is not None:
            pairs.append((self.kv_name, self.kv))
        for name, values in pairs:
            old = variables.get(name)
            attrs = dict(old.attrs) if old is not None else None
            encoding = dict(old.encoding) if old is not None else None
            out[name] = Variable((self.dim,), values, attrs=attrs, encoding=encoding)
        return out

    # -- positional ----------------------------------------------------------------------

    def isel(self, indexers: Mapping[Any, Any]) -> CoreDepthIndex | None:
        """Subset by position; a scalar or a new dimension drops the index (as PandasIndex)."""
        indexer = indexers[self.dim]
        if isinstance(indexer, Variable):
            if indexer.dims != (self.dim,):
                return None
            indexer = indexer.values
        if isinstance(indexer, slice):
            if indexer == slice(None):
                return self
        elif np.ndim(indexer) == 0:
            return None
        else:
            indexer = np.asarray(indexer)
        return self._take(indexer)

    def roll(self, shifts: Mapping[Any, int]) -> CoreDepthIndex:
        shift = shifts[self.dim] % max(len(self.core), 1)
        return self._take(np.roll(np.arange(len(self.core)), shift))

    @classmethod
    def concat(cls, indexes: Sequence[CoreDepthIndex], dim: Hashable,
               positions: Iterable[Iterable[int]] | None = None) -> CoreDepthIndex:
        """Concatenate along the row dimension (``xr.concat`` of several cores' datasets)."""
        first = indexes[0]
        if any(i.names != first.names for i in indexes):
            raise ConfigError("cannot concatenate CoreDepthIndexes over different coordinate "
                              "names; rename the coordinates first")
        core = np.concatenate([i.core for i in indexes])
        depth = np.concatenate([i.depth for i in indexes])
        kv = None if first.kv is None else np.concatenate([i.kv for i in indexes])
        if positions is not None:
            order = np.argsort(np.concatenate([np.asarray(p) for p in positions]))
            core, depth = core[order], depth[order]
            kv = None if kv is None else kv[order]
        return cls(core, depth, dim, first.core_name, first.depth_name, kv, first.kv_name)

    def rename(self, name_dict: Mapping[Any, Hashable],
               dims_dict: Mapping[Any, Hashable]) -> CoreDepthIndex:
        names = [name_dict.get(n, n) for n in self.names]
        dim = dims_dict.get(self.dim, self.dim)
        if names == self.names and dim == self.dim:
            return self
        kv_name = names[2] if self.kv is not None else None
        return type(self)(self.core, self.depth, dim, names[0], names[1], self.kv, kv_name)

    def equals(self, other: Index, *, exclude: frozenset[Hashable] | None = None) -> bool:
        if not isinstance(other, CoreDepthIndex):
            return False
        return (self.dim == other.dim
                and self.names == other.names
                and np.array_equal(self.core, other.core)
                and np.array_equal(self.depth, other.depth, equal_nan=True)
                and (self.kv is None or np.array_equal(self.kv, other.kv, equal_nan=True)))

    def join(self, other: Index, how: str = "inner") -> Index:
        raise NotImplementedError(
            f"rows are not unique on ({self.core_name}, {self.depth_name}), so datasets with "
            f"different {self.dim!r} rows cannot be aligned by label; select the same rows in "
            "both, or drop the index with xrfhub.index.drop_core_depth_index")

    # -- label selection ----------------------------------------------------------------

    @property
    def lookup(self) -> _Lookup:
        if self._lookup is None:
            self._lookup = _Lookup(self.core, self.depth.astype(np.float64))
        return self._lookup

    def sel(self, labels: dict[Any, Any], method: str | None = None,
            tolerance: float | None = None) -> IndexSelResult:
        """Row positions (store order) matching ``core``, ``depth_mm`` and ``tube_kv`` labels."""
        if method is not None and method not in _METHODS:
            raise ConfigError(f"method={method!r} is not supported for {self.depth_name!r}; "
                              f"use one of {sorted(_METHODS)} or None for exact depths")
        if self.kv is not None and self.kv_name in labels:
            return self._sel_at_voltage(labels, method, tolerance)
        codes = self._core_codes(labels.get(self.core_name))
        if len(codes) == 0:
            rows = np.empty(0, dtype=np.intp)
        elif self.depth_name in labels:
            rows = self._depth_rows(codes, labels[self.depth_name], method, tolerance)
        else:
            rows = self._core_rows(codes)
        return IndexSelResult({self.dim: compact(rows)})

    def _sel_at_voltage(self, labels: dict[Any, Any], method: str | None,
                        tolerance: float | None) -> IndexSelResult:
        """Select among the rows of the asked voltage(s) only, so that depth rules (nearest,
        pad, ...) never pick a row of another voltage."""
        volts = self._kv_values(labels[self.kv_name])
        rows, sub = self._voltage_subset(volts)
        rest = {k: v for k, v in labels.items() if k != self.kv_name}
        if self.core_name in rest:
            self._core_codes(rest[self.core_name])  # unknown cores fail against the whole dataset
            present = [n for n in _flat_labels(rest[self.core_name], self.core_name)
                       if n in sub.lookup.codes]
            if not present:
                return IndexSelResult({self.dim: slice(0, 0)})
            rest[self.core_name] = present
        found = sub.sel(rest, method=method, tolerance=tolerance).dim_indexers[self.dim]
        return IndexSelResult({self.dim: compact(rows[np.arange(len(rows))[found]])})

    def _kv_values(self, label: Any) -> np.ndarray:
        if isinstance(label, slice):
            raise ConfigError(f"{self.kv_name!r} takes a voltage or a list of voltages (kV), not a "
                              f"slice ({label!r})")
        raw = np.atleast_1d(np.asarray(getattr(label, "values", label)))
        if raw.ndim != 1 or raw.dtype.kind not in _NUMBER_KINDS:
            raise ConfigError(f"{self.kv_name} takes a number or a list of numbers (kV), got {label!r}")
        return raw.astype(np.float64)

    def _voltage_subset(self, volts: np.ndarray) -> tuple[np.ndarray, CoreDepthIndex]:
        """Rows measured at ``volts`` and an index over them alone (cached per voltage set)."""
        key = tuple(sorted(set(volts.tolist())))
        if key not in self._by_kv:
            kv = self.kv.astype(np.float64)
            present = np.unique(kv[np.isfinite(kv)])
            missing = [v for v in key if not np.isclose(present, v).any()]
            if missing:
                raise NotInIndexError(
                    f"{self.kv_name} {', '.join(f'{v:g}' for v in missing)} not in this dataset; "
                    f"voltages: {', '.join(f'{v:g}' for v in present) or 'none'}")
            rows = np.flatnonzero(np.isclose(kv[:, None], np.array(key)[None, :]).any(axis=1))
            sub = CoreDepthIndex(self.core[rows], self.depth[rows], self.dim, self.core_name,
                                 self.depth_name)
            self._by_kv[key] = (rows.astype(np.intp), sub)
        return self._by_kv[key]

    def _core_codes(self, label: Any) -> np.ndarray:
        """Codes of the requested cores (all of them when no core is asked for)."""
        lookup = self.lookup
        if label is None:
            return np.arange(len(lookup.names))
        if isinstance(label, slice):
            raise ConfigError(f"{self.core_name!r} takes a core name or a list of names, "
                              f"not a slice ({label!r})")
        names = _flat_labels(label, self.core_name)
        missing = [n for n in names if n not in lookup.codes]
        if missing:
            raise NotInIndexError(self._unknown_core_message(missing))
        return np.array([lookup.codes[n] for n in names], dtype=np.intp)

    def _unknown_core_message(self, missing: list) -> str:
        known = self.lookup.names
        shown = ", ".join(repr(n) for n in known[:_SHOWN_CORES])
        more = f", ... ({len(known)} in all)" if len(known) > _SHOWN_CORES else ""
        message = (f"{self.core_name} {', '.join(map(repr, missing))} not in this dataset; "
                   f"known: {shown or 'none'}{more}")
        close = difflib.get_close_matches(str(missing[0]), [str(n) for n in known], n=3)
        if close:
            message += f". Did you mean {', '.join(map(repr, close))}?"
        return message

    def _core_rows(self, codes: np.ndarray) -> np.ndarray:
        lookup = self.lookup
        pieces = [lookup.by_core[lookup.bounds[c]:lookup.bounds[c + 1]] for c in codes]
        return sorted_union(pieces, already_sorted=len(codes) == 1)

    def _depth_rows(self, codes: np.ndarray, label: Any, method: str | None,
                    tolerance: float | None) -> np.ndarray:
        lookup = self.lookup
        if isinstance(label, slice):
            if method is not None:
                raise ConfigError(f"method={method!r} cannot be used with a {self.depth_name} "
                                  "slice; a slice already selects a range")
            low, high = self._slice_bounds(label)
            searches = [(low, "left"), (high, "right")]
            pieces = []
            for code in codes:
                start, depths = lookup.segment(code)
                lo, hi = (np.searchsorted(depths, v, side) for v, side in searches)
                pieces.append(lookup.by_depth[start + lo:start + max(lo, hi)])
            return sorted_union(pieces)
        values = self._depth_values(label)
        pieces = []
        found = np.zeros(len(values), dtype=bool)
        for code in codes:
            start, depths = lookup.segment(code)
            targets = values if method is None else best_depths(
                depths, values, _METHODS[method], tolerance)
            lo = np.searchsorted(depths, targets, "left")
            hi = np.searchsorted(depths, targets, "right")
            found |= hi > lo
            pieces.extend(lookup.by_depth[start + a:start + b] for a, b in zip(lo, hi) if b > a)
        if not found.all():
            self._raise_depth_missing(values[~found], codes, method)
        return sorted_union(pieces)

    def _slice_bounds(self, label: slice) -> tuple[float, float]:
        if label.step is not None:
            raise ConfigError(f"{self.depth_name} slices take no step, got {label!r}")
        bounds = [-np.inf if label.start is None else label.start,
                  np.inf if label.stop is None else label.stop]
        try:
            low, high = self._in_stored_precision(np.array(bounds, dtype=np.float64))
        except (TypeError, ValueError):
            raise ConfigError(f"{self.depth_name} slice bounds must be numbers (mm), got "
                              f"{label!r}") from None
        return float(low), float(high)

    def _depth_values(self, label: Any) -> np.ndarray:
        raw = np.atleast_1d(np.asarray(getattr(label, "values", label)))
        if raw.ndim != 1 or raw.dtype.kind not in _NUMBER_KINDS:
            raise ConfigError(f"{self.depth_name} takes a number, a list of numbers or a slice "
                              f"(mm), got {label!r}")
        return self._in_stored_precision(raw)

    def _in_stored_precision(self, values: np.ndarray) -> np.ndarray:
        """Labels rounded as the depths were stored, as float64.

        A user's 1015.1 must equal (and bound) a float32 1015.1 stored in the hub.
        """
        if self.depth.dtype.kind == "f":
            values = values.astype(self.depth.dtype)
        return values.astype(np.float64)

    def _raise_depth_missing(self, values: np.ndarray, codes: np.ndarray,
                             method: str | None) -> None:
        cores = [self.lookup.names[c] for c in codes[:_SHOWN_CORES]]
        where = (f"core {cores[0]!r}" if len(codes) == 1
                 else f"{len(codes)} cores ({', '.join(map(repr, cores))}"
                      f"{', ...' if len(codes) > len(cores) else ''})")
        shown = ", ".join(f"{v:g}" for v in values[:_SHOWN_CORES])
        hint = ("; try method='nearest'" if method is None
                else "; widen the tolerance")
        raise NotInIndexError(f"{self.depth_name} {shown} not found in {where}{hint}")

    def __repr__(self) -> str:
        return (f"<CoreDepthIndex {self.dim!r}: {len(self.core)} rows over "
                f"({', '.join(map(repr, self.names))})>")

    def _repr_inline_(self, max_width: int) -> str:
        n = len(self.lookup.names)
        return f"CoreDepthIndex ({n} core{'' if n == 1 else 's'})"


def with_core_depth_index(ds: T_Xarray, dim: str | None = None, core: str = "core",
                          depth: str = "depth_mm", kv: str | None = "tube_kv") -> T_Xarray:
    """Return ``ds`` with a :class:`CoreDepthIndex` over its ``core`` and ``depth`` coordinates
    and, when ``ds`` has a ``kv`` coordinate (``tube_kv``) on the same rows, its voltage.

    ``dim`` (the row dimension) is inferred from the coordinates when not given. Variables
    of those names that are data variables are promoted to coordinates; an index already on
    them (a default PandasIndex, an older CoreDepthIndex) is replaced.
    """
    names = [core, depth]
    present = set(ds.coords) | (set(ds.data_vars) if isinstance(ds, xr.Dataset) else set())
    absent = [n for n in names if n not in present]
    if absent:
        raise ConfigError(f"cannot index by core and depth: no variable {absent} in the "
                          f"dataset (it has {sorted(map(str, ds.coords))}); pass core= / "
                          "depth= with the names it uses")
    if isinstance(ds, xr.Dataset):
        ds = ds.set_coords([n for n in names if n not in ds.coords])
    dims = {n: ds.coords[n].dims for n in names}
    if any(len(d) != 1 for d in dims.values()) or dims[core] != dims[depth]:
        raise ConfigError(f"{core!r} and {depth!r} must be 1-D over the same row dimension, "
                          f"got {dims}")
    if dim is not None and dims[core] != (dim,):
        raise ConfigError(f"{core!r} runs over {dims[core][0]!r}, not over dim={dim!r}")
    if dims[core][0] in names:
        raise ConfigError(f"the row dimension {dims[core][0]!r} cannot share a name with "
                          "an indexed coordinate; rename it first")
    options = {"core": core, "depth": depth}
    if kv is not None and kv in ds.coords and ds.coords[kv].dims == dims[core] \
            and ds.coords[kv].dtype.kind in _NUMBER_KINDS:
        names.append(kv)
        options["kv"] = kv
    indexed = [n for n in names if n in ds.xindexes]
    if indexed:
        ds = ds.drop_indexes(indexed)
    return ds.set_xindex(names, CoreDepthIndex, **options)


def drop_core_depth_index(ds: T_Xarray) -> T_Xarray:
    """Return ``ds`` with every :class:`CoreDepthIndex` dropped, its coordinates kept plain.

    Needed before ``to_dataframe()``: xarray leaves indexed coordinates out of the columns,
    expecting them in the row index, so ``core`` and ``depth_mm`` would silently vanish.
    Writing (``to_netcdf``, ``to_zarr``) works with or without the index.
    """
    names = [n for n, index in ds.xindexes.items() if isinstance(index, CoreDepthIndex)]
    return ds.drop_indexes(names) if names else ds


# -- helpers ---------------------------------------------------------------------------------


def _guess_roles(variables: Mapping[Any, Variable]) -> tuple[Hashable, Hashable]:
    kinds = {name: np.dtype(var.dtype).kind for name, var in variables.items()}
    text = [n for n, k in kinds.items() if k in _STRING_KINDS]
    numbers = [n for n, k in kinds.items() if k in _NUMBER_KINDS]
    if len(text) != 1 or len(numbers) != 1:
        raise ConfigError(f"CoreDepthIndex cannot tell core from depth among {kinds}; "
                          "pass core= and depth= options")
    return text[0], numbers[0]


def _flat_labels(label: Any, name: Hashable) -> list:
    values = np.asarray(getattr(label, "values", label), dtype=object)
    if values.ndim > 1:
        raise ConfigError(f"{name!r} takes a name or a 1-D list of names, got shape "
                          f"{values.shape}")
    return list(values.ravel())
