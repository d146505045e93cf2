"""Core records read from a generation's NeXus files: all of them, or lazily one by one.

``parts`` are the kinds' parts of a core file to read (``store.nexus.Part``; ``xrfhub.kinds``
passes every kind's): the store layer names no kind.
"""
from __future__ import annotations

from . import nexus
from .catalog import Catalog
from .generations import Generation
from ..records import CoreRecord


def load_records(gen: Generation, parts, cores=None, progress: bool = False) -> dict[str, CoreRecord]:
    """Read the NeXus files of a generation back into records (all cores, or ``cores``), with ``parts``."""
    summaries = Catalog(gen.path).cores()
    items = [(c, info) for c, info in sorted(summaries.items()) if cores is None or c in cores]
    if progress and len(items) > 1:
        from tqdm import tqdm

        items = tqdm(items, desc="read NeXus", unit="core")
    return {c: nexus.read_core(gen.path / info["file"], parts) for c, info in items}


class LazyRecords(dict):
    """Core records read from NeXus only when a write needs them (``get``, ``[]``, ``setdefault``).

    Keys are the store's cores (from the index); iterating gives ids without reading files.
    ``loaded`` says which records are in memory; ``removed`` which cores were popped.
    """

    def __init__(self, gen: Generation | None, summaries: dict[str, dict], parts):
        super().__init__()
        self.gen, self.summaries, self.parts, self.removed = gen, summaries, list(parts), set()
        for core in summaries:
            super().__setitem__(core, None)

    def __getitem__(self, core):
        rec = super().__getitem__(core)
        if rec is None:
            rec = nexus.read_core(self.gen.path / self.summaries[core]["file"], self.parts)
            super().__setitem__(core, rec)
        return rec

    def get(self, core, default=None):
        return self[core] if core in self else default

    def setdefault(self, core, default=None):
        if core not in self:
            super().__setitem__(core, default)
        return self[core]

    def pop(self, core, *default):
        if core not in self:
            if default:
                return default[0]
            raise KeyError(core)
        rec = self[core]
        super().pop(core)
        self.removed.add(core)
        return rec

    def values(self):
        return [self[c] for c in self]

    def items(self):
        return [(c, self[c]) for c in self]

    @property
    def loaded(self) -> set[str]:
        return {c for c in self if dict.__getitem__(self, c) is not None}
