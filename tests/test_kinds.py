"""Store kinds as modules behind one protocol (issue 13, item 7): the registry, dispatch, and
writes that take the set of changed groups (a kind whose groups did not change writes nothing)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xrfhub
from xrfhub import kinds, readers, sources
from xrfhub.kinds import BaseKind, Kind
from xrfhub.store import hub, layout
from xrfhub.store.generations import Store

from conftest import write_corpus


def _baxil(path: Path, core: str, depths=(50.0, 52.0, 54.0, 56.0)) -> Path:
    """A small bAXIL element table (two lines, one point per depth), as the Avaatech software writes it."""
    lines = (" Ca-Ka", " Fe-Ka")
    head = '" Spectrum" ," Sample" ," User" ," Live time" ," Real time" ," Excitation" ," Throughput" ' + "".join(
        f',"{ln} Chi2" ,"{ln} Area" ,"{ln} AreaStd" ,"{ln} cps" ,"{ln} cpsStd" ' for ln in lines)
    rows = [f"{core}!0!0!  {d:.1f}!2019-02-20!09-5{i}-32!30!10!1500!{d:.1f}!0.0!No-Filter!2.0!12.0!Run1!Rep0!"
            f"Sett Low.spe,  {d:.1f},{d:.1f},30,44,XRay Tube Generator,1.75E+05,1.0,{1000 + 10 * i},50,33.3,1.7,"
            f"1.1,{500 + i},30,16.6,1.0," for i, d in enumerate(depths)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + "\n" + "\n".join(rows) + "\n")
    return path


def _patterns(folder: Path, n: int = 4) -> Path:
    """A small series of 2-theta patterns (.xy), one peak each."""
    folder.mkdir(parents=True, exist_ok=True)
    tt = np.linspace(10, 20, 101)
    rng = np.random.default_rng(3)
    for i in range(n):
        y = 50 + 1000 * np.exp(-0.5 * ((tt - 12 - 0.1 * i) / 0.05) ** 2) + rng.normal(0, 1, tt.size)
        (folder / f"ramp_{i:04d}.xy").write_text("".join(f"{a:.4f} {b:.3f}\n" for a, b in zip(tt, y)))
    return folder


def _files(gen_path: Path, group: str) -> dict[str, int]:
    """Every file of a hub group and its inode."""
    root = gen_path / layout.HUB / group
    return {str(p.relative_to(root)): p.stat().st_ino for p in sorted(root.rglob("*")) if p.is_file()}


def _last_groups(store) -> set[str]:
    return set(Store(store).read_log()[-1]["hub_groups"])


# ---------------------------------------------------------------------------- the protocol


def test_every_registered_kind_follows_the_protocol_in_the_layout_s_order():
    registered = kinds.registry()
    assert tuple(registered) == layout.KINDS  # the write order is the layout's kinds, defined once
    for name, kind in registered.items():
        assert isinstance(kind, Kind) and kind.name == name, name
        assert kind.owns(name) and kind.owns(f"{name}/x") and not kind.owns(f"{name}x"), name
    # every reader's records are stored by exactly the kind that names the reader's KIND, or are
    # a side input (calibration models) that no kind stores
    for module in readers.readers().values():
        kind = kinds.for_reader(module.KIND)
        assert kind is not None or module.KIND == "calibration", module.FORMAT
    assert kinds.for_reader("samples").name == "samples" and kinds.for_reader("spectra+samples").name == "spectra"
    options = {"core": "A", "depth_unit": "cm", "units": "wt%", "gain": 0.01}
    assert sources.reader_options("samples", options) == {"core": "A", "depth_unit": "cm", "units": "wt%"}
    assert sources.reader_options("spectra", options) == {"core": "A", "units": "wt%", "gain": 0.01}
    with pytest.raises(TypeError, match="does not follow"):
        kinds.register(object())


def test_open_dispatches_through_the_registry_to_a_kind_registered_here(tmp_path):
    """A kind that no module names (no branch anywhere) is merged into by the ingest, written by the
    plan and opened by name."""

    class Notes(BaseKind):
        """One row per core: how many spectra it holds (read from the index, as a kind would)."""

        name = "notes"

        def merge(self, records, batch):  # called after the built-in kinds merged theirs
            self.merged.append((len(batch.parsed), len(batch.spectra), sorted(records)))
            return set()

        def changed(self, plan):
            return {self.name} if plan.changed_or_gone else set()

        def write(self, plan, groups):
            cores = sorted(plan.summaries)
            ds = xr.Dataset({"n_spectra": (("note",), np.array([plan.summaries[c]["n_spectra"] for c in cores]))},
                            coords={"core": (("note",), np.array(cores, dtype=object))}, attrs={"kind": self.name})
            hub.write_table(plan.gen.hub_path, self.name, ds)
            self.written.append(sorted(groups))

    notes = Notes()
    notes.written, notes.merged = [], []
    corpus = write_corpus(tmp_path / "c", n_channels=64)
    kinds.register(notes)
    try:
        with pytest.raises(ValueError, match="registered already"):
            kinds.register(Notes())
        xrfhub.ingest([corpus.scans], tmp_path / "hub")
        ds = xrfhub.open(tmp_path / "hub", "notes")
        assert ds.attrs["group"] == "notes" and notes.written == [["notes"]]
        # the ingest merged its batch through every registered kind: the spectra kind first
        assert notes.merged == [(corpus.n_spectra, corpus.n_spectra, ["PS75-056-1", "SO264-09-2"])]
        assert dict(zip(ds["core"].values, ds["n_spectra"].values.tolist())) == {"PS75-056-1": 40, "SO264-09-2": 20}
        assert "notes" in xrfhub.api.manifest(tmp_path / "hub")["kinds"]
        assert xrfhub.open(tmp_path / "hub").attrs["kind"] == "spectra"  # the default is still spectra
    finally:
        kinds.unregister("notes")
    with pytest.raises(xrfhub.StoreError, match="unknown kind 'notes'; kinds are spectra, elements"):
        xrfhub.open(tmp_path / "hub", "notes")


# ---------------------------------------------------------------------------- changed groups


@pytest.fixture
def mixed(tmp_path):
    """A store holding spectra, samples, element points and diffraction patterns."""
    first = write_corpus(tmp_path / "first", n_channels=64)
    store = tmp_path / "hub"
    xrfhub.ingest([first.scans, first.files["pangaea"], _baxil(tmp_path / "tables" / "baxil_GEO-1.csv", "GEO-1"),
                   _patterns(tmp_path / "ramp")], store)
    present = hub.groups(Store(store).current().hub_path)
    assert set(present) == {"spectra", "samples", "elements", "diffraction"}, present
    return store


def test_appending_spectra_changes_only_spectra_and_leaves_the_other_groups_linked(mixed, tmp_path):
    store = mixed
    parent = Store(store).current()
    present = hub.groups(parent.hub_path)
    kept = ["samples", "elements", *present["diffraction"]]
    before = {g: _files(parent.path, g) for g in kept}
    more = write_corpus(tmp_path / "more", cores=("GeoB1",), seed=5, kv30_core=None, n_channels=64)
    xrfhub.ingest([more.scans], store)
    gen = Store(store).current()
    assert _last_groups(store) == {"spectra/ch64"}  # decided once, before anything was written
    for g in kept:  # the very files of the parent: not one rewritten
        assert _files(gen.path, g) == before[g], g
    assert len(xrfhub.open(store, index=False)["core"]) == 60 + 20
    # the other way round: a new element table rewrites elements only; spectra stay the parent's
    spectra = _files(gen.path, "spectra/ch64")
    xrfhub.ingest([_baxil(tmp_path / "tables2" / "baxil_GEO-2.csv", "GEO-2")], store)
    assert _last_groups(store) == {"elements"}
    newest = Store(store).current()
    assert _files(newest.path, "spectra/ch64") == spectra
    assert _files(newest.path, "samples") == before["samples"]
    assert set(xrfhub.open(store, "elements")["core"].values) == {"GEO-1", "GEO-2"}
    # and what was written piecewise is what a rebuild writes afresh, byte for byte
    rebuilt = xrfhub.rebuild(store)
    a, b = newest.path / layout.HUB, rebuilt.path / layout.HUB
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    assert [f for f in files if (a / f).read_bytes() != (b / f).read_bytes()] == []
    assert _last_groups(store) >= {"spectra/ch64", "samples", "elements", *present["diffraction"]}


# ---------------------------------------------------------------------------- NeXus parts


def test_each_kind_writes_and_reads_its_own_part_of_a_core_file(mixed, tmp_path):
    """A core file is the store's skeleton plus every registered kind's part: a kind registered
    here writes its part into the files the ingest writes and reads it back, refuses a record
    before anything is written, and a reader that asks for one kind gets that kind's part only."""
    from xrfhub.errors import StoreError
    from xrfhub.store import nexus

    class Notes(BaseKind):
        name = "notes"

        def check_nexus(self, path, record):
            if record.core == "REFUSED":
                raise StoreError(f"{path}: notes refuse core {record.core}")

        def to_nexus(self, f, record, *, compression, level):
            nexus.core_entry(f, record).create_dataset("n_scans", data=len(record.scans))

        def from_nexus(self, f, record):
            record.n_scans = int(nexus.core_entry(f)["n_scans"][()])

    gen = Store(mixed).current()
    files = {c: gen.path / info["file"] for c, info in xrfhub.api.manifest(mixed)["cores"].items()}
    whole = kinds.read_core(files["GEO-1"])
    assert whole.elements and not whole.scans  # the bAXIL table's core: element points, no spectra
    only = kinds.read_core(files["PS75-056-1"], kinds=["elements"])
    assert not only.scans and only.lab.empty and only.sources  # the skeleton and the asked part only
    with pytest.raises(ValueError, match="no kind named"):
        kinds.read_core(files["PS75-056-1"], kinds=["spectrum"])

    kinds.register(Notes())
    try:
        more = write_corpus(tmp_path / "more", n_channels=64, cores=("M77-33-1",))
        xrfhub.ingest([more.scans], mixed)
        new = Store(mixed).current()
        path = new.path / xrfhub.api.manifest(mixed)["cores"]["M77-33-1"]["file"]
        back = kinds.read_core(path)
        assert back.n_scans == len(back.scans) >= 1 and back.scans
        with h5py_file(path) as f:  # the scans stay the file's first entries (nxcheck looks there)
            assert list(f)[-1] == "core" and "n_scans" in f["core"]
        target = tmp_path / "refused.nxs"
        kinds.write_core(target, back)
        before = target.read_bytes()
        back.core = "REFUSED"
        with pytest.raises(StoreError, match="notes refuse core REFUSED"):
            kinds.write_core(target, back)
        assert target.read_bytes() == before  # refused before the file was opened
    finally:
        kinds.unregister("notes")


def h5py_file(path):
    import h5py

    return h5py.File(path, "r")
