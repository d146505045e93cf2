"""Finding, fingerprinting and parsing source files, in parallel through dask.

A source is known to the store by a *name*: its path relative to the folder the user named,
prefixed by that folder's name (``scans/PS75-056-1/Run 1 at  10kV/x.spe``), or its bare file
name when the user named the file. Re-ingesting the same folder therefore finds the same
names, which is what makes ingest idempotent and lets a changed file be recognised.

A few layouts are a *folder* source rather than many file sources: a folder that
``readers.max_dataset.sniff_dir`` accepts (the MAX data set, thousands of small CSV files) is
one candidate, fingerprinted by the sorted (relative path, file sha256) pairs of its files and
parsed by ``read_dir`` into ``Parsed(kind="spectra+samples")``.

A ``.zip`` met while walking a folder (ITRAX writes ``XRF Data.zip`` beside its result table)
is read as the folder it holds: each member is a candidate named ``<zip name>/<member>``, and
readers see the path ``<folder>/<zip name>/<member>``, whose side files (``Results.txt``,
``document.txt``) are those beside the zip. A zip named on the command line is expanded too.
"""
from __future__ import annotations

import functools
import hashlib
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import coreid, kinds, readers
from .errors import InputError, NotStored, UnknownFormatError
from .readers import max_dataset
from .records import SourceFile
from .store import layout

_IGNORED_NAMES = {".DS_Store", "Thumbs.db", "truth.json", "desktop.ini"}


@dataclass
class Candidate:
    """A file (or folder source) to ingest: where it is, its store name, whether named.

    ``folder_format`` is set for a folder read as one source (e.g. ``"max-dataset"``).
    """

    path: Path
    name: str
    explicit: bool
    folder_format: str = ""
    member: str = ""  # a file inside the zip ``path``; "" for a plain file

    @property
    def read_path(self) -> Path:
        """The path readers see: a zip member as if the zip were its folder."""
        return self.path / self.member if self.member else self.path


@dataclass
class Parsed:
    """What parsing one file produced: its fingerprint, and records or an error."""

    source: SourceFile
    kind: str = ""
    records: object = None
    error: InputError | None = None
    ignored: bool = False  # unrecognised file found while walking a folder
    warnings: list[str] = field(default_factory=list)
    note: str = ""  # recognised and deliberately not stored (errors.NotStored): why


def find(paths) -> list[Candidate]:
    """Expand folders (recursively, in sorted order) into candidate files and folder sources.

    A folder laid out as a MAX data set, given or met while walking, becomes one candidate and
    is not walked into.
    """
    out: list[Candidate] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            base = path.resolve().name or "root"
            if max_dataset.sniff_dir(path):
                out.append(Candidate(path, base, True, max_dataset.FORMAT))
                continue
            for folder, dirs, files in os.walk(path):
                if layout.POINTER in files:  # a store made inside the data folder (--init): not data
                    dirs[:] = [d for d in dirs if d not in (layout.GENERATIONS, layout.HISTORY, layout.IDENTITIES)]
                    files = [f for f in files if f not in (layout.POINTER, layout.LOG, layout.LOCK)]
                keep = []
                for d in sorted(d for d in dirs if not d.startswith(".")):
                    sub = Path(folder) / d
                    if max_dataset.sniff_dir(sub):
                        out.append(Candidate(sub, f"{base}/{sub.relative_to(path).as_posix()}", False,
                                             max_dataset.FORMAT))
                    else:
                        keep.append(d)
                dirs[:] = keep
                folder_path = Path(folder)
                rel = folder_path.relative_to(path).as_posix()
                prefix = f"{base}/" if rel == "." else f"{base}/{rel}/"
                for name in sorted(files):  # one Path per folder, not three per file
                    if name.startswith(".") or name in _IGNORED_NAMES:
                        continue
                    if name.lower().endswith(".zip"):
                        out.extend(_zip_members(folder_path / name, prefix + name, False))
                        continue
                    out.append(Candidate(folder_path / name, prefix + name, False))
        elif path.exists() and path.name.lower().endswith(".zip"):
            out.extend(_zip_members(path, path.name, True))
        elif path.exists():
            out.append(Candidate(path, path.name, True))
        else:
            raise InputError(path, "no such file or folder")
    seen: dict[str, Path] = {}
    for cand in out:
        if cand.name in seen and seen[cand.name] != cand.path:
            raise InputError(cand.path, f"two inputs share the store name {cand.name!r} "
                                        f"(also {seen[cand.name]}); ingest them separately")
        seen[cand.name] = cand.path
    return out


def _zip_members(path: Path, name: str, explicit: bool) -> list[Candidate]:
    """Candidates for the files of a zip archive; a zip that cannot be opened is one candidate
    (its parse then reports why)."""
    try:
        members = sorted(i.filename for i in _open_zip(str(path)).infolist() if not i.is_dir())
    except (OSError, zipfile.BadZipFile) as exc:
        return [Candidate(path, name, explicit, member="", folder_format=f"bad-zip:{exc}")]
    keep = [m for m in members if not Path(m).name.startswith(".") and Path(m).name not in _IGNORED_NAMES
            and not m.startswith("__MACOSX/")]
    return [Candidate(path, f"{name}/{m}", explicit, member=m) for m in keep]


@functools.lru_cache(maxsize=4)
def _open_zip(path: str) -> zipfile.ZipFile:
    """An open archive, kept while its members are read (one central directory read, not one
    per member)."""
    return zipfile.ZipFile(path)


def _read(cand: Candidate) -> bytes:
    if cand.member:
        try:
            return _open_zip(str(cand.path)).read(cand.member)
        except (zipfile.BadZipFile, KeyError, RuntimeError) as exc:  # damaged, missing, encrypted
            raise OSError(f"cannot read {cand.member!r} from the zip: {exc}") from None
    return cand.path.read_bytes()


def reader_options(kind: str, options: dict) -> dict:
    """The ingest options a reader of ``kind`` takes, as the store kind it feeds says (lab
    readers take core, depth unit and units; spectrum and pattern readers everything else)."""
    return (kinds.for_reader(kind) or kinds.BaseKind()).reader_options(options)


def sha256_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def parse_one(cand: Candidate, format_name: str | None = None, options: dict | None = None) -> Parsed:
    """Read, fingerprint and parse one file; user errors are returned, not raised."""
    options = options or {}
    if cand.folder_format.startswith("bad-zip:"):
        src = SourceFile(cand.name, str(cand.path), "", "zip", 0)
        return Parsed(src, error=InputError(cand.path, f"cannot open the zip archive "
                                                       f"({cand.folder_format[8:]}): expected a readable .zip"))
    if cand.folder_format:
        return _parse_folder(cand, options)
    where = cand.read_path
    try:
        raw = _read(cand)
    except OSError as exc:
        src = SourceFile(cand.name, str(where), "", format_name or "", 0)
        return Parsed(src, error=InputError(where, f"cannot read: {exc.strerror or exc}"))
    src = SourceFile(cand.name, str(where), sha256_of(raw), format_name or "", len(raw))
    try:
        module = readers.get(format_name) if format_name else readers.detect(where, raw[:readers.SNIFF_BYTES], raw)
    except UnknownFormatError as exc:
        return Parsed(src, error=exc, ignored=not cand.explicit)
    src.format = module.FORMAT
    try:
        records = module.read(where, source=cand.name, raw=raw, **reader_options(module.KIND, options))
    except NotStored as exc:
        return Parsed(src, kind=module.KIND, note=exc.reason)
    except InputError as exc:
        return Parsed(src, kind=module.KIND, error=exc)
    except (ValueError, IndexError, KeyError, TypeError, UnicodeError, OverflowError) as exc:
        # a reader bug or an input it did not foresee: still the user's file that triggers it
        return Parsed(src, kind=module.KIND, error=InputError(where, f"cannot parse ({type(exc).__name__}: {exc})"))
    return Parsed(src, kind=module.KIND, records=records)


class _FolderDigest:
    """Fingerprint of a folder source: sha256 over its sorted (relative path, file sha256) pairs.

    Files are hashed as the reader reads them, so each is read once; ``finish`` hashes the
    files the reader did not need (or did not reach, when it failed).
    """

    def __init__(self, root: Path):
        self.root = root
        self.prefix = os.path.join(os.fspath(root), "")
        self.sums: dict[str, tuple[str, int]] = {}

    def _rel(self, path) -> str:
        text = os.fspath(path)  # string slicing: pathlib's relative_to is slow on 10^5 files
        if text.startswith(self.prefix):
            return text[len(self.prefix):].replace(os.sep, "/")
        return Path(path).relative_to(self.root).as_posix()

    def read(self, path) -> bytes:
        with open(path, "rb") as fh:
            raw = fh.read()
        self.sums[self._rel(path)] = (sha256_of(raw), len(raw))
        return raw

    def finish(self, files: list[Path]) -> tuple[str, int]:
        for f in files:
            if self._rel(f) not in self.sums:
                self.read(f)
        digest = hashlib.sha256()
        for rel in sorted(self.sums):
            digest.update(f"{rel}\0{self.sums[rel][0]}\n".encode("utf-8"))
        return digest.hexdigest(), sum(size for _, size in self.sums.values())


def _parse_folder(cand: Candidate, options: dict) -> Parsed:
    """A folder source: fingerprint and read it whole; user errors are returned, not raised."""
    module = max_dataset  # the only folder format so far
    digest = _FolderDigest(cand.path)
    src = SourceFile(cand.name, str(cand.path), "", module.FORMAT, 0)
    records, error = None, None
    try:
        records = module.read_dir(cand.path, source=cand.name, read_bytes=digest.read,
                                  calibration=options.get("calibration"))
    except InputError as exc:
        error = exc
    except (ValueError, IndexError, KeyError, TypeError, UnicodeError, OverflowError) as exc:
        error = InputError(cand.path, f"cannot parse ({type(exc).__name__}: {exc})")
    except OSError as exc:
        error = InputError(getattr(exc, "filename", None) or cand.path, f"cannot read: {exc.strerror or exc}")
    try:
        src.sha256, src.size = digest.finish(module.dataset_files(cand.path))
    except OSError as exc:
        error = error or InputError(getattr(exc, "filename", None) or cand.path,
                                    f"cannot read: {exc.strerror or exc}")
    if error is not None:
        return Parsed(src, kind=module.KIND, error=error)
    return Parsed(src, kind=module.KIND, records=records, warnings=list(records.warnings))


#: below this many files, forking workers costs more than it saves
POOL_MIN_FILES = 200


def with_cores_from_paths(parsed: list[Parsed], cands: list[Candidate], cores: Callable[[], set[str]],
                          format_name=None, options=None) -> list[Parsed]:
    """Read again, with a core, the files that lack only the fact of their core (a lab table
    without a core column, the sum spectrum of a discrete sample) and whose path names exactly
    one of ``cores()`` (this ingest's scanned cores and the store's, asked for only when a file
    lacks its core): a lab's folder
    ``itraxBook_CD166_19_(2020)`` or file ``CD166_19_benchtop.csv`` says which core it is, as a
    user passing ``--core`` would. What was taken is said (the file's warnings, or a lab table's
    ``core_from_path``, kept with the data). Paths naming no core or several stay refused."""
    options = options or {}
    if options.get("core"):
        return parsed
    by_name = {c.name: c for c in cands}
    lacking = [i for i, p in enumerate(parsed)
               if p.error is not None and "core" in p.error.lacks and p.source.name in by_name]
    known = cores() if lacking else set()
    out = list(parsed)
    for i in lacking:
        p = parsed[i]
        named = coreid.named_in_path(p.source.name, known)
        if len(named) != 1:
            continue
        (core, part), = named.items()
        again = parse_one(by_name[p.source.name], format_name, {**options, "core": core})
        said = (f"{core!r}, named by {part!r} in the file's path, the one core of this ingest or the store "
                "it names (pass --core to say otherwise)")
        if again.error is None and again.kind == "samples":
            again.records.metadata["core_from_path"] = said
        elif again.error is None:
            again.warnings.append(f"core from the path: {said}")
        out[i] = again
    return out


def parse_all(cands: list[Candidate], *, format_name=None, options=None, client=None,
              progress: bool = False) -> list[Parsed]:
    """Parse many files: through dask on a given ``dask.distributed`` client, else on this machine's cores.

    Parsing holds the GIL, so threads do not help. Without a cluster, a corpus of
    ``POOL_MIN_FILES`` or more is parsed by processes, one per usable core (this one parses one
    share, forked ones the others), unless other jobs keep the cores busy already (1-minute load
    average >= cores); ``XRFHUB_PARSE_PROCESSES`` sets the count (1: this process alone). Forked
    workers start in milliseconds with every reader already imported, and each gets one
    contiguous share of the files, so only paths go out and Parsed records come back (dask's
    local process scheduler, which ships every task and starts fresh interpreters, measured
    10-15 s against 3.9 s in-process on 10,000 .spe files with 2 cores). A cluster's workers are
    already running, so there the files are spread over them.
    """
    if not cands:
        return []
    options = options or {}
    if client is None:
        workers = _local_workers(len(cands))
        if workers > 1:
            return _parse_forked(cands, format_name, options, workers, progress)
        return [parse_one(c, format_name, options) for c in _progress(cands, progress)]
    import dask.bag as db  # here, not at the top: an in-process ingest never needs dask (0.1 s of start-up)

    nparts = max(1, min(len(cands) // 200, 256))
    bag = db.from_sequence(cands, npartitions=nparts).map(parse_one, format_name, options)
    return list(bag.compute(scheduler=client))


def _local_workers(n_files: int) -> int:
    """How many processes parse ``n_files`` here: 1 (this one) when forking would not pay or is unsafe."""
    from .forking import usable_processes

    return usable_processes(n_files, POOL_MIN_FILES, "XRFHUB_PARSE_PROCESSES")


def _parse_chunk(args) -> list[Parsed]:
    chunk, format_name, options = args
    return [parse_one(c, format_name, options) for c in chunk]


def _parse_forked(cands, format_name, options, workers: int, progress: bool) -> list[Parsed]:
    """Parse on ``workers`` processes: this one and ``workers - 1`` forked ones, each a contiguous share.

    This process parses a share itself rather than wait: on a machine other jobs load, the
    forked workers may find no idle core, and then the split costs only the transfer back.
    """
    import multiprocessing

    bounds = [len(cands) * i // workers for i in range(workers + 1)]
    shares = [cands[bounds[i]:bounds[i + 1]] for i in range(workers)]
    bar = _progress(None, progress, total=len(cands))
    with multiprocessing.get_context("fork").Pool(workers - 1) as pool:
        pending = [pool.apply_async(_parse_chunk, ((share, format_name, options),)) for share in shares[1:]]
        mine = []
        for c in shares[0]:
            mine.append(parse_one(c, format_name, options))
            if bar is not None:
                bar.update(1)
        out = [mine]
        for job, share in zip(pending, shares[1:]):
            out.append(job.get())
            if bar is not None:
                bar.update(len(share))
    if bar is not None:
        bar.close()
    return [p for part in out for p in part]


def _progress(items, enabled, total=None):
    """``items`` behind a progress bar when ``enabled``; with ``items`` None, the bar itself (or None)."""
    if not enabled:
        return items
    from tqdm import tqdm

    if items is None:
        return tqdm(total=total, desc="parse", unit="file")
    return tqdm(items, desc="parse", unit="file")


def content_identity(p: Parsed) -> str:
    """What makes two sources the same data: their bytes, and what the reader made of them.

    The same bytes under another path (a core folder ingested, then its parent; a copy) are
    the same source. But an Avaatech file's *name* carries its core, section and position, so a
    renamed copy that names section 2 is new data: the identity therefore adds, for spectra and
    element tables, where their points sit (core, section, run, voltage, replicate, depth).
    """
    if p.records is None:  # recognised but not stored (a sum spectrum, a superseded table)
        return ""
    kind = kinds.for_reader(p.kind)
    where = kind.identity(p) if kind is not None else None
    return p.source.sha256 if where is None else f"{p.source.sha256}:{where}"
