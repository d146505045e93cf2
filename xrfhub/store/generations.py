"""Generations: how the store stays consistent through crashes and concurrent readers.

Every write builds a complete new generation folder next to the current one (unchanged core
files are hard-linked, not copied) and then commits by atomically replacing ``store.json``, the
pointer. A process killed at any moment leaves either the old pointer (the new folder is
garbage, removed by the next writer) or the new one: never a mix. Readers resolve the pointer
once and read an immutable folder, so they keep working while a writer runs. A file lock
admits one writer at a time.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import filelock

from .. import __version__
from ..errors import InputError, StoreError, StoreLockedError
from . import layout
from .files import link_or_copy, link_tree, write_json_bytes  # noqa: F401 - re-exported


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_path(path) -> None:
    """Flush a file's or a folder's entry to disk (a folder: the names it holds)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, content: dict) -> None:
    """Write JSON so that a crash leaves either the old file or the new one, complete."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # one compact string from the C encoder: indented json.dump runs the pure-Python encoder and
    # writes piecewise, which cost ~0.3 s per manifest of 10,000 sources
    text = json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent)


@dataclass(frozen=True)
class Generation:
    """One committed (or being written) state of the store: an immutable folder."""

    root: Path
    name: str

    @property
    def path(self) -> Path:
        return self.root / layout.GENERATIONS / self.name

    @property
    def number(self) -> int:
        return int(self.name[1:])

    @property
    def hub_path(self) -> Path:
        return self.path / layout.HUB

    @property
    def nexus_dir(self) -> Path:
        return self.path / layout.NEXUS_DIR

    def manifest(self) -> dict:
        """The whole manifest, the split index merged in (reads every index file: for info, validate)."""
        from .catalog import load

        try:
            return load(self.path)
        except FileNotFoundError:
            raise StoreError(f"{self.path}: manifest missing; the generation is damaged. "
                             "Run `xrfhub rebuild` on the store") from None
        except json.JSONDecodeError as exc:
            raise StoreError(f"{self.path / layout.MANIFEST}: not valid JSON ({exc})") from None

    def nexus_path(self, core_file: str) -> Path:
        return self.path / core_file


class Store:
    """A store folder: the pointer, the generations, the lock, the log and the history."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # ------------------------------------------------------------------ reading

    @property
    def pointer_path(self) -> Path:
        return self.root / layout.POINTER

    def exists(self) -> bool:
        return self.pointer_path.exists()

    def pointer(self) -> dict:
        return read_pointer(self.root)

    def current(self) -> Generation | None:
        """The committed generation, or None for a store that holds nothing yet."""
        if not self.exists():
            return None
        name = self.pointer().get("current")
        return Generation(self.root, name) if name else None

    # ------------------------------------------------------------------ writing

    def check_folder(self, init: bool) -> None:
        """Refuse a ``--store`` that is a file, or a folder of other files, unless ``init`` says so.

        Creating a store in the raw data folder by a slip of the argument order would mix the
        store's files with the user's; a new or empty folder is created without asking.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise InputError(root, "--store names an existing file, not a store folder; name a new or empty folder "
                                   "(or an existing store)", field="--store")
        if root.is_dir() and not self.exists():
            others = sorted(e.name for e in root.iterdir() if e.name != layout.LOCK)
            if others and not init:
                shown = ", ".join(others[:3]) + (" ..." if len(others) > 3 else "")
                raise InputError(root, f"--store names a folder that holds other files ({shown}) and is not an xrfhub "
                                       "store (no store.json); name a new or empty folder, or pass --init to create a "
                                       "store in it", field="--store")


    @contextmanager
    def writer(self, wait: float = 0.0):
        """Hold the single-writer lock; ``wait`` seconds before giving up (0: fail at once)."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.root / layout.LOCK)
        try:
            lock.acquire(timeout=max(wait, 0.0) if wait else 0.01)
        except filelock.Timeout:
            raise StoreLockedError(
                f"{self.root}: another xrfhub process is writing this store (lock {layout.LOCK}); "
                "wait for it to finish or pass --wait SECONDS") from None
        try:
            if not self.exists():
                write_json_atomic(self.pointer_path, {"format": layout.STORE_FORMAT,
                                                      "version": layout.STORE_VERSION, "current": None,
                                                      "created": now_iso()})
            self._remove_uncommitted()
            yield self
        finally:
            lock.release()

    def _remove_uncommitted(self) -> None:
        """Folders of generations newer than the pointer are leftovers of a crashed writer."""
        for tmp in self.root.glob(f".{layout.POINTER}.*.tmp"):  # a pointer write cut short
            tmp.unlink(missing_ok=True)
        gens = self.root / layout.GENERATIONS
        if not gens.exists():
            return
        current = self.current()
        committed = current.number if current else -1
        for folder in gens.iterdir():
            if folder.name.startswith("g") and folder.name[1:].isdigit() and int(folder.name[1:]) > committed:
                shutil.rmtree(folder, ignore_errors=True)
            elif folder.name.startswith("."):
                shutil.rmtree(folder, ignore_errors=True)

    def leftovers(self) -> list[tuple[Path, int]]:
        """Half-built generation folders a killed writer left (path, bytes), without removing them.

        Readers never look at them and the next writer removes them; ``xrfhub info`` says they
        are there, so that a user who sees the disk fill up knows what it is.
        """
        gens = self.root / layout.GENERATIONS
        current = self.current()
        committed = current.number if current else -1
        found = []
        for folder in sorted(gens.iterdir()) if gens.exists() else []:
            numbered = folder.name.startswith("g") and folder.name[1:].isdigit()
            if (numbered and int(folder.name[1:]) > committed) or folder.name.startswith("."):
                size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
                found.append((folder, size))
        return found

    def new_generation(self) -> Generation:
        current = self.current()
        number = current.number + 1 if current else 1
        gen = Generation(self.root, layout.generation_name(number))
        gen.path.mkdir(parents=True)
        gen.nexus_dir.mkdir()
        return gen

    def commit(self, gen: Generation, *, keep: int = 3) -> None:
        """Make ``gen`` current with one atomic rename, then drop generations beyond ``keep``.

        Older generations stay for a while because readers that resolved the pointer before
        the commit may still be reading them.
        """
        _sync_tree(gen.path)
        pointer = self.pointer()
        pointer.update(current=gen.name, updated=now_iso(), xrfhub_version=__version__)
        write_json_atomic(self.pointer_path, pointer)
        self._prune(keep)

    #: a generation commits must not prune (an ingest in batches may go back to it)
    pinned: str | None = None

    def roll_back(self, to: "Generation | None") -> None:
        """Make ``to`` current again and remove the generations committed after it.

        For a writer that committed in steps (an ingest in batches) and was refused or stopped
        half way: the store goes back to what it held before the writer began.
        """
        pointer = self.pointer()
        pointer.update(current=to.name if to is not None else None, updated=now_iso(), xrfhub_version=__version__)
        write_json_atomic(self.pointer_path, pointer)
        self._remove_uncommitted()
        self.log({"action": "roll back", "generation": to.name if to is not None else None, "date": now_iso()})

    def _prune(self, keep: int) -> None:
        gens = sorted((p for p in (self.root / layout.GENERATIONS).iterdir()
                       if p.name.startswith("g") and p.name[1:].isdigit()), key=lambda p: int(p.name[1:]))
        for old in gens[:-keep] if keep > 0 else []:
            if old.name == self.pinned:
                continue
            # rename first so that a crash mid-delete never leaves a half folder under a valid name
            doomed = old.with_name(f".deleting-{old.name}-{time.time_ns()}")
            os.replace(old, doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def log(self, event: dict) -> None:
        """Append one JSON line to the ingest log (the store's provenance journal)."""
        with open(self.root / layout.LOG, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, sort_keys=True, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read_log(self) -> list[dict]:
        path = self.root / layout.LOG
        if not path.exists():
            return []
        events = []
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        events.append(json.loads(line))
                    except json.JSONDecodeError:  # a torn last line from a crash
                        continue
        return events

    @property
    def history_dir(self) -> Path:
        return self.root / layout.HISTORY


def resolve(root) -> tuple[str, dict]:
    """The current generation's folder (path or URL) and the pointer, read once."""
    root = os.fspath(root)
    pointer = read_pointer(root)
    if not pointer.get("current"):
        raise StoreError(f"{root}: the store is empty (nothing committed yet)")
    return "/".join([root.rstrip("/"), layout.GENERATIONS, pointer["current"]]), pointer


def read_pointer(root) -> dict:
    """A store's pointer, from a folder or an fsspec URL, checked to be one this xrfhub reads."""
    import fsspec

    root = os.fspath(root)
    where = f"{root.rstrip('/')}/{layout.POINTER}"
    try:
        with fsspec.open(where, "r", encoding="utf-8") as fh:
            pointer = json.load(fh)
    except FileNotFoundError:
        raise StoreError(f"{root}: not an xrfhub store (no {layout.POINTER}); "
                         "create one with `xrfhub ingest FILES --store PATH`") from None
    except json.JSONDecodeError as exc:
        raise StoreError(f"{where}: damaged pointer file ({exc})") from None
    if pointer.get("format") != layout.STORE_FORMAT:
        raise StoreError(f"{where}: not an xrfhub store pointer")
    if pointer.get("version", 0) > layout.STORE_VERSION:
        raise StoreError(f"{root}: store version {pointer['version']} is newer than this "
                         f"xrfhub understands ({layout.STORE_VERSION}); upgrade xrfhub")
    return pointer


def _sync_tree(path: Path) -> None:
    """fsync every file and folder under ``path`` so that the commit survives power loss.

    The fsyncs run in a few threads: each one waits on the disk with the GIL released, and the
    file system commits the journal once for fsyncs that arrive together, so a generation of a
    hundred-odd files and folders syncs in a fraction of the time one after the other took.
    Every one of them is done (and any error raised) before this returns, as before.
    """
    from concurrent.futures import ThreadPoolExecutor

    files, folders = [], []
    for folder, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(folder, name)
            if os.stat(full).st_nlink > 1:
                continue  # a hard link of a committed file: synced when its generation was committed
            files.append(full)
        folders.append(folder)
    if len(files) + len(folders) < 8:
        for p in files + folders:
            _fsync_path(p)
        return
    with ThreadPoolExecutor(max_workers=_SYNC_THREADS, thread_name_prefix="xrfhub-fsync") as pool:
        # files first, then the folders that name them (list() raises the first error)
        list(pool.map(_fsync_path, files))
        list(pool.map(_fsync_path, folders))


#: threads for the commit's fsyncs (they wait on the disk, not the CPU)
_SYNC_THREADS = 8

