"""Run the real ``xrfhub`` command line and SIGKILL it (or hold it) at a chosen point of a write.

Used by tests/test_faults.py; no hook lives in the production code. The wrapper replaces a few
functions of xrfhub (and zarr's local store ``set``) by wrappers that, at their k-th matching
call, kill the process with SIGKILL before or after the original runs, then starts the CLI
through ``runpy`` exactly as ``python -m xrfhub_cli`` would::

    python tests/kill_wrapper.py run POINT [--witness FILE] -- ingest FILES --store STORE
    python tests/kill_wrapper.py hold --marker FILE --release FILE -- ingest ...
    python tests/kill_wrapper.py mark-lock --marker FILE -- ingest ...
    python tests/kill_wrapper.py batch PLAN.json

``hold`` pauses inside the first NeXus counts write (after touching ``--marker``) until
``--release`` exists, so a test can look at a store while a writer is half-way through it.
``mark-lock`` touches ``--marker`` just before the writer asks for the lock. ``batch`` imports
xrfhub once and forks one child per job of a JSON plan (``{"jobs": [{"point", "argv", "log",
"witness"}], "parallel": N, "result": FILE}``); each child installs its point and runs the CLI,
and the parent records every child's exit status (``-9`` for a kill). Forking saves the ~2 s of
imports per kill point.
"""
from __future__ import annotations

import functools
import json
import os
import runpy
import signal
import sys
import threading
import time
from pathlib import Path

_WITNESS: str | None = None


def _die(detail: str = "") -> None:
    """Leave a note of where we died (for the test's evidence), then SIGKILL ourselves."""
    if _WITNESS:
        with open(_WITNESS, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"detail": detail}))
            fh.flush()
            os.fsync(fh.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


def _hook(owner, attr: str, nth: int, *, before: bool, when=None, action=None):
    """Wrap ``owner.attr``: its ``nth`` call matching ``when(*args)`` runs ``action(*args)``."""
    original = getattr(owner, attr)
    calls = [0]
    lock = threading.Lock()
    act = action or (lambda *a, **k: _die(f"{attr} {a[0] if a else ''}"))

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        hit = False
        if when is None or when(*args, **kwargs):
            with lock:
                calls[0] += 1
                hit = calls[0] == nth
        if hit and before:
            act(*args, **kwargs)
        result = original(*args, **kwargs)
        if hit and not before:
            act(*args, **kwargs)
        return result

    setattr(owner, attr, wrapper)


def _hook_zarr_set(prefix: str, nth: int) -> None:
    """Die right after zarr has stored the ``nth`` key under ``prefix`` (metadata or a chunk)."""
    from zarr.storage import LocalStore

    original = LocalStore.set
    calls = [0]

    async def set(self, key, value):  # noqa: A001 - the name zarr calls
        await original(self, key, value)
        if key.startswith(prefix):
            calls[0] += 1
            if calls[0] == nth:
                _die(f"zarr {key}")

    LocalStore.set = set


def _first_is(name: str):
    """A call whose first argument is a path named ``name`` (write_json_atomic(path, content))."""
    return lambda *a, **k: Path(a[0]).name == name


def _target_is(name: str):
    """An ``os.replace(src, dst)`` onto a path named ``name``."""
    return lambda *a, **k: len(a) > 1 and Path(a[1]).name == name


def _prune_partially(path, *args, **kwargs) -> None:
    """Delete about half of a doomed generation's files, then die: a crash in the middle of pruning."""
    files = sorted(p for p in Path(path).rglob("*") if p.is_file())
    for p in files[: len(files) // 2]:
        p.unlink()
    _die(f"pruning {path}: {len(files) // 2} of {len(files)} files deleted")


def install(point: str) -> None:
    """Install one kill point by name (see POINTS)."""
    import shutil

    import xrfhub.ingestion
    from xrfhub import build
    import zarr

    from xrfhub.store import catalog, files, generations, hub, nexus, nxrun, nxscan, rows
    from xrfhub.store.generations import Store

    doomed = lambda path, *a, **k: Path(path).name.startswith(".deleting-")  # noqa: E731
    table = {
        # before any write
        "lock:held": lambda: _hook(Store, "_remove_uncommitted", 1, before=False),
        "parse:done": lambda: _hook(xrfhub.ingestion, "parse_all", 1, before=False),
        "generation:before": lambda: _hook(Store, "new_generation", 1, before=True),
        "generation:created": lambda: _hook(Store, "new_generation", 1, before=False),
        # inside and after the NeXus files (cores in sorted order; the 4th holds lab samples only)
        "nexus1:counts": lambda: _hook(nxscan, "write_counts", 1, before=False),
        "nexus1:inside": lambda: _hook(nexus, "_write_core_entry", 1, before=True),
        "nexus1:after": lambda: _hook(nexus, "write_core", 1, before=False),
        "nexus2:inside": lambda: _hook(nexus, "_write_core_entry", 2, before=True),
        "nexus3:after": lambda: _hook(nexus, "write_core", 3, before=False),
        "nexus4:inside": lambda: _hook(nexus, "_write_core_entry", 4, before=True),
        "nexus4:after": lambda: _hook(nexus, "write_core", 4, before=False),
        # inside and after the Zarr groups
        "zarr-spectra:metadata": lambda: _hook_zarr_set("spectra/", 3),
        "zarr-spectra:chunk": lambda: _hook_zarr_set("spectra/ch2048/counts/c/", 1),
        "zarr-spectra:after": lambda: _hook(rows, "write_group", 1, before=False,
                                            when=lambda *a, **k: a[2].startswith("spectra/")),
        "zarr-samples:inside": lambda: _hook_zarr_set("samples/", 12),
        "zarr-samples:after": lambda: _hook(rows, "write_group", 1, before=False,
                                            when=lambda *a, **k: a[2] == "samples"),
        # the append path (parent hard-linked, arrays resized, chunks rewritten, attributes last)
        "append:linked": lambda: _hook(build, "link_tree", 1, before=False),
        "append:resized": lambda: _hook(zarr.Array, "resize", 1, before=False),
        "append:attrs": lambda: _hook(rows, "write_attrs", 1, before=True),
        "index:written": lambda: _hook(catalog, "write", 1, before=False),
        # a prediction run: parent linked, run file, its hub group, manifest, pointer
        "run:linked": lambda: _hook(files, "link_tree", 1, before=False),
        "run:file": lambda: _hook(nxrun, "write", 1, before=False),
        "run:group": lambda: _hook_zarr_set("predictions/", 2),
        "run:group-done": lambda: _hook(rows, "write_group", 1, before=False),
        "run:manifest": lambda: _hook(generations, "write_json_atomic", 1, before=True,
                                      when=_first_is("manifest.json")),
        "zarr-sources:inside": lambda: _hook_zarr_set("sources/", 4),
        # between the generation folder and the pointer
        "manifest:before": lambda: _hook(build, "write_json_atomic", 1, before=True,
                                         when=_first_is("manifest.json")),
        "manifest:tmp": lambda: _hook(os, "replace", 1, before=True, when=_target_is("manifest.json")),
        "commit:before-sync": lambda: _hook(Store, "commit", 1, before=True),
        "commit:synced": lambda: _hook(generations, "_sync_tree", 1, before=False),
        "pointer:tmp": lambda: _hook(os, "replace", 1, before=True, when=_target_is("store.json")),
        # after the pointer
        "pointer:replaced": lambda: _hook(os, "replace", 1, before=False, when=_target_is("store.json")),
        "prune:before": lambda: _hook(Store, "_prune", 1, before=True),
        "prune:renamed": lambda: _hook(shutil, "rmtree", 1, before=True, when=doomed),
        "prune:partial": lambda: _hook(shutil, "rmtree", 1, before=True, when=doomed, action=_prune_partially),
        "log:before": lambda: _hook(Store, "log", 1, before=True),
    }
    if point not in table:
        raise SystemExit(f"unknown kill point {point!r}; known: {', '.join(table)}")
    table[point]()


#: Every kill point, in the order a write passes them, with the state a reader must see after it.
POINTS = {
    "lock:held": "before", "parse:done": "before", "generation:before": "before",
    "generation:created": "before", "nexus1:counts": "before", "nexus1:inside": "before",
    "nexus1:after": "before", "nexus2:inside": "before", "nexus3:after": "before",
    "nexus4:inside": "before", "nexus4:after": "before", "zarr-spectra:metadata": "before",
    "zarr-spectra:chunk": "before", "zarr-spectra:after": "before", "zarr-samples:inside": "before",
    "zarr-samples:after": "before", "zarr-sources:inside": "before", "manifest:before": "before",
    "manifest:tmp": "before", "commit:before-sync": "before", "commit:synced": "before",
    "pointer:tmp": "before", "pointer:replaced": "after", "prune:before": "after",
    "prune:renamed": "after", "prune:partial": "after", "log:before": "after",
}


#: Kill points of the append path (an ingest of new cores into a store) and of a prediction run
#: write (tests/test_kill_writes.py), with the state a reader must see after each.
APPEND_POINTS = {"append:linked": "before", "append:resized": "before", "append:attrs": "before",
                 "index:written": "before", "pointer:tmp": "before", "pointer:replaced": "after"}
RUN_POINTS = {"run:linked": "before", "run:file": "before", "run:group": "before", "run:group-done": "before",
              "run:manifest": "before", "pointer:tmp": "before", "pointer:replaced": "after"}


def _hold(marker: str, release: str) -> None:
    """Pause inside the first NeXus counts write until the test releases us."""
    from xrfhub.store import nxscan

    def wait(*args, **kwargs):
        Path(marker).touch()
        deadline = time.monotonic() + 120  # never hang a test run for ever
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.02)

    _hook(nxscan, "write_counts", 1, before=False, action=wait)


def _mark_lock(marker: str) -> None:
    import filelock

    _hook(filelock.FileLock, "acquire", 1, before=True, action=lambda *a, **k: Path(marker).touch())


def run_cli(argv: list[str]) -> int:
    """Run ``xrfhub ARGV`` in this process as ``python -m xrfhub_cli`` would; return the exit code."""
    sys.argv = ["xrfhub", *argv]
    try:
        runpy.run_module("xrfhub_cli", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def run_script(path: str, argv: list[str]) -> int:
    """Run a Python script (a writer other than the CLI, e.g. a prediction run) as ``__main__``."""
    sys.argv = [path, *argv]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _batch(plan_path: str) -> int:
    """Fork one child per job (``parallel`` at a time) after importing xrfhub once."""
    plan = json.loads(Path(plan_path).read_text())
    import xrfhub_cli.main  # noqa: F401 - import everything heavy before forking
    import xrfhub.build  # noqa: F401
    import xrfhub.ingestion  # noqa: F401
    import xrfhub.sources  # noqa: F401
    import xarray  # noqa: F401
    import zarr.storage  # noqa: F401

    global _WITNESS
    jobs = list(enumerate(plan["jobs"]))
    running: dict[int, int] = {}
    status: dict[int, int] = {}
    while jobs or running:
        while jobs and len(running) < plan.get("parallel", 2):
            index, job = jobs.pop(0)
            pid = os.fork()
            if pid == 0:  # the child: one ingest, killed at its point (or completed if point is None)
                code = 1
                try:
                    fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    _WITNESS = job.get("witness")
                    if job.get("point"):
                        install(job["point"])
                    code = run_script(job["script"], job["argv"]) if job.get("script") else run_cli(job["argv"])
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            running[pid] = index
        pid, raw = os.wait()
        status[running.pop(pid)] = -os.WTERMSIG(raw) if os.WIFSIGNALED(raw) else os.WEXITSTATUS(raw)
    Path(plan["result"]).write_text(json.dumps({str(k): v for k, v in sorted(status.items())}))
    return 0


def main(args: list[str]) -> int:
    global _WITNESS
    mode, rest = args[0], args[1:]
    if mode == "batch":
        return _batch(rest[0])
    split = rest.index("--")
    options, argv = rest[:split], rest[split + 1:]
    opts = dict(zip(options[1::2], options[2::2])) if mode == "run" else dict(zip(options[::2], options[1::2]))
    if mode == "run":
        _WITNESS = opts.get("--witness")
        install(options[0])
    elif mode == "hold":
        _hold(opts["--marker"], opts["--release"])
    elif mode == "mark-lock":
        _mark_lock(opts["--marker"])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return run_cli(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
