"""The store under faults: writers killed mid-write, a second writer, readers during a write, damage.

Kill points are exact, not timed: tests/kill_wrapper.py runs the real CLI with a few functions
wrapped so that the process SIGKILLs itself at the k-th call of, say, the NeXus core-entry
writer or zarr's store ``set`` of a chunk. Before trusting a point, each test checks on disk
that the write really was cut there (a NeXus file present but unreadable, a Zarr group with
part of its files, a temporary pointer beside the old one, a half-deleted generation).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xrfhub
from xrfhub.errors import StoreError
from xrfhub import kinds
from xrfhub.store import layout
from xrfhub.store.generations import Store

from conftest import run_cli, spe_stem, spe_text, write_corpus
from kill_wrapper import POINTS

WRAPPER = Path(__file__).with_name("kill_wrapper.py")
TESTS = str(Path(__file__).parent)

# --------------------------------------------------------------------------- store states


def _state(store):
    """What a reader sees: generation, spectra and samples (all values and coordinates), sources."""
    gen = Store(store).current()
    spectra = xrfhub.open(store, index=False).load()
    samples = xrfhub.open(store, "samples", index=False).load()
    manifest = xrfhub.api.manifest(store)
    sources = {name: info["sha256"] for name, info in manifest["sources"].items()}
    return {"generation": gen.name, "spectra": spectra, "samples": samples, "sources": sources,
            "cores": sorted(manifest["cores"])}


def _same(a, b) -> bool:
    return (a["generation"] == b["generation"] and a["sources"] == b["sources"] and a["cores"] == b["cores"]
            and a["spectra"].identical(b["spectra"]) and a["samples"].identical(b["samples"]))


def _which(state, before, after) -> str:
    if _same(state, before):
        return "before"
    if _same(state, after):
        return "after"
    return "mixed"


# --------------------------------------------------------------------------- the kill points


@pytest.fixture
def kill_setup(tmp_path):
    """A store with 3 generations (so the next commit prunes one) and a 4-core ingest to interrupt.

    The ingest adds three scanned cores and rewrites a fourth (a lab-only core that gains a
    sample), so it writes four NeXus files and the spectra, samples and sources groups.
    """
    first = write_corpus(tmp_path / "first")
    more = write_corpus(tmp_path / "more", cores=("GeoB1", "GeoB2", "GeoB3"), seed=5)
    lab = more.files["pangaea"].rename(more.lab / "more-cores.tab")
    base = tmp_path / "base"
    xrfhub.ingest([first.scans], base)
    xrfhub.ingest([first.files["pangaea"]], base)
    xrfhub.rebuild(base)
    args = ["ingest", str(more.scans), str(lab), "--store"]
    done = tmp_path / "done"
    shutil.copytree(base, done)
    xrfhub.ingest([more.scans, lab], done)
    assert Store(base).current().name == "g000003" and Store(done).current().name == "g000004"
    return base, done, args


def _batch(tmp_path, jobs, parallel=2) -> dict[int, int]:
    plan = tmp_path / f"plan-{time.monotonic_ns()}.json"
    result = plan.with_suffix(".result.json")
    plan.write_text(json.dumps({"jobs": jobs, "parallel": parallel, "result": str(result)}))
    subprocess.run([sys.executable, str(WRAPPER), "batch", str(plan)], check=True, cwd=tmp_path,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])})
    return {int(k): v for k, v in json.loads(result.read_text()).items()}


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _readable(path: Path) -> bool:
    try:
        kinds.read_core(path)
    except (StoreError, RuntimeError):  # h5py: RuntimeError for some cut files (see report)
        return False
    return True


#: For kill points inside or after a NeXus write: the file and whether it must be complete.
NEXUS_EVIDENCE = {
    "nexus1:counts": ("GeoB1", False), "nexus1:inside": ("GeoB1", False), "nexus1:after": ("GeoB1", True),
    "nexus2:inside": ("GeoB2", False), "nexus3:after": ("GeoB3", True),
    "nexus4:inside": ("PS75_999-9", False), "nexus4:after": ("PS75_999-9", True),
}
#: For kill points inside or after a Zarr group: the group and whether it must be complete.
ZARR_EVIDENCE = {
    "zarr-spectra:metadata": ("spectra/ch2048", False), "zarr-spectra:chunk": ("spectra/ch2048", False),
    "zarr-spectra:after": ("spectra/ch2048", True), "zarr-samples:inside": ("samples", False),
    "zarr-samples:after": ("samples", True), "zarr-sources:inside": ("sources", False),
}


def _check_cut(point: str, store: Path, done: Path) -> None:
    """The kill really fell where its name says: look at what it left on disk."""
    gens = store / layout.GENERATIONS
    new = gens / "g000004"
    if point in NEXUS_EVIDENCE:
        core, complete = NEXUS_EVIDENCE[point]
        path = new / "nexus" / f"{core}.nxs"
        assert path.exists() and _readable(path) == complete, point
    if point in ZARR_EVIDENCE:
        group, complete = ZARR_EVIDENCE[point]
        written = _files(new / layout.HUB / group)
        full = _files(done / layout.GENERATIONS / "g000004" / layout.HUB / group)
        assert written and written <= full, (point, len(written), len(full))
        if complete:
            assert written == full, point
        else:
            # zarr writes a group's keys concurrently, so other keys of the group may already be
            # down when the kill lands, and the groups the write does not change are hard-linked
            # before it: for the last group written every file name can exist. What a kill inside
            # a group's write must never leave is a file the finished write does not have (the
            # witness file proves the kill landed at this point)
            hub_written = _files(new / layout.HUB)
            assert hub_written <= _files(done / layout.GENERATIONS / "g000004" / layout.HUB), point
        if point == "zarr-spectra:chunk":
            assert "counts/c/0/0" in written and "zarr.json" in written
    if point in ("generation:before", "lock:held", "parse:done"):
        assert not new.exists()
    if point == "generation:created":
        assert _files(new) == set() and (new / "nexus").is_dir()
    if point in ("manifest:before", "commit:before-sync", "commit:synced"):
        assert (new / layout.MANIFEST).exists() == (point != "manifest:before")
        assert {p.name for p in (new / "nexus").iterdir()} >= {"GeoB1.nxs", "GeoB2.nxs", "GeoB3.nxs"}
    if point == "manifest:tmp":
        assert not (new / layout.MANIFEST).exists() and list(new.glob(".manifest.json.*.tmp"))
    if point == "pointer:tmp":
        assert list(store.glob(".store.json.*.tmp")) and (new / layout.MANIFEST).exists()
    if point in ("pointer:replaced", "prune:before"):
        assert (gens / "g000001").exists()
    if point in ("prune:renamed", "prune:partial"):
        (doomed,) = gens.glob(".deleting-g000001-*")
        left = _files(doomed)
        full = _files(store.parent / "base" / layout.GENERATIONS / "g000001")
        assert left <= full and (len(left) < len(full)) == (point == "prune:partial")
    if point == "log:before":
        assert not (gens / "g000001").exists() and not list(gens.glob(".deleting-*"))
        assert not any(e.get("generation") == "g000004" for e in Store(store).read_log())


def kill_everywhere(tmp_path, kill_setup, points):
    base, done, args = kill_setup
    before, after = _state(base), _state(done)
    jobs = []
    for i, point in enumerate(points):
        store = tmp_path / f"k{i:02d}"
        shutil.copytree(base, store)
        jobs.append({"point": point, "argv": [*args, str(store)], "log": str(tmp_path / f"k{i:02d}.log"),
                     "witness": str(tmp_path / f"k{i:02d}.witness")})
    status = _batch(tmp_path, jobs)
    outcomes = {}
    for i, point in enumerate(points):
        store = tmp_path / f"k{i:02d}"
        assert status[i] == -9, f"{point}: the ingest was not killed (exit {status[i]}): " \
                                f"{Path(jobs[i]['log']).read_text()[-2000:]}"
        assert Path(jobs[i]["witness"]).exists(), point
        _check_cut(point, store, done)
        outcomes[point] = _which(_state(store), before, after)
        assert outcomes[point] == POINTS[point], f"kill at {point}: reader sees {outcomes[point]} state"
        report = xrfhub.validate(store, nxcheck=False)
        assert report.ok, f"{point}: {report.text()}"
    # re-running the same ingest completes the interrupted one
    reruns = [{**job, "point": None, "log": job["log"] + ".rerun"} for job in jobs]
    status = _batch(tmp_path, reruns)
    for i, point in enumerate(points):
        store = tmp_path / f"k{i:02d}"
        assert status[i] == 0, Path(reruns[i]["log"]).read_text()[-2000:]
        assert _same(_state(store), after), f"re-run after a kill at {point} did not complete the ingest"
        assert xrfhub.validate(store, nxcheck=False).ok
        names = {p.name for p in (store / layout.GENERATIONS).iterdir()}
        # the killed writer's generation folder or half-pruned folder is gone; (g000001 stays
        # where the kill came before pruning and the re-run had nothing left to commit)
        assert "g000004" in names and names <= {"g000001", "g000002", "g000003", "g000004"}, (point, names)
    return outcomes


#: One point of each kind for the quick run; ``-m slow`` runs all of POINTS.
QUICK_POINTS = ["generation:created", "nexus1:inside", "zarr-spectra:chunk", "pointer:tmp", "pointer:replaced",
                "prune:partial"]


def test_killed_ingest_leaves_the_previous_or_the_next_state(tmp_path, kill_setup):
    outcomes = kill_everywhere(tmp_path, kill_setup, QUICK_POINTS)
    assert list(outcomes.values()) == ["before"] * 4 + ["after"] * 2


@pytest.mark.slow
def test_killed_ingest_at_every_point(tmp_path, kill_setup):
    outcomes = kill_everywhere(tmp_path, kill_setup, list(POINTS))
    assert len(outcomes) == 27
    assert list(outcomes.values()).count("before") == 22 and list(outcomes.values()).count("after") == 5


# --------------------------------------------------------------------------- concurrency


def _wrapper(*args, **popen):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(WRAPPER), *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _cli(*args):
    return subprocess.Popen([sys.executable, "-m", "xrfhub_cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def test_second_writer_waits_or_stops_and_readers_see_the_last_commit(tmp_path, corpus):
    store = tmp_path / "hub"
    xrfhub.ingest([corpus.scans, corpus.files["pangaea"]], store)
    before = _state(store)
    more = write_corpus(tmp_path / "more", cores=("GeoB1",), seed=5, kv30_core=None)
    third = write_corpus(tmp_path / "third", cores=("GeoB2",), seed=6, kv30_core=None)
    held, release, asking = tmp_path / "held", tmp_path / "release", tmp_path / "asking"

    # writer 1 stops inside its first NeXus counts write until we release it
    first = _wrapper("hold", "--marker", held, "--release", release, "--", "ingest", more.scans, "--store", store)
    try:
        _wait_for(held, first)
        assert (store / layout.GENERATIONS / "g000002").exists()  # half-written, not committed
        # a second writer that will not wait stops at once with the lock message and exit code 4,
        # while a reader in another process queries the store (both started at once: they are slow to import)
        refused = _cli("ingest", third.scans, "--store", store, "--wait", "0")
        query = _cli("query", store, "--core", "SO264-09-2", "--out", tmp_path / "so.csv")
        # readers keep working and see the last committed state, in this process and in another
        assert _same(_state(store), before)
        assert xrfhub.query(store, tmp_path / "sel.csv", core="PS75-056-1") == 40
        out, err = refused.communicate()
        assert refused.returncode == 4, err
        assert "another xrfhub process is writing this store" in err and "--wait" in err
        out, err = query.communicate()
        assert query.returncode == 0 and "wrote 20 rows" in out, err
        # a writer that waits: it reaches the lock while writer 1 holds it, and finishes after it
        waiter = _wrapper("mark-lock", "--marker", asking, "--", "ingest", third.scans, "--store", store,
                          "--wait", "60")
        _wait_for(asking, waiter)
        time.sleep(0.5)
        assert waiter.poll() is None  # still waiting for the lock
    finally:
        release.touch()
    # while writer 1 commits, every read sees one committed state: before, then after
    seen = []
    while first.poll() is None:
        state = _state(store)
        seen.append(state["generation"])
        assert state["spectra"].sizes["spectrum"] in (60, 80)
        assert (state["spectra"].sizes["spectrum"] == 80) == (state["generation"] != "g000001")
    assert first.wait() == 0, first.communicate()
    assert waiter.wait(timeout=120) == 0, waiter.communicate()
    assert seen == sorted(seen)
    final = xrfhub.open(store)
    assert final.sizes["spectrum"] == 100 and Store(store).current().name == "g000003"
    events = [e for e in Store(store).read_log() if e.get("action") == "ingest"]
    assert [e["generation"] for e in events] == ["g000001", "g000002", "g000003"]
    assert any("GeoB1" in name for name in events[1]["added"]) and any("GeoB2" in name for name in events[2]["added"])


# --------------------------------------------------------------------------- corruption


@pytest.fixture(scope="module")
def two_chunk_store(tmp_path_factory):
    """A store whose counts span two chunks: rows 0-1023 are core PS75-056-1, rows 1024-1073 SO264-09-2."""
    root = tmp_path_factory.mktemp("two-chunks")
    rng = np.random.default_rng(11)
    for core, n in (("PS75-056-1", layout.SPECTRA_CHUNK_ROWS), ("SO264-09-2", 50)):
        folder = root / "scans" / core
        folder.mkdir(parents=True)
        for i in range(n):
            pos = 1.0 + 0.5 * i
            (folder / f"{spe_stem(core, '0000', pos)}.spe").write_text(
                spe_text(core, "0000", pos, minute=i, counts=rng.poisson(20, 256).astype(np.uint32)))
    store = root / "hub"
    xrfhub.ingest([root / "scans"], store)
    assert xrfhub.open(store).sizes == {"spectrum": 1074, "channel": 256}
    return store


@pytest.fixture
def store_copy(two_chunk_store, tmp_path):
    store = tmp_path / "hub"
    shutil.copytree(two_chunk_store, store)
    return store


def _chunk(store, row_chunk: int) -> Path:
    return Store(store).current().hub_path / "spectra" / "ch256" / "counts" / "c" / str(row_chunk) / "0"


def _problems(store) -> list[str]:
    report = xrfhub.validate(store, nxcheck=False)
    assert not report.ok
    return report.problems


def test_unreadable_chunk_names_its_cores_and_rebuild_repairs_it(store_copy):
    before = xrfhub.open(store_copy, index=False)["counts"].values
    path = _chunk(store_copy, 1)
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[:16]) + bytes(len(data) - 16))  # header kept, payload zeroed
    result = run_cli("validate", store_copy, check=False)
    assert result.returncode == 5, result.stdout
    (problem,) = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    assert "array 'counts'" in problem and "cannot be read" in problem and "spectrum rows 1024-1073" in problem
    assert "SO264-09-2" in problem and "PS75-056-1" not in problem
    assert f"xrfhub rebuild {store_copy}" in problem
    run_cli("rebuild", store_copy)
    assert xrfhub.validate(store_copy, nxcheck=False).ok
    np.testing.assert_array_equal(xrfhub.open(store_copy, index=False)["counts"].values, before)


def test_chunk_that_decodes_to_other_values_is_reported(store_copy):
    _chunk(store_copy, 1).write_bytes(_chunk(store_copy, 0).read_bytes())  # valid bytes, wrong rows
    (problem,) = _problems(store_copy)
    assert "array 'counts'" in problem and "differs from its write-time checksum" in problem
    assert "SO264-09-2" in problem and "PS75-056-1" not in problem and "xrfhub rebuild" in problem


def test_flipped_bytes_in_a_chunk_are_caught(store_copy):
    path = _chunk(store_copy, 0)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = _problems(store_copy)
    assert any("array 'counts'" in p and ("cannot be read" in p or "differs" in p) for p in problems)
    assert all("PS75-056-1" in p and "SO264-09-2" not in p and "xrfhub rebuild" in p for p in problems)
    run_cli("rebuild", store_copy)
    assert xrfhub.validate(store_copy, nxcheck=False).ok


def test_truncated_nexus_file_names_the_core_and_the_repair(store_copy):
    path = Store(store_copy).current().path / "nexus" / "SO264-09-2.nxs"
    os.truncate(path, path.stat().st_size // 2)
    result = run_cli("validate", store_copy, check=False)
    assert result.returncode == 5
    (problem,) = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    assert "core SO264-09-2 (nexus/SO264-09-2.nxs): cannot be read" in problem
    assert "history/" in problem and "into a new store" in problem


def test_truncated_nexus_file_with_an_intact_copy_in_an_older_generation(store_copy):
    xrfhub.rebuild(store_copy)  # g000002 hard-links g000001's NeXus files
    path = Store(store_copy).current().path / "nexus" / "SO264-09-2.nxs"
    damaged = path.with_name("damaged.tmp")
    damaged.write_bytes(path.read_bytes()[:5000])
    os.replace(damaged, path)  # a new, truncated file: g000001 still holds the intact one
    (problem,) = _problems(store_copy)
    intact = store_copy / "generations" / "g000001" / "nexus" / "SO264-09-2.nxs"
    assert f"copy the intact version {intact} over {path}" in problem
    shutil.copyfile(intact, path)
    assert xrfhub.validate(store_copy, nxcheck=False).ok


def test_hub_that_disagrees_with_a_replaced_nexus_file(store_copy):
    gen = Store(store_copy).current()
    path = gen.path / "nexus" / "SO264-09-2.nxs"
    record = kinds.read_core(path)
    (scan,) = record.scans
    record.scans[scan].counts[3] += 1  # a valid file with other content
    kinds.write_core(path.with_name("new.tmp"), record)
    os.replace(path.with_name("new.tmp"), path)
    problems = _problems(store_copy)
    assert any(p.startswith("core SO264-09-2") and "differ from the checksum recorded" in p
               and f"xrfhub rebuild {store_copy}" in p for p in problems)
    assert any("hub spectra/ch256: counts of core SO264-09-2" in p and "disagree with its NeXus file" in p
               and "xrfhub rebuild" in p for p in problems)
    assert not any("PS75-056-1" in p for p in problems)
    run_cli("rebuild", store_copy)
    assert xrfhub.validate(store_copy, nxcheck=False).ok
    counts = xrfhub.open(store_copy).sel(core="SO264-09-2")["counts"].values
    np.testing.assert_array_equal(counts[3], record.scans[scan].counts[3])  # the hub follows the NeXus file
