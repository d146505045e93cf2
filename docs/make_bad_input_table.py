"""Write docs/bad-input.md: every kind of bad input tried through the real CLI, as a user meets it.

Each case starts from the same small store (two scanned cores, a PANGAEA table: generation
g000001, 60 spectra, 11 lab samples), does one bad thing with ``python -m xrfhub_cli``, and
records the exit code, the message on stderr (the temporary folder shortened to ``…/``) and
what the store holds afterwards. Run from the repository root::

    python docs/make_bad_input_table.py            # rewrites docs/bad-input.md
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import xrfhub
from xrfhub.store.generations import Store

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import spe_stem, spe_text, synthetic_counts, write_corpus  # noqa: E402

OUT = ROOT / "docs" / "bad-input.md"
KEEP_MARKER = "<!-- sections below are kept by make_bad_input_table.py -->"


def cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xrfhub_cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def state(store: Path) -> tuple:
    gen = Store(store).current()
    spectra = xrfhub.open(store, index=False)
    samples = xrfhub.open(store, "samples", index=False)
    return gen.name, spectra.sizes["spectrum"], samples.sizes["sample"], spectra["counts"].values


def message(result: subprocess.CompletedProcess, tmp: Path) -> str:
    """The lines a user reads: errors on stderr (progress bars dropped), else the PROBLEM lines."""
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    lines += [ln for ln in result.stdout.splitlines() if ln.startswith(("PROBLEM", "skipped", "warning"))
              or "unrecognised file(s)" in ln]
    text = " / ".join(lines) or result.stdout.strip().splitlines()[-1]
    return text.replace(str(tmp) + os.sep, "…/").replace(str(tmp), "…")


# ---------------------------------------------------------------------------- the cases
# Each takes (tmp, corpus, store) and returns the CLI arguments to run (or a callable result).

def _scan_file(corpus, name: str) -> Path:
    return corpus.scans / "SO264-09-2" / "Run 1 at  10kV" / name


def _spe(rng, depth, minute, n=2048, core="SO264-09-2"):
    return spe_text(core, "0000", depth, minute=minute, counts=synthetic_counts(rng, 5, n))


def truncated_spe(tmp, corpus, store, rng):
    path = tmp / "new" / f"{spe_stem('SO264-09-2', '0000', 300.0)}.spe"
    path.write_text(_spe(rng, 300.0, 50)[:-2000])
    return ["ingest", path, "--store", store]


def binary_file(tmp, corpus, store, rng):
    path = tmp / "new" / "scan.spe"
    path.write_bytes(b"$SPEC_ID:\n\x00\xff\x13garbage" * 50)
    return ["ingest", path, "--store", store]


def wrong_channels(tmp, corpus, store, rng):
    path = tmp / "new" / f"{spe_stem('SO264-09-2', '0000', 300.0)}.spe"
    path.write_text(_spe(rng, 300.0, 50, n=1024))
    return ["ingest", path, "--store", store]


def duplicate_depth(tmp, corpus, store, rng):
    path = tmp / "new" / "copy of 15 mm.spe"
    path.write_text(_spe(rng, 15.0, 50))
    return ["ingest", path, "--store", store]


def non_monotonic(tmp, corpus, store, rng):
    for depth, minute in ((50.0, 0), (20.0, 1)):  # measured later, but higher up the core
        (tmp / "new" / f"{spe_stem('GeoB9', '0000', depth)}.spe").write_text(_spe(rng, depth, minute, core="GeoB9"))
    return ["ingest", tmp / "new", "--store", store]


def spe_unit(tmp, corpus, store, rng):
    path = tmp / "new" / f"{spe_stem('SO264-09-2', '0000', 300.0)}.spe"
    path.write_text(_spe(rng, 300.0, 50).replace("$TUBE_CUR:\n0.150", "$TUBE_CUR:\n150 parsecs"))
    return ["ingest", path, "--store", store]


def lab_unit(tmp, corpus, store, rng):
    path = tmp / "new" / "lab.csv"
    path.write_text("core,depth [cm],CaCO3 [parsecs]\nPS75-056-1,1.5,20.1\n")
    return ["ingest", path, "--store", store]


def pangaea_open(tmp, corpus, store, rng):
    path = tmp / "new" / "other.tab"
    text = corpus.files["pangaea"].read_text().replace("*/\n", "")
    path.write_text(text)
    return ["ingest", path, "--store", store]


def lab_no_depth(tmp, corpus, store, rng):
    path = tmp / "new" / "lab.csv"
    path.write_text("core,CaCO3 [%]\nPS75-056-1,20.1\n")
    return ["ingest", path, "--store", store]


def lab_no_depth_named(tmp, corpus, store, rng):
    return [*lab_no_depth(tmp, corpus, store, rng), "--format", "lab-csv"]


def lab_not_a_number(tmp, corpus, store, rng):
    path = tmp / "new" / "lab.csv"
    path.write_text("core,depth [cm],CaCO3 [%]\nPS75-056-1,1.5,20.1\nPS75-056-1,2.5,twenty\n")
    return ["ingest", path, "--store", store]


def changed_file(tmp, corpus, store, rng):
    path = corpus.files["SO264-09-2/10/15"]
    path.write_text(spe_text("SO264-09-2", "0000", 15.0, minute=1, counts=np.full(2048, 7, np.uint32)))
    return ["ingest", corpus.scans, "--store", store]


def unknown_file(tmp, corpus, store, rng):
    path = tmp / "new" / "notes.txt"
    path.write_text("hello, these are my notes\n")
    return ["ingest", path, "--store", store]


def empty_file(tmp, corpus, store, rng):
    path = tmp / "new" / "empty.spe"
    path.write_bytes(b"")
    return ["ingest", path, "--store", store]


def second_writer(tmp, corpus, store, rng):
    more = write_corpus(tmp / "more", cores=("GeoB1",), seed=5, kv30_core=None)

    def run():
        with Store(store).writer():  # another process's ingest, as far as the lock can tell
            return cli("ingest", more.scans, "--store", store, "--wait", "1", cwd=tmp)
    return run


def truncated_nexus(tmp, corpus, store, rng):
    path = Store(store).current().path / "nexus" / "SO264-09-2.nxs"
    os.truncate(path, path.stat().st_size // 2)
    return ["validate", store]


def damaged_chunk(tmp, corpus, store, rng):
    path = Store(store).current().hub_path / "spectra" / "ch2048" / "counts" / "c" / "0" / "0"
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    return ["validate", store]


def skip_bad(tmp, corpus, store, rng):
    more = write_corpus(tmp / "more", cores=("GeoB1",), seed=5, kv30_core=None)
    (more.scans / "GeoB1" / "broken.spe").write_text("$SPEC_ID:\nGeoB1_0000   3.0mm\n$DATA:\n0 2047\n1 2 3\n")
    (more.scans / "GeoB1" / "empty.spe").write_bytes(b"")
    return ["ingest", more.scans, "--store", store, "--skip-bad"]


CASES = [
    ("Truncated `.spe` (counts cut short)", truncated_spe),
    ("Binary / garbled file named `.spe`", binary_file),
    ("Wrong channel count for its scan (1024 in a 2048-channel scan)", wrong_channels),
    ("Duplicate depth in a scan (a copy under another name)", duplicate_depth),
    ("Non-monotonic depths (later spectrum higher up the core)", non_monotonic),
    ("Unknown unit in a `.spe` header (`$TUBE_CUR: 150 parsecs`)", spe_unit),
    ("Unknown unit in a lab table header (`CaCO3 [parsecs]`)", lab_unit),
    ("PANGAEA data description never closed (`*/` missing)", pangaea_open),
    ("Lab CSV without a depth column", lab_no_depth),
    ("Lab CSV without a depth column, format named (`--format lab-csv`)", lab_no_depth_named),
    ("Non-numeric lab value (`twenty`)", lab_not_a_number),
    ("Changed file without `--replace`", changed_file),
    ("Unrecognised file named explicitly (`notes.txt`)", unknown_file),
    ("Empty file", empty_file),
    ("Second writer while another holds the lock (`--wait 1`)", second_writer),
    ("Truncated NeXus file in the store (`xrfhub validate`)", truncated_nexus),
    ("Damaged Zarr chunk of `counts` (`xrfhub validate`)", damaged_chunk),
    ("`--skip-bad` with 20 good files, a truncated and an empty one", skip_bad),
]


def run_case(work: Path, base: Path, title: str, case) -> dict:
    tmp = work / case.__name__
    corpus = write_corpus(tmp / "corpus")  # same seed as the base store: same files, same digests
    (tmp / "new").mkdir()
    store = tmp / "hub"
    shutil.copytree(base, store)
    before = state(store)
    args = case(tmp, corpus, store, np.random.default_rng(1))
    result = args() if callable(args) else cli(*args, cwd=tmp)
    try:
        after = state(store)
        same = after[0] == before[0] and np.array_equal(after[3], before[3])
        held = f"{after[0]}, {after[1]} spectra, {after[2]} samples" + (" — unchanged" if same else "")
    except Exception as exc:  # noqa: BLE001 - the damaged-store cases: say what a reader meets
        gen = Store(store).current().name
        held = f"{gen}; reading the counts fails ({type(exc).__name__}) until repaired"
    return {"case": title, "code": result.returncode, "message": message(result, tmp), "store": held}


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        corpus = write_corpus(work / "corpus")
        base = work / "base"
        xrfhub.ingest([corpus.scans, corpus.files["pangaea"]], base)
        rows = [run_case(work, base, title, case) for title, case in CASES]
    lines = [
        "# Bad input: what a user sees",
        "",
        "Generated by `python docs/make_bad_input_table.py` (do not edit by hand). Each case starts from",
        "the same store, generation g000001 with 60 spectra and 11 lab samples (two scanned cores and",
        "a PANGAEA table), runs one command through the real CLI (`python -m xrfhub_cli ...`), and",
        "records the exit code, the message printed (temporary folder shortened to `…/`) and what the",
        "store holds afterwards (\"unchanged\": same generation, bit-identical counts).",
        "",
        "Exit codes: 0 ok, 2 bad input, 3 store problem, 4 store locked by another writer, 5 `validate`",
        "found problems.",
        "",
        "| # | Case | Exit | Message | Store afterwards |",
        "|---|------|------|---------|------------------|",
    ]
    for i, r in enumerate(rows, 1):
        msg = r["message"].replace("|", "\\|")
        lines.append(f"| {i} | {r['case']} | {r['code']} | `` {msg} `` | {r['store']} |")
    kept = ""  # hand-written sections below the marker survive a regeneration
    if OUT.is_file() and KEEP_MARKER in OUT.read_text(encoding="utf-8"):
        kept = "\n" + KEEP_MARKER + OUT.read_text(encoding="utf-8").split(KEEP_MARKER, 1)[1]
    OUT.write_text("\n".join(lines) + "\n" + kept, encoding="utf-8")
    print(f"wrote {OUT} ({len(rows)} cases)")


if __name__ == "__main__":
    main()
