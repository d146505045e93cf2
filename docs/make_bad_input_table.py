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
    lines += [ln for ln in result.stdout.splitlines() if ln.startswith(("PROBLEM", "skipped", "warning", "not stored"))
              or "unrecognised file(s)" in ln]
    # a command that printed nothing but a traceback: its last line is what a user reads
    text = " / ".join(lines) or (result.stdout.strip() or result.stderr.strip() or "(no output)").splitlines()[-1]
    return text.replace(str(tmp) + os.sep, "…/").replace(str(tmp), "…")


# ---------------------------------------------------------------------------- the cases
# Each takes (tmp, corpus, store) and returns the CLI arguments to run (or a callable result).

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


def lab_workbook_not_a_number(tmp, corpus, store, rng):
    from fuzzing import workbook_bytes

    path = tmp / "new" / "lab.xlsx"
    path.write_bytes(workbook_bytes({"Notes": [["coulometry, 2024"]],
                                     "CaCO3": [["Core", "Depth (cm)", "CaCO3 [%]"], ["PS75-056-1", 1.5, 20.1],
                                               ["PS75-056-1", 2.5, "twenty"]]}))
    return ["ingest", path, "--store", store]


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


def empty_query(tmp, corpus, store, rng):
    return ["query", store, "--core", "SO264-09-2", "--depth", "5000:6000", "--out", tmp / "sel.csv"]


def qc_not_a_number(tmp, corpus, store, rng):
    return ["qc", store, "--set", "throughput_bad_ratio=half"]


def qc_unknown_threshold(tmp, corpus, store, rng):
    return ["qc", store, "--set", "no_such=1"]


def qc_not_a_store(tmp, corpus, store, rng):
    (tmp / "empty").mkdir()
    return ["qc", tmp / "empty"]


def bad_identifiers(tmp, corpus, store, rng):
    ids = tmp / "new" / "ids.csv"
    ids.write_text("core,igsn,doi\nPS75-056-1,,not-a-doi\n")
    return ["export", store, "--format", "pangaea", "--out", tmp / "out.tab", "--identifiers", ids]


def crate_into_full_folder(tmp, corpus, store, rng):
    (tmp / "new" / "notes.txt").write_text("mine")
    return ["export", store, "--format", "ro-crate", "--out", tmp / "new"]


def logratio_no_target(tmp, corpus, store, rng):
    return ["train", "logratio", "--store", store, "--out", tmp / "run"]


def logratio_too_few(tmp, corpus, store, rng):
    return ["train", "logratio", "--store", store, "--target", "CaCO3", "--holdout-cores", "SO264-09-2",
            "--out", tmp / "run"]


def logratio_no_elements(tmp, corpus, store, rng):
    return ["train", "logratio", "--store", store, "--target", "CaCO3", "--set", "source=elements",
            "--out", tmp / "run"]
# ---------------------------------------------------------------------------- real lab folders (issue 12)
# Written files shaped like the real ones in ../shared/fixtures/real (ITRAX, IODP), so the table
# can be regenerated without them.


def itrax_placeholder(tmp, corpus, store, rng):
    from fuzzing import itrax_spe_bytes

    folder = tmp / "new" / "GC1_S1" / "XRF data"
    folder.mkdir(parents=True)
    (folder / "L000000.spe").write_bytes(itrax_spe_bytes(np.arange(2048) % 50))
    return ["ingest", folder / "L000000.spe", "--store", store]


def itrax_section_sum(tmp, corpus, store, rng):
    from fuzzing import itrax_spe_bytes, results_bytes

    scan = tmp / "new" / "CORE9_S2"
    (scan / "XRF data").mkdir(parents=True)
    (scan / "Results.txt").write_bytes(results_bytes(2))
    (scan / "result.txt").write_bytes(results_bytes(2).replace(b"06-Oct-20", b"22-Sep-20"))
    (scan / "sumspectra.spe").write_bytes(itrax_spe_bytes(np.arange(2048) % 50, position="0.0"))
    return ["ingest", scan, "--store", store]


def itrax_bad_zip(tmp, corpus, store, rng):
    (tmp / "new" / "XRF Data.zip").write_bytes(b"PK\x03\x04 cut short")
    return ["ingest", tmp / "new" / "XRF Data.zip", "--store", store]


def itrax_sample_no_core(tmp, corpus, store, rng):
    from fuzzing import itrax_spe_bytes

    folder = tmp / "new" / "sumspectra"
    folder.mkdir(parents=True)
    (folder / "sumspectra_cd166-33.spe").write_bytes(itrax_spe_bytes(np.arange(2048) % 50, position="0.000000"))
    return ["ingest", folder, "--store", store, "--gain", "0.0102"]


def itrax_sample_no_lab_row(tmp, corpus, store, rng):
    from fuzzing import itrax_spe_bytes

    folder = tmp / "new" / "calibration_samples"
    (folder / "sumspectra").mkdir(parents=True)
    (folder / "sumspectra" / "sumspectra_cd166-33.spe").write_bytes(
        itrax_spe_bytes(np.arange(2048) % 50, position="0.000000"))
    (folder / "icp.csv").write_text("top_mm,bottom_mm,SampleID,Ca [mg/kg]\n330,340,B14,502.97\n1020,1030,B02,410.7\n")
    return ["ingest", folder, "--store", store, "--core", "SO264-09-2", "--gain", "0.0102"]


def itrax_dfl_other_tube(tmp, corpus, store, rng):
    from fuzzing import itrax_spe_bytes

    folder = tmp / "new" / "GC1_S1" / "XRF data"
    folder.mkdir(parents=True)
    (folder / "L000000.spe").write_bytes(itrax_spe_bytes(np.arange(2048) % 50))
    (folder / "settings.dfl").write_text("[detector parameters]\nkeV/channel 2 = 0.0102\nenergy offset 2 = 0\n"
                                         "[Fit cluster]\ntube selector = 2\nkV = 45\nmA = 30\n")
    return ["ingest", folder / "L000000.spe", "--store", store]


def ortec_gamma(tmp, corpus, store, rng):
    path = tmp / "new" / "ngr.spe"
    path.write_text("$SPEC_ID:\nNGR System 3 - 397-U1587A-2H-1\n$SPEC_REM:\nDETDESC# NGR3 NaI 3x5\n"
                    "$MEAS_TIM:\n300 300\n$DATA:\n0 3\n0.\n5.\n12.\n2.\n")
    return ["ingest", path, "--store", store]


def lab_no_units(tmp, corpus, store, rng):
    path = tmp / "new" / "icp.csv"
    path.write_text("top,bot,SampleID,Ca,Fe,Ti\n330,340,B14,502.97,18.3,1.2\nBLANK,,B24,0.47,0.05,0.001\n")
    return ["ingest", path, "--store", store, "--core", "SO264-09-2", "--depth-unit", "mm"]


def lab_depth_no_unit(tmp, corpus, store, rng):
    path = tmp / "new" / "icp.csv"
    path.write_text("depth,SampleID,Ca [ppm],Fe [ppm]\n335,B14,502.97,18.3\n")
    return ["ingest", path, "--store", store, "--core", "SO264-09-2"]


def lab_interval_no_unit(tmp, corpus, store, rng):
    path = tmp / "new" / "icp.csv"
    path.write_text("top,bot,SampleID,Ca [ppm],Fe [ppm],weight\n330,340,B14,502.97,18.3,0.2051\n"
                    "340,350,B15,476.87,24.5,0.2183\n")
    return ["ingest", path, "--store", store, "--core", "SO264-09-2"]


def lab_qc_rows(tmp, corpus, store, rng):
    path = tmp / "new" / "icp.csv"
    path.write_text("top,bot,SampleID,Ca,Fe,Ti\n330,340,B14,502.97,18.3,1.2\nBLANK,,B24,0.47,0.05,0.001\n"
                    "MESS-4,,B25,28.4,70.5,0.3\n")
    return ["ingest", path, "--store", store, "--core", "SO264-09-2", "--depth-unit", "mm", "--units", "mg/kg"]


def pxrf_no_units(tmp, corpus, store, rng):
    path = tmp / "new" / "GeoExploration.tsv"
    path.write_text("File #\tMg\tMg Err\tSi\tSi Err\tCa\tCa Err\tSample Type\tExpedition\tSite & Hole\t"
                    "Core/Section\tTextID\tTop Offset (cm)\n1\t0.7\t0.3\t60.2\t0.4\t4.3\t0.02\tSHLF\t397\tU1587B\t"
                    "22X/1\tSHLF11836911\t20\n")
    return ["ingest", path, "--store", store]


def raw4_truncated(tmp, corpus, store, rng):
    from fuzzing import raw4_bytes

    path = tmp / "new" / "p.raw"
    path.write_bytes(raw4_bytes(np.arange(100.0))[:-40])
    return ["ingest", path, "--store", store]


def uxd_no_wavelength(tmp, corpus, store, rng):
    from fuzzing import uxd_bytes

    path = tmp / "new" / "p.uxd"
    path.write_bytes(uxd_bytes(40).replace(b"_WL1 = 1.5406", b"_WL2 = 1.54439"))
    return ["ingest", path, "--store", store]


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
    ("Non-numeric value in a lab workbook (`.xlsx`, the table on its second sheet)", lab_workbook_not_a_number),
    ("Non-numeric lab value (`twenty`)", lab_not_a_number),
    ("Changed file without `--replace`", changed_file),
    ("Unrecognised file named explicitly (`notes.txt`)", unknown_file),
    ("Empty file", empty_file),
    ("Second writer while another holds the lock (`--wait 1`)", second_writer),
    ("Truncated NeXus file in the store (`xrfhub validate`)", truncated_nexus),
    ("Damaged Zarr chunk of `counts` (`xrfhub validate`)", damaged_chunk),
    ("`--skip-bad` with 20 good files, a truncated and an empty one", skip_bad),
    ("Query of a depth range with no data (`--depth 5000:6000`)", empty_query),
    ("`xrfhub qc --set throughput_bad_ratio=half` (a threshold that is not a number)", qc_not_a_number),
    ("`xrfhub qc --set no_such=1` (an unknown threshold)", qc_unknown_threshold),
    ("`xrfhub qc` on an empty folder", qc_not_a_store),
    ("`xrfhub export --identifiers` with a value that is not a DOI", bad_identifiers),
    ("`xrfhub export --format ro-crate` into a folder that holds files", crate_into_full_folder),
    ("`train logratio` without `--target`", logratio_no_target),
    ("`train logratio` with too few labelled samples outside the held-out core", logratio_too_few),
    ("`train logratio --set source=elements` on a store without element tables", logratio_no_elements),
    ("ITRAX spectrum with only the placeholder calibration (E1 = 1 keV/channel)", itrax_placeholder),
    ("ITRAX section folder: `sumspectra.spe`, `Results.txt` and an older `result.txt` (not stored, said why)",
     itrax_section_sum),
    ("Damaged zip of spectra (`XRF Data.zip`)", itrax_bad_zip),
    ("ORTEC `.spe` of a NaI natural-gamma system", ortec_gamma),
    ("Lab table: element concentrations without a unit", lab_no_units),
    ("Lab table: a mid-depth column without a unit", lab_depth_no_unit),
    ("Lab table: a depth interval without a unit (1 cm slices if mm), a weight column (read, said)",
     lab_interval_no_unit),
    ("Lab table with QC rows (BLANK, MESS-4), `--units mg/kg` (kept apart, reported)", lab_qc_rows),
    ("Portable-XRF TSV: no unit, no major oxides, readings not closing at 100 % / 10^6 ppm", pxrf_no_units),
    ("Truncated Bruker RAW v4 pattern", raw4_truncated),
    ("Bruker UXD pattern without a wavelength", uxd_no_wavelength),
    ("ITRAX sum spectrum of a discrete sample (`sumspectra_<sample>.spe`) without `--core`", itrax_sample_no_core),
    ("ITRAX sum spectrum of a discrete sample whose sample id no lab row names", itrax_sample_no_lab_row),
    ("ITRAX spectrum beside a Q-Spec `.dfl` fitted for another tube voltage (45 kV, header 30 kV)",
     itrax_dfl_other_tube),
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
