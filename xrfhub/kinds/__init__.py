"""The store's kinds, one module each behind one protocol (``kinds.base.Kind``), in one registry.

The registry's order is the order of the hub writes (and of ``xrfhub.store.layout.KINDS``):
spectra first, since the groups that follow its rows (runs over spectra, QC flags, samples'
matched spectra) read its row layout and link its coordinates. Nothing else depends on the
order: a kind never reads another kind's new group, only the plan it is handed.
"""
from __future__ import annotations

from ..store import cores as _cores, nexus as _nexus
from .base import BaseKind, Batch, Kind
from .diffraction import KIND as DIFFRACTION
from .elements import KIND as ELEMENTS
from .predictions import KIND as PREDICTIONS
from .qc import KIND as QC
from .samples import KIND as SAMPLES
from .spectra import KIND as SPECTRA

__all__ = ["BaseKind", "Batch", "Kind", "get", "names", "register", "registry", "unregister", "for_reader",
           "read_core", "write_core", "load_records", "lazy_records"]

_REGISTRY: dict[str, Kind] = {k.name: k for k in (SPECTRA, ELEMENTS, SAMPLES, PREDICTIONS, DIFFRACTION, QC)}


def registry() -> dict[str, Kind]:
    """Every kind by name, in write order (a copy: change it with ``register``)."""
    return dict(_REGISTRY)


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str) -> Kind | None:
    return _REGISTRY.get(name)


def register(kind: Kind) -> None:
    """Add a kind (written after the others). Its hub groups are ``<name>`` or ``<name>/<id>``."""
    if not isinstance(kind, Kind):
        raise TypeError(f"{kind!r} does not follow xrfhub.kinds.Kind")
    if kind.name in _REGISTRY:
        raise ValueError(f"a kind {kind.name!r} is registered already")
    _REGISTRY[kind.name] = kind


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def for_reader(reader_kind: str) -> Kind | None:
    """The kind that stores what a reader of ``reader_kind`` parses (the first in write order)."""
    return next((k for k in _REGISTRY.values() if reader_kind in k.reader_kinds), None)


# ------------------------------------------------------------------------- core NeXus files
def write_core(path, record, **options) -> None:
    """Write a core's whole NeXus file: the store's skeleton and every kind's part, in write order."""
    _nexus.write_core(path, record, parts=list(_REGISTRY.values()), **options)


def read_core(path, kinds=None):
    """Read a core's NeXus file back: every kind's part, or only those of the kinds named in ``kinds``."""
    return _nexus.read_core(path, _parts(kinds))


def load_records(gen, cores=None, progress: bool = False) -> dict:
    """Every core record of a generation (or of ``cores``), whole: every kind's part."""
    return _cores.load_records(gen, _parts(None), cores=cores, progress=progress)


def lazy_records(gen, summaries: dict) -> "_cores.LazyRecords":
    """The store's core records, each read whole from its NeXus file the first time a write needs it."""
    return _cores.LazyRecords(gen, summaries, list(_REGISTRY.values()))


def _parts(kinds) -> list:
    if kinds is None:
        return list(_REGISTRY.values())
    unknown = [k for k in kinds if k not in _REGISTRY]
    if unknown:
        raise ValueError(f"no kind named {unknown}; the kinds are {', '.join(_REGISTRY)}")
    return [k for name, k in _REGISTRY.items() if name in kinds]
