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
    """Hard-link every file under ``src`` into ``dst`` (an immutable parent reused, not copied)."""
    for folder, _dirs, names in os.walk(src):
        rel = Path(folder).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in names:
            link_or_copy(Path(folder) / name, dst / rel / name)
