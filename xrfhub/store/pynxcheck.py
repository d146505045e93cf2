"""pynxtools' validator (``pynx validate``) run on our core files, as an outsider runs it.

pynxtools looks application definitions up in one NeXus definitions tree (``NEXUS_DEF_PATH``:
``base_classes/``, ``applications/``, ``contributed_definitions/``). Ours is not in the tree it
ships, and without it ``pynx validate`` stops with an AttributeError. ``definitions_tree`` builds
a tree that is pynxtools' own (symbolic links, nothing copied) plus our NXDL among the
contributed definitions; ``validate`` runs the ``pynx validate --ignore-undocumented`` command
on one file in a fresh process with ``NEXUS_DEF_PATH`` pointing there, and reads its report.

pynx exits 0 whatever it finds, so the verdict is read from its lines: every entry that names
a definition must be reported "valid", and no other warning may appear. A file with no such
entry (a core with lab samples only, a diffraction series) has nothing for pynx to check; that
is reported, not counted as a failure.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StoreError
from .nxvalidate import schema_path

NO_ENTRY = "Could not find any valid entry"


@dataclass
class PynxReport:
    path: Path
    valid_entries: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)   # every warning other than NO_ENTRY
    checked_nothing: bool = False                        # no entry names a definition
    output: str = ""

    @property
    def ok(self) -> bool:
        return not self.findings


def pynxtools_definitions() -> Path:
    try:
        import pynxtools
    except ImportError as exc:
        raise StoreError("pynxtools is not installed (pip install 'xrfhub[test]' or pynxtools)") from exc
    return Path(pynxtools.__file__).resolve().parent / "definitions"


def definitions_tree(dest, appdef=None) -> Path:
    """A NeXus definitions tree at ``dest``: pynxtools' own, linked, with our NXDL added."""
    src, dest = pynxtools_definitions(), Path(dest)
    appdef = Path(appdef) if appdef else schema_path()
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "contributed_definitions").mkdir(parents=True)
    for item in src.iterdir():
        if item.name != "contributed_definitions":
            (dest / item.name).symlink_to(item, target_is_directory=item.is_dir())
    for item in (src / "contributed_definitions").iterdir():
        if item.name != appdef.name:
            (dest / "contributed_definitions" / item.name).symlink_to(item)
    shutil.copyfile(appdef, dest / "contributed_definitions" / appdef.name)
    return dest


def pynx_command() -> list[str]:
    exe = Path(sys.executable).with_name("pynx")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from pynxtools.cli import pynx; pynx()"]


def validate(path, defs, *, timeout: float = 300) -> PynxReport:
    """Run ``pynx validate --ignore-undocumented PATH`` against the tree ``defs``."""
    path = Path(path)
    env = {**os.environ, "NEXUS_DEF_PATH": str(defs)}
    done = subprocess.run([*pynx_command(), "validate", "--ignore-undocumented", str(path)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    return _report(path, (done.stdout + done.stderr).strip(), done.returncode)


_MARK = "@@xrfhub-pynxcheck@@ "
#: one process for many files: the function ``pynx validate`` calls, once per file (importing
#: pynxtools costs seconds; validating one of our files, a fraction of one)
_MANY = f"""
import sys, traceback
from pynxtools.dataconverter.validate_file import validate
for path in sys.argv[1:]:
    print({_MARK!r} + path, file=sys.stderr, flush=True)
    try:
        validate(path, True)
    except Exception:
        traceback.print_exc()
    sys.stderr.flush()
"""


def validate_many(paths, defs, *, timeout: float = 600) -> dict[Path, PynxReport]:
    """What ``pynx validate --ignore-undocumented`` reports on each of ``paths``, in one process."""
    paths = [Path(p) for p in paths]
    env = {**os.environ, "NEXUS_DEF_PATH": str(defs)}
    done = subprocess.run([sys.executable, "-c", _MANY, *map(str, paths)], capture_output=True,
                          text=True, env=env, timeout=timeout)
    chunks = (done.stderr + done.stdout).split(_MARK)
    out = {}
    for chunk in chunks[1:]:
        name, _, text = chunk.partition("\n")
        out[Path(name)] = _report(Path(name), text.strip(), 0)
    for p in paths:
        if p not in out:
            out[p] = PynxReport(p, findings=[f"not validated (exit {done.returncode}): {chunks[0][-2000:]}"])
    return out


def _report(path: Path, out: str, returncode: int) -> PynxReport:
    report = PynxReport(path, output=out)
    for line in out.splitlines():
        if " is valid according to " in line:
            report.valid_entries.append(line.split("`")[1])
        elif NO_ENTRY in line:
            report.checked_nothing = True
        elif line.strip():
            report.findings.append(line.strip())
    if returncode != 0 and not report.findings:
        report.findings.append(f"pynx exited {returncode}")
    return report
