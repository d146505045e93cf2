"""Keep xarray from importing dask and pint just to learn that an array is neither.

xarray asks "is this a dask array? a pint quantity? a sparse or cupy array?" of the arrays it
wraps (``array_type(name)``, ``is_dask_collection``) and answers by importing that package
whenever it is installed: ``dask.array`` and ``pint`` cost 0.6-1.2 s each on the project's
machine, as much as the rest of a one-file ingest. No object can be an instance of a class of a
package that was never imported, so until it is, the answer is "no" without the import; once
anything imports it (``xrfhub.open`` with chunks, a cluster, a user's pint), xarray's own
answer is used again. Installed by :mod:`xrfhub.store.hub` (the write path); a no-op if
xarray's internals are not the ones this was written against.
"""
from __future__ import annotations

import sys

#: xarray's duck-array package -> the module that defines the classes it tests against
_DEFINING = {"dask": "dask.array", "pint": "pint", "cupy": "cupy", "sparse": "sparse", "cubed": "cubed"}


def install() -> None:
    try:
        from xarray.namedarray import pycompat, utils
    except ImportError:  # pragma: no cover - another xarray layout: leave it alone
        return
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    if isinstance(cache, dict) and hasattr(pycompat, "DuckArrayModule"):
        for name, defining in _DEFINING.items():
            if name not in cache:
                cache[name] = _WhenImported(pycompat, cache, name, defining)
    original = getattr(utils, "is_dask_collection", None)
    if original is not None and not getattr(original, "_xrfhub_lazy", False):
        def is_dask_collection(x):
            # a dask collection is an instance of a class defined in dask: none exists before
            # dask is imported
            return "dask" in sys.modules and original(x)

        is_dask_collection._xrfhub_lazy = True
        utils.is_dask_collection = is_dask_collection


class _WhenImported:
    """Stands in for xarray's cached ``DuckArrayModule(name)`` until the package is imported."""

    def __init__(self, pycompat, cache, name: str, defining: str):
        self._pycompat, self._cache, self._name, self._defining = pycompat, cache, name, defining

    def _real(self):
        real = self._pycompat.DuckArrayModule(self._name)
        self._cache[self._name] = real  # from now on xarray asks the real one
        return real

    @property
    def type(self):
        # the only attribute array_type() reads: the classes an array must be an instance of
        return self._real().type if self._defining in sys.modules else ()

    def __getattr__(self, attr):  # module, version, available: xarray's own answers
        return getattr(self._real(), attr)
