"""Keep xarray from importing dask just to learn that an array is not a dask array.

xarray asks "is this a dask array?" of every array it wraps (``array_type("dask")``,
``is_dask_collection``) and answers by importing ``dask.array`` (0.6-1.2 s of every ingest on
the project's machine, a third of a one-file ingest) whenever dask is installed. No object can
be a dask array or collection while dask was never imported, so until it is, the answer is
"no" without the import; once anything imports dask (``xrfhub.open`` with chunks, a cluster),
xarray's own answer is used again. Installed by :mod:`xrfhub.store.hub` (the write path);
a no-op if xarray's internals are not the ones this was written against.
"""
from __future__ import annotations

import sys


def install() -> None:
    try:
        from xarray.namedarray import pycompat, utils
    except ImportError:  # pragma: no cover - another xarray layout: leave it alone
        return
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    if isinstance(cache, dict) and "dask" not in cache and hasattr(pycompat, "DuckArrayModule"):
        cache["dask"] = _DaskWhenImported(pycompat, cache)
    original = getattr(utils, "is_dask_collection", None)
    if original is not None and not getattr(original, "_xrfhub_lazy", False):
        def is_dask_collection(x):
            # a dask collection is an instance of a class defined in dask: none exists before
            # dask is imported
            return "dask" in sys.modules and original(x)

        is_dask_collection._xrfhub_lazy = True
        utils.is_dask_collection = is_dask_collection


class _DaskWhenImported:
    """Stands in for xarray's cached ``DuckArrayModule("dask")`` until dask.array is imported."""

    def __init__(self, pycompat, cache):
        self._pycompat, self._cache = pycompat, cache

    def _real(self):
        real = self._pycompat.DuckArrayModule("dask")
        self._cache["dask"] = real  # from now on xarray asks the real one
        return real

    @property
    def type(self):
        # the only attribute array_type() reads: the classes an array must be an instance of
        return self._real().type if "dask.array" in sys.modules else ()

    def __getattr__(self, name):  # module, version, available: xarray's own answers
        return getattr(self._real(), name)
