"""Write the "Real lab folders" section of docs/bad-input.md: issue 12's refusals, as a user meets them.

Each case runs one command through the real CLI (click's runner, in-process) on files it
writes into a temporary folder (the IODP spectrum is written like the real one: placeholders in
the header, identity in the name), and records the exit code and the message (the temporary
folder shortened to ``…/``). Only the text between the two markers in docs/bad-input.md is
replaced; ``tests/test_iodp_ingest.py`` checks that the section matches what the code says.
Run from the repository root::

    python docs/make_bad_input_ingest.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bad-input.md"
START, END = "<!-- issue12:start -->", "<!-- issue12:end -->"
IODP_NAME = ("397-U1587A-2H-1-A_SHLF11796791!0!0!  10.0!2023-04-01!09-36-35!6!30!1250!10.0!-2.0!Pd-Thick!10.0!"
             "12.0!Run2!Rep0!Sett Middle.spe")


def _spe(core: str = "0", section: str = "0") -> str:
    counts = np.random.default_rng(0).poisson(20, 2048)
    head = ["$Core_ID:", core, "$Section_ID:", section, "$X_Position:", "10.0", "$Run_ID:", "2", "$Replicate_ID:", "0",
            "$ACC_VOLT:", "30.0", "$TUBE_CUR:", "1.250", "$MEAS_TIM:", "6 10", "$DATE_MEA:", "04-01-2023 09:36:24",
            "$DATA:", "0 2047"]
    return "\n".join(head + [" ".join(map(str, counts[i:i + 10])) for i in range(0, 2048, 10)]) + "\n"


def cases(tmp: Path):
    """(description, CLI arguments) per refusal, with the files they need written under ``tmp``."""
    scans = tmp / "XRF"
    scans.mkdir()
    (scans / IODP_NAME).write_text(_spe())
    anon = tmp / "anon"
    anon.mkdir()
    (anon / "point 10.spe").write_text(_spe())
    tops = tmp / "tops.csv"
    tops.write_text("core,section,top (m)\n397-U1587A-2H,2,5.4\n")
    no_unit = tmp / "no_unit.csv"
    no_unit.write_text("core,section,top\n397-U1587A-2H,1,3.9\n")
    twice = tmp / "twice.csv"
    twice.write_text("core,section,top_cm\n397-U1587A-2H,1,390\n397-U1587A-2H,01,400\n")
    broken = tmp / "broken.axml"
    broken.write_text("<bAxil><Model>")
    no_cal = tmp / "nocal.axml"
    no_cal.write_text("<?xml version='1.0'?><bAxil><Model><AnalyticalLines/></Model></bAxil>")
    wild = tmp / "wild.axml"
    wild.write_text("<bAxil><Model><Calibration><Gain><Fitted> 5 </Fitted></Gain></Calibration></Model></bAxil>")
    a_file = tmp / "notes.txt"
    a_file.write_text("not a store\n")
    hub = tmp / "hub"
    two = tmp / "two"
    two.mkdir()
    for sec in ("1", "2"):
        (two / IODP_NAME.replace("2H-1-A", f"2H-{sec}-A")).write_text(_spe())
    yield None, ["ingest", two, "--store", hub]  # the store the query cases read
    yield ("Core id only a placeholder (`$Core_ID: 0`, no id in the file name)",
           ["ingest", anon, "--store", tmp / "s1"])
    yield ("Sections table lacks a section of a core it covers (`--sections`)",
           ["ingest", scans, "--store", tmp / "s2", "--sections", tops])
    yield "Sections table: top depth without a unit", ["ingest", scans, "--store", tmp / "s3", "--sections", no_unit]
    yield "Sections table: one section given twice", ["ingest", scans, "--store", tmp / "s4", "--sections", twice]
    yield "bAXIL model that is not well-formed XML (`--calibration`)", [
        "ingest", scans, "--store", tmp / "s5", "--calibration", broken]
    yield "bAXIL model without a calibration", ["ingest", scans, "--store", tmp / "s6", "--calibration", no_cal]
    yield "bAXIL model whose gain cannot be an energy scale", [
        "ingest", scans, "--store", tmp / "s7", "--calibration", wild]
    yield "`--store` names an existing file", ["ingest", scans, "--store", a_file]
    yield "`--store` names the raw data folder (files, no store)", ["ingest", scans, "--store", scans]
    yield "`query` with a misspelled core", ["query", hub, "--core", "397-U1587A-2X", "--out", tmp / "q.csv"]
    yield ("`query` by depth over two sections on section-relative depths",
           ["query", hub, "--core", "397-U1587A-2H", "--depth", "0:20", "--out", tmp / "q.csv"])


def run_cases() -> list[tuple[str, int, str]]:
    """(case, exit code, message) for every case."""
    from click.testing import CliRunner

    from xrfhub_cli.main import cli

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, args in cases(Path(tmp)):
            result = CliRunner().invoke(cli, [str(a) for a in args])
            if case is None:
                assert result.exit_code == 0, result.output
                continue
            lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
            message = (lines[-1] if lines else result.output.strip().splitlines()[-1]).replace(tmp + "/", "…/")
            rows.append((case, result.exit_code, message))
    return rows


def render(rows) -> str:
    out = [START, "", "## Real lab folders (issue 12)", "",
           "Generated by `python docs/make_bad_input_ingest.py` (do not edit by hand): each case writes its files "
           "into a temporary folder and runs one command through the real CLI. Every refusal leaves the store as "
           "it was (nothing is written before the checks pass).", "",
           "| # | Case | Exit | Message |", "|---|------|------|---------|"]
    for n, (case, code, message) in enumerate(rows, start=1):
        cell = message.replace("|", "\\|")  # a pipe would end the table cell
        out.append(f"| I{n} | {case} | {code} | `` {cell} `` |")
    out += ["", END]
    return "\n".join(out)


def section_of(text: str) -> str:
    if START not in text:
        return ""
    return text[text.index(START):text.index(END) + len(END)]


def main() -> None:
    text = OUT.read_text(encoding="utf-8")
    block = render(run_cases())
    text = text.replace(section_of(text), block) if START in text else text.rstrip("\n") + "\n\n" + block + "\n"
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "cli"))
    main()
