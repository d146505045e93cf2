"""Where a MAX data set's parts are: split folders (train/test) of pre-training and fine-tuning.

A split folder holds an info file and ``spe/`` (and, for fine-tuning, ``target/``). Finding them
is kept apart from reading them (``max_dataset``) so that ``sources.find`` can recognise a data
set folder cheaply, without reading any spectrum.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_JUNK = {".DS_Store", "Thumbs.db", "desktop.ini"}
_SPLIT_NAMES = {"train", "test", "val", "valid", "validation"}


@dataclass(frozen=True)
class SplitFolder:
    """One ``{train,test}`` folder of the layout: ``info.csv`` + ``spe/`` (+ ``target/``)."""

    path: Path
    rel: str  # posix path from the data set root ("" when the root is this folder)
    role: str  # "pretrain" or "finetune"
    split: str  # the folder's name: "train", "test", ...
    target: str = ""  # fine-tuning: the target folder's name as written, e.g. "CaCO3%"


def _subdirs(path: Path) -> list[Path]:
    try:  # scandir knows the entry types: no stat per file in folders of 10^4 .spe files
        with os.scandir(path) as entries:
            return sorted(path / e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def _info_candidates(path: Path) -> list[Path]:
    if (path / "info.csv").is_file():
        return [path / "info.csv"]
    try:
        return sorted(p for p in path.glob("info*.csv") if p.is_file())
    except OSError:
        return []


def _has_csv(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:  # stops at the first hit: spe/ may hold 10^5 files
            return any(e.name.lower().endswith(".csv") for e in entries)
    except OSError:
        return False


def _is_split(path: Path) -> bool:
    """``spe/`` holding CSV files, plus an info file, ``target/`` or a split name: a split folder.

    A missing ``info.csv`` must still be recognised (and then refused with a clear message),
    so the split name or ``target/`` is enough beside ``spe/``; an Avaatech ``spe/`` folder of
    ``.spe`` files is not mistaken for one.
    """
    if not (path / "spe").is_dir() or not _has_csv(path / "spe"):
        return False
    return (path.name.lower() in _SPLIT_NAMES or (path / "target").is_dir()
            or bool(_info_candidates(path)))


def _split(path: Path, rel: str, target_name: str) -> SplitFolder:
    finetune = (path / "target").is_dir()
    return SplitFolder(path, rel, "finetune" if finetune else "pretrain", path.name,
                       target_name if finetune else "")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _targets(folder: Path, prefix: str) -> list[SplitFolder]:
    return [SplitFolder(s, _join(_join(prefix, t.name), s.name), "finetune", s.name, t.name)
            for t in _subdirs(folder) for s in _subdirs(t) if _is_split(s)]


def split_folders(root) -> list[SplitFolder]:
    """The split folders of a data set rooted at ``root`` (empty when it is none).

    ``root`` may be the data set folder (holding ``pretrain/`` and/or ``finetune/``), either
    of those two, one target folder of ``finetune/``, or a single split folder.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    if _is_split(root):
        parent = root.parent.name if root.name.lower() in _SPLIT_NAMES else root.name
        return [_split(root, "", parent)]
    out: list[SplitFolder] = []
    if (root / "pretrain").is_dir():
        out += [SplitFolder(s, f"pretrain/{s.name}", "pretrain", s.name)
                for s in _subdirs(root / "pretrain") if _is_split(s)]
    if (root / "finetune").is_dir():
        out += _targets(root / "finetune", "finetune")
    if out:
        return out
    out = [_split(s, s.name, root.name) for s in _subdirs(root) if _is_split(s)]
    if not out and root.name.lower() == "finetune":
        out = _targets(root, "")
    return out


def sniff_dir(path) -> bool:
    """True for a folder laid out as a MAX data set (see :func:`split_folders`)."""
    return bool(split_folders(path))


def dataset_files(root) -> list[Path]:
    """Every file of the data set: all files under its split folders, sorted.

    Files elsewhere under ``root`` (notes, a ``legacy/`` folder) are not part of it, so editing
    them does not make the data set "changed".
    """
    files: set[Path] = set()
    for sf in split_folders(root):
        for folder, dirs, names in os.walk(sf.path):  # os.walk: no stat per file, unlike rglob
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            files.update(Path(folder) / n for n in names if n not in _JUNK and not n.startswith("."))
    return sorted(files, key=lambda p: p.as_posix())  # all share the root: same order as relative


def _unlisted(folder: Path, sub: str, used: set[str]) -> list[str]:
    """Files in ``folder`` (``spe/`` or ``target/``) that no info.csv row named."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if e.is_file() and f"{sub}/{e.name}" not in used
                          and e.name not in _JUNK and not e.name.startswith("."))
    except OSError:
        return []


# --------------------------------------------------------------------------- small files
