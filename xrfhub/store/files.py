"""Files of immutable generations: reuse (hard links) and plain writes before a commit.

The bottom of the store package: nothing here imports the rest of xrfhub.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def write_json_bytes(path: Path, content: dict) -> None:
    """Write a JSON file inside a generation that is not committed yet (the commit fsyncs it)."""
    text = json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def link_or_copy(src: Path, dst: Path) -> None:
    """Reuse an immutable file in a new generation without copying bytes where possible."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def link_tree(src: Path, dst: Path) -> None:
    """Hard-link every file under ``src`` into ``dst`` (an immutable parent reused, not copied).

    Plain strings and ``os.scandir``: a generation of a million spectra holds thousands of
    files, and path objects cost more than the links themselves.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    os.makedirs(dst, exist_ok=True)
    stack = [(src, dst)]
    while stack:
        a, b = stack.pop()
        with os.scandir(a) as entries:
            for e in entries:
                target = os.path.join(b, e.name)
                if e.is_dir(follow_symlinks=False):
                    os.makedirs(target, exist_ok=True)
                    stack.append((e.path, target))
                else:
                    try:
                        os.link(e.path, target)
                    except OSError:
                        shutil.copy2(e.path, target)
