"""Work on this machine's other cores by forking: when it pays, and one child running beside us.

Parsing and writing hold the GIL (Python parsing, h5py's global lock), so threads do not help;
forked processes start in milliseconds with every module already imported and the data already
in memory (copy on write), where fresh interpreters would take seconds and pickling. Both users
(``sources.parse_all`` and ``build.write_generation``) share one rule for when to fork.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import threading


def usable_processes(n_items: int, min_items: int, env: str) -> int:
    """How many processes to work ``n_items`` on here (1: this one alone).

    ``env`` names the variable that sets the count (``1`` forbids forking). Otherwise one per
    usable core, but 1 when the work is under ``min_items`` (forking would cost more than it
    saves) or other jobs already keep every core busy (1-minute load average >= cores: a second
    process would only add its own cost; measured on a 2-core machine under a load of 5-6, a split
    parse took 4.1-4.4 s against 3.4-3.7 s in-process).
    """
    wanted = os.environ.get(env, "").strip()
    if wanted:
        count = max(1, int(wanted))
    else:
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if n_items < min_items:
            return 1
        if hasattr(os, "getloadavg") and os.getloadavg()[0] >= count:
            return 1
    if count > 1 and not fork_is_safe():
        return 1
    return max(1, min(count, n_items))


def fork_is_safe() -> bool:
    """Fork copies only the calling thread: with other threads running (a zarr event loop, a
    notebook's), a lock one of them held would stay held in the child forever.

    tqdm's monitor thread (started by the first progress bar, so in every command) is the one
    exception: it only ever takes tqdm's own lock, and no forked child of ours draws a bar.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    return all(type(t).__name__ == "TMonitor" and type(t).__module__.startswith("tqdm") for t in others)


class Beside:
    """``fn(*args)`` in one forked child while this process goes on; :meth:`join` returns when it
    is done and raises what it raised (the same exception where it pickles).

    The child exits on its own if this process dies (``fn`` should call :func:`orphaned` between
    steps): a killed writer's child must not keep writing into a folder the next writer removes.
    """

    def __init__(self, fn, *args):
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
        self._proc.start()
        send.close()

    def join(self) -> None:
        try:
            outcome = self._recv.recv()
        except EOFError:  # died without a word (killed, out of memory)
            outcome = RuntimeError("the forked writer died without reporting")
        finally:
            self._recv.close()
            self._proc.join()
        if outcome is not None:
            raise outcome
        if self._proc.exitcode:
            raise RuntimeError(f"the forked writer exited with code {self._proc.exitcode}")


    def cancel(self) -> None:
        """Stop the child (this process failed: what it writes will not be committed)."""
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join()
        self._recv.close()


_PARENT: int | None = None


def orphaned() -> bool:
    """True in a :class:`Beside` child whose parent has died."""
    return _PARENT is not None and os.getppid() != _PARENT


def _child(send, fn, args) -> None:
    global _PARENT
    _PARENT = os.getppid()
    try:
        fn(*args)
        outcome = None
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        outcome = exc
    try:
        send.send(outcome)
    except (pickle.PicklingError, TypeError, AttributeError):
        send.send(RuntimeError(f"{type(outcome).__name__}: {outcome}"))
    send.close()
