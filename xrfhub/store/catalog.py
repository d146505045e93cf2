"""The split manifest: what a write needs to decide, in small files that a write replaces one by one.

A store of thousands of cores cannot rewrite one manifest listing every source file at each
commit (39 MB at 60 cores). So a generation keeps, beside a small ``manifest.json``:

* ``index/cores/<file stem>.json``: one core's summary (its NeXus file, scans with their row
  counts and counts sha256, depth range, lab samples, its sources, its place in the hub order);
* ``index/sources/<bucket>.json``: the sources whose names share a parent folder (a core's
  files usually sit in one folder), name -> sha256, format, kind, size, path, date, generation;

Beside the generations, ``identities/hints.sqlite`` holds one row per content identity naming
the source first stored with it: ingest finds "the same data under another path" with one keyed
lookup per incoming source. These rows are hints, written once and shared by every generation
(never linked or rewritten, so their cost is the change): a hint counts only when the current
generation's index still holds that source with those bytes. Stores written before kept one tiny
file per identity, ``identities/<ab>/<identity>``; those are still read. (One file per identity
cost a file creation per ingested spectrum, 0.3-1 ms each on the project's disk: as much as
parsing the file; one table takes a whole ingest's hints in one transaction.)

A write hard-links every index file it does not change from the parent generation and writes
only the changed ones, so the bytes written grow with the change, not the store. Old stores
(everything in ``manifest.json``) are read the same way and are split by their next write.
``load`` merges everything back into the familiar dict for ``xrfhub info`` and ``validate``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from pathlib import Path, PurePosixPath

from . import layout
from .files import link_or_copy, write_json_bytes

#: version of the split layout, recorded as ``manifest["index"]``
INDEX_VERSION = 1


def source_bucket(name: str) -> str:
    """The index file of a source name: a digest of its parent folder (files of a core share one)."""
    return _folder_bucket(_parent(name))


def _parent(name: str) -> str:
    """``str(PurePosixPath(name).parent)``; plain names ("a/b/c.spe") by string splitting, as
    an ingest asks this of every source name several times and pathlib parsing dominated it."""
    head, sep, tail = name.rpartition("/")
    if tail and tail not in (".", "..") and "//" not in name and not name.startswith("./") \
            and "/./" not in name and not name.startswith("/"):
        return head if sep else "."
    return str(PurePosixPath(name).parent)


@functools.lru_cache(maxsize=4096)
def _folder_bucket(parent: str) -> str:
    return hashlib.sha256(parent.encode()).hexdigest()[:16]


#: the table of identity hints under ``identities/``
HINTS_DB = "hints.sqlite"


def identity_hint(root, identity: str) -> Path:
    """The hint file of a content identity (``<sha256>:<16 hex>``) in stores written before the table."""
    return Path(root) / layout.IDENTITIES / identity[:2] / identity.replace(":", "_")


def _hints(root, create: bool) -> sqlite3.Connection | None:
    path = Path(root) / layout.IDENTITIES / HINTS_DB
    if not create and not path.exists():
        return None
    if create:
        path.parent.mkdir(exist_ok=True)
    con = sqlite3.connect(path)
    if create:
        with con:
            con.execute("CREATE TABLE IF NOT EXISTS hint (identity TEXT PRIMARY KEY, source TEXT NOT NULL) "
                        "WITHOUT ROWID")
    return con


def write_identity_hints(root, sources: dict[str, dict]) -> None:
    """One hint per new identity (the first source stored with it keeps it), in one transaction.

    Where SQLite cannot work (a file system without the locks it needs), the hints go to one
    file per identity as older stores kept them, which are still read.
    """
    rows = [(info["identity"], name) for name, info in sources.items() if info.get("identity")]
    if not rows:
        return
    try:
        con = _hints(root, create=True)
        try:
            with con:  # OR IGNORE: an identity already hinted keeps its first source, as a file did
                con.executemany("INSERT OR IGNORE INTO hint (identity, source) VALUES (?, ?)", rows)
        finally:
            con.close()
    except sqlite3.Error:
        for ident, name in rows:
            path = identity_hint(root, ident)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(name, encoding="utf-8")


class _HintReader:
    """Looks identities up in a store's hint table, then in the per-identity files of older stores."""

    def __init__(self, root: Path):
        self.root = root
        try:
            self.con = _hints(root, create=False)
        except sqlite3.Error:  # hints are only hints
            self.con = None
        folder = root / layout.IDENTITIES
        # older stores' files sit in two-character folders; without any, no file is looked for
        self.files = folder.is_dir() and any(p.is_dir() for p in folder.iterdir())

    def get(self, identity: str) -> str | None:
        if self.con is not None:
            try:  # fetchall: the statement is finished, so no read lock outlives the lookup
                rows = self.con.execute("SELECT source FROM hint WHERE identity = ?", (identity,)).fetchall()
            except sqlite3.Error:  # a damaged or unreadable table: hints are only hints
                rows = []
            if rows:
                return rows[0][0]
        if self.files:
            hint = identity_hint(self.root, identity)
            if hint.exists():
                return hint.read_text(encoding="utf-8")
        return None


def core_key(summary: dict) -> str:
    """The index file of a core: the stem of its NeXus file (already unique and portable)."""
    return Path(summary["file"]).stem


def _read_json(path) -> dict:
    import fsspec

    with fsspec.open(os.fspath(path), "r", encoding="utf-8") as fh:
        return json.load(fh)


def _join(root, *parts) -> str:
    return "/".join([os.fspath(root).rstrip("/"), *parts])


def _list(folder: str) -> list[str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(folder)
    try:
        return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False) if p.endswith(".json"))
    except FileNotFoundError:
        return []


def load(gen_path) -> dict:
    """The whole manifest of a generation (folder or URL) as one dict, split or not."""
    manifest = _read_json(_join(gen_path, layout.MANIFEST))
    if "index" not in manifest:
        return manifest
    cores_dir = _join(gen_path, layout.INDEX_DIR, "cores")
    sources_dir = _join(gen_path, layout.INDEX_DIR, "sources")
    manifest["cores"] = {}
    for name in _list(cores_dir):
        entry = _read_json(_join(cores_dir, name))
        manifest["cores"][entry["core"]] = entry["summary"]
    manifest["sources"] = {}
    for name in _list(sources_dir):
        manifest["sources"].update(_read_json(_join(sources_dir, name)))
    return manifest


class Catalog:
    """The index of one committed generation, read lazily (a writer's view of the store)."""

    def __init__(self, gen_path: Path | None):
        self.path = Path(gen_path) if gen_path is not None else None
        self.manifest: dict = {}
        self._legacy: dict | None = None
        self._cores: dict[str, dict] | None = None
        self._buckets: dict[str, dict] = {}
        self._hint_reader: _HintReader | None = None
        if self.path is not None:
            self.manifest = _read_json(self.path / layout.MANIFEST)
            if "index" not in self.manifest:
                self._legacy = self.manifest
                self._cores = dict(self.manifest.get("cores", {}))

    @property
    def split(self) -> bool:
        return self._legacy is None and self.path is not None

    def cores(self) -> dict[str, dict]:
        """Core id -> summary (one small file per core; read once)."""
        if self._cores is None:
            self._cores = {}
            folder = self.path / layout.INDEX_DIR / "cores" if self.path is not None else None
            if folder is not None and folder.exists():
                for p in sorted(folder.glob("*.json")):
                    entry = json.loads(p.read_text(encoding="utf-8"))
                    self._cores[entry["core"]] = entry["summary"]
        return self._cores

    def bucket(self, key: str) -> dict:
        if key not in self._buckets:
            if self._legacy is not None:
                self._buckets[key] = {n: v for n, v in self._legacy.get("sources", {}).items()
                                      if source_bucket(n) == key}
            elif self.path is None:
                self._buckets[key] = {}
            else:
                p = self.path / layout.INDEX_DIR / "sources" / f"{key}.json"
                self._buckets[key] = json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}
        return self._buckets[key]

    def source(self, name: str) -> dict | None:
        """What the store knows of a source name (None if never ingested)."""
        return self.bucket(source_bucket(name)).get(name)

    def stored_as(self, identity: str) -> str | None:
        """The source already stored with this content identity (None: new data)."""
        if not identity or self.path is None:
            return None
        if self._legacy is not None:
            return next((n for n, v in self._legacy.get("sources", {}).items() if v.get("identity") == identity), None)
        if self._hint_reader is None:
            self._hint_reader = _HintReader(self.path.parent.parent)
        name = self._hint_reader.get(identity)
        if name is None:
            return None
        held = self.source(name)  # a hint of a write that never committed, or of a replaced source: no
        return name if held is not None and held.get("identity") == identity else None

    def all_sources(self) -> dict[str, dict]:
        """Every source (reads every bucket: for rebuild and the sources group's full rewrite)."""
        if self._legacy is not None:
            return dict(self._legacy.get("sources", {}))
        out: dict[str, dict] = {}
        folder = self.path / layout.INDEX_DIR / "sources" if self.path else None
        if folder is not None and folder.exists():
            for p in sorted(folder.glob("*.json")):
                out.update(json.loads(p.read_text(encoding="utf-8")))
        return out


def write(gen_path: Path, parent: Catalog, cores: dict[str, dict | None], sources: dict[str, dict],
          *, full: bool = False) -> None:
    """Write the index of a new generation: ``cores`` changed (None: removed), ``sources`` new or replaced.

    Unchanged index files are hard-linked from the parent; ``full`` writes every file afresh
    (rebuild, and the first write of an old, unsplit store).
    """
    cores_dir = gen_path / layout.INDEX_DIR / "cores"
    sources_dir = gen_path / layout.INDEX_DIR / "sources"
    cores_dir.mkdir(parents=True, exist_ok=True)
    sources_dir.mkdir(parents=True, exist_ok=True)
    old_cores = parent.cores() if parent.path else {}
    relink = parent.split and not full
    for core, summary in sorted(old_cores.items()):
        if core in cores:
            continue
        if relink:
            link_or_copy(parent.path / layout.INDEX_DIR / "cores" / f"{core_key(summary)}.json",
                         cores_dir / f"{core_key(summary)}.json")
        else:
            write_json_bytes(cores_dir / f"{core_key(summary)}.json", {"core": core, "summary": summary})
    for core, summary in sorted(cores.items()):
        if summary is not None:
            write_json_bytes(cores_dir / f"{core_key(summary)}.json", {"core": core, "summary": summary})
    touched: dict[str, dict] = {}
    for name, info in sources.items():
        touched.setdefault(source_bucket(name), {})[name] = info
    if relink:
        old_folder = parent.path / layout.INDEX_DIR / "sources"
        for p in sorted(old_folder.glob("*.json")) if old_folder.exists() else []:
            if p.stem not in touched:
                link_or_copy(p, sources_dir / p.name)
        for key, fresh in sorted(touched.items()):
            write_json_bytes(sources_dir / f"{key}.json", {**parent.bucket(key), **fresh})
    else:
        everything = {**(parent.all_sources() if parent.path else {}), **sources}
        buckets: dict[str, dict] = {}
        for name, info in everything.items():
            buckets.setdefault(source_bucket(name), {})[name] = info
        for key, content in sorted(buckets.items()):
            write_json_bytes(sources_dir / f"{key}.json", content)
