"""The protocol every store kind follows, and the defaults most kinds share.

A *kind* (spectra, elements, samples, predictions, diffraction, qc) is one module of
``xrfhub.kinds`` holding one object that says, for its part of the store:

- which parsed sources it takes (``reader_kinds``) and with which ingest options
  (``reader_options``), what of a parsed source makes it the same data (``identity``), and how
  an ingest batch's parsed sources join the core records (``merge``);
- which of its hub groups a write changes (``changed``), and how it writes them (``write``);
- how ``xrfhub.open`` picks one of its groups and opens it (``open``);
- its part of a core's NeXus file (``check_nexus``, ``to_nexus``, ``from_nexus``: the
  ``xrfhub.store.nexus.Part`` protocol): the store writes the file's skeleton and hands each
  kind the open file, so ``store.nexus`` names no kind either. Prediction runs are files of
  their own (``store.nxrun``), and QC verdicts processes of the skeleton: those kinds have no part.

Everything else (readers, the NeXus archive, the index, the generation) is shared and knows no
kind by name: ``HubPlan`` asks every registered kind which groups change, once, then hands each
kind the changed groups it owns, so a kind whose groups did not change does nothing; ``api.open``
and ``sources`` look the kind up in the registry. This is xarray's backend pattern: adding a kind
is adding a module and one line in ``xrfhub.kinds``, not a branch in six modules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import xarray as xr
import zarr

from ..store import hub


@dataclass
class Batch:
    """What one ingest batch brings, ready to merge: its new and replaced sources (parsed), the
    spectra they hold once placed and checked, the lab tables with their sources, the ``--core``
    override, the core-id map, and the list where merges say what they assumed."""

    parsed: list = field(default_factory=list)
    spectra: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    core: str | None = None
    cmap: object = None
    warnings: list = field(default_factory=list)

    def of(self, kind) -> list:
        """The batch's parsed sources that ``kind`` stores."""
        return [p for p in self.parsed if p.kind in kind.reader_kinds]


@runtime_checkable
class Kind(Protocol):
    """One kind of the store (see the module doc). ``plan`` is the write's ``hubplan.HubPlan``."""

    #: the kind's name: its hub groups are ``<name>`` or ``<name>/<id>``
    name: str
    #: the ``KIND`` of the readers whose parsed records this kind stores
    reader_kinds: tuple[str, ...]

    def owns(self, group: str) -> bool:
        """Whether hub group ``group`` is this kind's."""

    def reader_options(self, options: dict) -> dict:
        """The ingest options a reader of this kind takes."""

    def identity(self, parsed) -> str | None:
        """What, beyond its bytes, makes a parsed source of this kind new data (None: its bytes only)."""

    def merge(self, records, batch: Batch) -> set[str]:
        """Join the batch's sources of this kind to ``records`` (core id -> CoreRecord); the cores changed."""

    def changed(self, plan) -> set[str]:
        """The groups of this kind that the write ``plan`` changes (written, rewritten or removed)."""

    def write(self, plan, groups: set[str]) -> None:
        """Write ``groups`` (this kind's changed groups) into the plan's new hub."""

    def open(self, hub_path, present: dict[str, list[str]], *, index: bool = True, **options) -> xr.Dataset:
        """One lazy dataset of this kind; ``present`` lists every kind's groups in the hub."""

    def check_nexus(self, path, record) -> None:
        """Raise ``StoreError`` naming ``path`` when the record's part cannot be archived."""

    def to_nexus(self, f, record, *, compression: str, level: int) -> None:
        """Write the record's part into the open core file ``f`` (its ``core`` entry:
        ``store.nexus.core_entry(f, record)``)."""

    def from_nexus(self, f, record) -> None:
        """Fill the record's part from the open core file ``f``."""


class BaseKind:
    """Defaults: every ingest option but the lab-only ones, identity by bytes, no groups of
    its own to write, no part in core files, and ``open`` of the last group (``pick``), indexed
    by core and depth."""

    name = ""
    reader_kinds: tuple[str, ...] = ()
    #: options only lab readers take: every other reader is refused them (``units`` also serves
    #: element tables, e.g. pXRF)
    LAB_ONLY = frozenset({"depth_unit"})

    def reader_options(self, options: dict) -> dict:
        return {k: v for k, v in options.items() if k not in self.LAB_ONLY}

    def identity(self, parsed) -> str | None:
        return None

    def owns(self, group: str) -> bool:
        return group.split("/", 1)[0] == self.name

    def merge(self, records, batch: Batch) -> set[str]:
        return set()

    def changed(self, plan) -> set[str]:
        return set()

    def write(self, plan, groups: set[str]) -> None:
        return None

    def check_nexus(self, path, record) -> None:
        return None

    def to_nexus(self, f, record, *, compression: str, level: int) -> None:
        return None

    def from_nexus(self, f, record) -> None:
        return None

    def pick(self, hub_path, groups: list[str], **options) -> str:
        """Which of the kind's groups ``open`` opens when options do not say: the last."""
        return groups[-1]

    def open(self, hub_path, present: dict[str, list[str]], *, index: bool = True, **options) -> xr.Dataset:
        group = self.pick(hub_path, present[self.name], **options)
        return indexed(open_group(hub_path, group), index)


def open_group(hub_path, group: str) -> xr.Dataset:
    """A hub group, lazily, with its name in ``attrs["group"]``."""
    ds = hub.open_group(hub_path, group)
    ds.attrs["group"] = group
    return ds


def indexed(ds: xr.Dataset, index: bool = True) -> xr.Dataset:
    """``ds`` indexed by core and depth where it has both (so ``ds.sel(core=..., depth_mm=...)`` works)."""
    if index and "core" in ds.coords and "depth_mm" in ds.coords:
        from ..index import with_core_depth_index

        return with_core_depth_index(ds)
    return ds


def exists(hub_path, group: str) -> bool:
    """Whether a hub (None: no hub) holds ``group``."""
    if hub_path is None:
        return False
    try:
        zarr.open_group(hub_path, path=group, mode="r")
        return True
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return False
