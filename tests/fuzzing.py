"""Fuzzing the readers: seed files per reader, byte-level mutation strategies and the oracle.

Shared by ``tests/test_fuzz.py`` (a few hundred derandomised cases in CI) and
``benchmarks/fuzz.py`` (>= 10,000 cases per reader). The contract being checked is the one every
reader promises (``xrfhub/errors.py``): whatever bytes a user hands it, a reader either returns
records or raises :class:`~xrfhub.errors.InputError` whose message starts with the offending
file's path; it never raises anything else and never hangs.

Seeds are real instrument files from ``../shared/fixtures/xrf`` when that folder exists, and
small synthetic files written here byte by byte (or by :mod:`xrfhub.synth`) otherwise and in
addition. A seed is a folder's worth of files: the one the reader is asked to read, and side
files beside it (an ITRAX ``.spe`` reads the ``Results.txt``, ``settings.dfl`` and
``document.txt`` next to it), one of which is the file being mutated.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import re
import shutil
import signal
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from xrfhub import readers as registry
from xrfhub.errors import InputError
from xrfhub.records import Calibration
from xrfhub.sources import Candidate, parse_one

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "xrf"

#: Reader modules fuzzed, as listed in ``xrfhub.readers._MODULES``.
READERS = registry._MODULES

#: A case slower than this is a hang (seconds).
HANG_S = 2.0


# --------------------------------------------------------------------------- seeds


@dataclass(frozen=True)
class Seed:
    """Files of one case folder: ``name`` is read, ``target`` (default ``name``) is mutated."""

    label: str
    name: str
    files: dict = field(hash=False)  # file name -> bytes
    options: dict = field(default_factory=dict, hash=False)
    target: str = ""

    @property
    def mutated(self) -> str:
        return self.target or self.name


def _fixture(name: str) -> bytes | None:
    path = FIXTURES / name
    return path.read_bytes() if path.is_file() else None


def _head_lines(raw: bytes, n: int) -> bytes:
    """The first ``n`` lines of a file, line ends kept (a small seed cut from a big real file)."""
    lines = raw.splitlines(keepends=True)
    return b"".join(lines[:n])


def _counts(n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).poisson(25, n).astype(np.uint32)


# Avaatech .spe ------------------------------------------------------------------------------


def _avaatech_spe_seeds() -> list[Seed]:
    from xrfhub.synth import SpeMeta, SpeStyle, bang_name, space_name, spe_text

    meta = SpeMeta(core="PS75-056-1", section="0100", position_mm=15.0, date=dt.datetime(2012, 6, 14, 10, 11, 12))
    counts = _counts(256)
    out = []
    for label, style, namer in (("new", SpeStyle(per_line=8), space_name),
                                ("old-crlf", SpeStyle(head="old", newline="\r\n"), space_name),
                                ("comma-bang", SpeStyle(decimal_comma=True, per_line=8), bang_name)):
        name = namer(meta)
        out.append(Seed(f"synth-{label}", name, {name: spe_text(counts, meta, style, spec_id=name[:-4]).encode()}))
    ortec = ("$SPEC_ID:\nPS75-056-1_0100   15.0mm  10s  10kV\n$DATE_MEA:\n06-14-2012 10:11:12\n$MEAS_TIM:\n10 12\n"
             "$DATA:\n0 31\n" + "\n".join(" ".join(str(c) for c in counts[i:i + 8]) for i in range(0, 32, 8))
             + "\n$ROI:\n0\n$MCA_CAL:\n2\n0.000000E+000 2.000000E-002 keV\n$ENER_FIT:\n0.0 0.02\n")
    out.append(Seed("synth-ortec-tail", "ortec.spe", {"ortec.spe": ortec.encode()}, {"core": "X"}))
    return out


# bAXIL CSV ----------------------------------------------------------------------------------

_BANG = "CORE-1!0100!0!{x}!2019-02-20!09-54-32!30!10!1500!{x}!0.0!No-Filter!2.0!12.0!Run1!Rep0!Sett Low.spe"


def _baxil_seeds() -> list[Seed]:
    head = '" Spectrum" ," Live time" ," Ca-Ka Area" ," Ca-Ka AreaStd" ," Fe-Ka Area" ," P -Ka cps"\n'
    body = "".join(f"{_BANG.format(x=x)},30,{ca},{sd},{fe},{ca / 30:.3f}\n"
                   for x, ca, sd, fe in ((5.0, 1200, 35, 800), (15.0, 1100, 33, -4), (25.0, 900, 30, 780)))
    meta_cols = ("Spectrum;CoreID;SectionID;CoreDepth;X Position-mm;Replicate Nr Count;TubeVoltage-kV;"
                 "Ca-Ka Area;Ca-Ka Chi2\n" + "".join(f"s{i};CORE-2;0010;{100 + x:.1f};{x:.1f};Rep{i % 2};30;{500 + i};1,2\n"
                                                   for i, x in enumerate((5.0, 15.0, 25.0))))
    out = [Seed("synth", "batch.csv", {"batch.csv": (head + body).encode()}),
           Seed("synth-meta-columns", "meta.csv", {"meta.csv": meta_cols.encode()})]
    real = _fixture("avaatech_baxil_ZUG18-7_10kV_raw.csv")
    if real is not None:
        out += [Seed("real-head", "ZUG18-7.csv", {"ZUG18-7.csv": _head_lines(real, 6)}),
                Seed("real", "ZUG18-7.csv", {"ZUG18-7.csv": real})]
    return out


# Avaatech workbook --------------------------------------------------------------------------


def workbook_bytes(sheets: dict[str, list[list]]) -> bytes:
    """An .xlsx written by openpyxl: one sheet per item, rows as given."""
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


_XLSX_HEAD = ["Spectrum", "CoreID", "SectionID", "CoreDepth", "DateID", "TubeVoltage-kV", "X Position-mm",
              "Replicate Nr Count", "Live time", "Ca-Ka Area", "Ca-Ka AreaStd", "Fe-Ka Area"]


def _xlsx_seeds() -> list[Seed]:
    rows = [_XLSX_HEAD] + [[f"s{i}", "CORE-3", "0100", x, dt.datetime(2020, 1, 2, 3, 4), 10, x, f"Rep{i % 2}", 10.0,
                            1000 + i, 30.5, -2 + i] for i, x in enumerate((5.0, 15.0, 25.0))]
    placeholder = [_XLSX_HEAD] + [[f"s{i}", 0, 0, x, None, 30, x, i, 10, 50 * i, 3, 7] for i, x in enumerate((1.0, 2.0))]
    out = [Seed("synth", "export.xlsx", {"export.xlsx": workbook_bytes({"10kV": rows, "Notes": [["free text"]]})}),
           Seed("synth-placeholder-core", "two.xlsx", {"two.xlsx": workbook_bytes({"30kV": placeholder})},
                {"core": "CORE-3"})]
    real = _fixture("avaatech_export_example_two_energies.xlsx")
    if real is not None:
        out.append(Seed("real", "example.xlsx", {"example.xlsx": real}, {"core": "LAM-1"}))
    return out


def _lab_xlsx_seeds() -> list[Seed]:
    """Lab workbooks as labs keep them: a title row above the header, a notes sheet, a units row."""
    plain = [["Carbonate of test cores"], [], ["Core", "Depth top (cm)", "Depth bottom (cm)", "CaCO3 [%]", "TOC [%]"]]
    plain += [["PS75-056-1", d, d + 1, 20.5 + d, 0.25] for d in (1, 5, 9)]
    units = [["core", "depth", "Ca", "Fe", "Sr"], ["", "cm", "ppm", "mass%", "ppm"]]
    units += [["SO264-09-2", 11.5, 1200, 3.1, 250], ["SO264-09-2", 13.5, 1300, 2.9, 260]]
    return [Seed("synth", "lab.xlsx", {"lab.xlsx": workbook_bytes({"Notes": [["method", "coulometry"]], "Data": plain})}),
            Seed("synth-units-row", "icp.xlsx", {"icp.xlsx": workbook_bytes({"ICP": units})})]


# ITRAX ---------------------------------------------------------------------------------------


def itrax_spe_bytes(counts, *, position="707.540018", section="section") -> bytes:
    """An ITRAX .spe: header records ended by a bare CR, then CRLF channel rows numbered from 1."""
    records = [("Date:", "22-Sep-20", ""), ("Time:", "8:08 PM", ""), ("Section name:", section, ""),
               ("Position", position, "mm"), ("E0", "0.000000", "keV"), ("E1", "1.000000", "keV/channel"),
               ("Tube anode:", "Mo", ""), ("Tube voltage:", "30", "kV"), ("Tube current:", "30", "mA"),
               ("number_mca_channels", f"{len(counts):.6f}", "no:"), ("livetime", "13.480499", "seconds"),
               ("runtime", "15.000049", "seconds"), ("input_count_rate", "44598.496007", "cps"),
               ("channel", "content", "")]
    head = b"".join(f"{k}\t{v}\t{u}\t\r".encode() for k, v, u in records)
    return head + b"".join(f"{ch:.3f}\t{c:.3f}\r\n".encode() for ch, c in enumerate(counts, start=1))


def results_bytes(n: int = 4, *, folder="CORE9_S2") -> bytes:
    """A Q-Spec result table: 2 preamble lines, TAB header and rows each ending in a TAB, CRLF."""
    head = ["filename", "position (mm)", "sample surface", "validity", "E-gain", "E-offset", "cps", "MSE",
            "Ca", "Fe", "Mo inc", "Mo coh", "Dt"]
    out = [f"C:\\Data\\{folder}\\XRF data     06-Oct-20  re-evaluated data", "peakarea", "\t".join(head) + "\t"]
    for i in range(n):
        cells = [f"C:\\Data\\{folder}\\XRF data\\L{i:06d}.spe", f"{10.5 + i}", "6.40", f"{int(i != 1)}", "0.010267",
                 "-0.009931", "22415", "1.26", str(100 + i), str(50 - 20 * i), "900", "300", "0.107"]
        out.append("\t".join(cells) + "\t")
    return ("\r\n".join(out) + "\r\n").encode()


_DOCUMENT = ("Base path:\tSample name:\tSection name\tUser ID\r\nC:\\Data\tCORE9\tCORE9_S2\tlab\r\n"
             "Year\tMonth\tDay\tTime\r\n2020\t10\t6\t14\r\nXRF\tON\r\nTube\tMo\r\nXRF exp. time\t15\ts\r\n"
             "Step size\t1000\tmicrons\r\nStart coordinate\t10.5\tStop coordinate\t14.5\r\n"
             "XRF voltage and current\t30\t\t30\r\n").encode("latin-1")
_DFL = (b"[detector parameters]\r\nkeV/channel 2 = 0.0102\r\nenergy offset 2 = -0.0099\r\n"
        b"[Fit cluster]\r\ntube selector = 2\r\nkV = 30\r\nmA = 30\r\n")


def _itrax_spe_seeds() -> list[Seed]:
    spe = itrax_spe_bytes(_counts(128))
    side = {"Results.txt": results_bytes(), "settings.dfl": _DFL, "document.txt": _DOCUMENT}
    cal = Calibration(0.0102, -0.0099, "option")  # the header's E0/E1 is a placeholder the reader refuses
    out = [Seed("synth", "L000002.spe", {"L000002.spe": spe}, {"core": "CORE9", "calibration": cal}),
           Seed("synth-named", "L000002.spe", {"L000002.spe": itrax_spe_bytes(_counts(64), section="CORE9_S2")},
                {"calibration": cal})]
    for name in side:  # the .spe is clean, a side file beside it is mutated
        out.append(Seed(f"synth-side-{name}", "L000002.spe", {"L000002.spe": spe, **side}, target=name))
    real = _fixture("itrax_L000676.spe")
    if real is not None:
        out.append(Seed("real", "L000676.spe", {"L000676.spe": real}, {"core": "CD166_19", "calibration": cal}))
        dfl, doc = _fixture("itrax_Results_settings.dfl"), _fixture("itrax_CD166_19_S1_xrf_document.txt")
        out += [Seed("real-side-dfl", "L000676.spe", {"L000676.spe": real, "Results_settings.dfl": dfl},
                     {"core": "CD166_19"}, target="Results_settings.dfl"),
                Seed("real-side-document", "L000676.spe", {"L000676.spe": real, "document.txt": doc},
                     {"core": "CD166_19", "calibration": cal}, target="document.txt")]
    return out


def _itrax_results_seeds() -> list[Seed]:
    out = [Seed("synth", "Results.txt", {"Results.txt": results_bytes()}),
           Seed("synth-with-document", "Results.txt", {"Results.txt": results_bytes(), "document.txt": _DOCUMENT})]
    real = _fixture("itrax_CD166_19_S1_Results.txt")
    if real is not None:
        out += [Seed("real-head", "Results.txt", {"Results.txt": _head_lines(real, 8)}),
                Seed("real", "Results.txt", {"Results.txt": real})]
    return out


# MCA -----------------------------------------------------------------------------------------

_MCA_NAME = "PS75-056-1_0100   15.0mm  10s  10kV 150uA No-Filter   0.0mm Run1 Rep0 Sett Low"


def amptek_bytes(counts) -> bytes:
    """An Amptek DppMCA file: tag lines, a calibration, one count per line, CRLF."""
    lines = ["<<PMCA SPECTRUM>>", "TAG - live_data", "DESCRIPTION -", "GAIN - 20", "LIVE_TIME - 59.872",
             "REAL_TIME - 60.000", "START_TIME - 06/15/2016 10:49:33", "SERIAL_NUMBER - 12345",
             "<<CALIBRATION>>", "LABEL - keV", "15 0.3", "65 1.3", "90 1.8", "<<ROI>>", "10 20", "<<DATA>>",
             *[str(int(c)) for c in counts], "<<END>>", "<<DP5 CONFIGURATION>>", "RESC=Y;    Reset",
             f"MCAC={len(counts)};    MCA/MCS channels", "<<DP5 CONFIGURATION END>>", "<<DPP STATUS>>",
             "Device Type: DP5", "Serial Number: 12345", "<<DPP STATUS END>>"]
    return ("\r\n".join(lines) + "\r\n").encode()


def spec_bytes(arrays, *, calib="0 0.02 0") -> bytes:
    """A SPEC file: one scan per array, PyMca's 16 values a line with ``\\`` continuations."""
    text = "#F test.mca\n#D Thu Jun 15 10:49:33 2023\n\n"
    for scan, values in enumerate(arrays, start=1):
        body = "@A "
        for start in range(0, len(values), 16):
            body += "".join(f"{v:.4f} " for v in values[start:start + 16])
            body += "\\\n" if start + 16 < len(values) else "\n"
        text += (f"#S {scan} point {scan}\n#D Thu Jun 15 10:5{scan}:00 2023\n#@MCA %16C\n"
                 f"#@CHANN {len(values)} 0 {len(values) - 1} 1\n#@CALIB {calib}\n#@CTIME 10 9.5 10\n{body}\n")
    return text.encode()


def _amptek_seeds() -> list[Seed]:
    return [Seed("synth-named", f"{_MCA_NAME}.mca", {f"{_MCA_NAME}.mca": amptek_bytes(_counts(64))}),
            Seed("synth-options", "point.mca", {"point.mca": amptek_bytes(_counts(100))},
                 {"core": "C-1", "depth_mm": 12.5})]


def _spec_seeds() -> list[Seed]:
    return [Seed("synth-named", f"{_MCA_NAME}.mca", {f"{_MCA_NAME}.mca": spec_bytes([_counts(48)])}),
            Seed("synth-two-arrays", "scan.mca", {"scan.mca": spec_bytes([_counts(40), _counts(40, 4)],
                                                                          calib="0.1 0.02 1e-6")},
                 {"core": "C-1", "depth_mm": [10.0, 20.0]})]


# lab tables -----------------------------------------------------------------------------------

PANGAEA = ("/* DATA DESCRIPTION:\nCitation:\tDoe, J (2010): Carbonate of core PS75/056-1. PANGAEA\n"
           "Event(s):\tPS75/056-1 * LATITUDE: -55.158330 * LONGITUDE: -114.788330\n"
           "Parameter(s):\tEvent label (Event)\n\tDepth, sediment/rock [m] (Depth sed) * GEOCODE\n"
           "\tCalcium carbonate [%] (CaCO3)\n\tCarbon, organic, total [%] (TOC)\nLicense:\tCC-BY-3.0\n*/\n"
           "Event\tDepth sed [m]\tCaCO3 [%]\tTOC [%]\nPS75/056-1\t0.05\t45.2\t0.61\nPS75/056-1\t0.15\t?38.0\t0.55\n"
           "PS75/056-1\t0.25\t/12.0\t*0.48\nPS75/056-1\t0.35\t\t0.40\n")
PANGAEA_INTERVAL = ("/* DATA DESCRIPTION:\nCitation:\tX (2020): test\nEvent(s):\tGeoB1234-5\n*/\n"
                    "Depth top [m]\tDepth bot [m]\tCaCO3 [%]\n0.00\t0.01\t40.1\n0.01\t0.02\t41.5\n")
CSV_COMMA = ("core_id,top_cm,bottom_cm,CaCO3_wt%,TOC [mg/g],Water content [%],comment\n"
             "SO264-09-2,0,2,45.2,6.1,55.0,top\nSO264-09-2,10,12,38.0,5.5,50.1,\n"
             '"SO264-09-2",20,22.5,,4.8,49.0,"bioturbated, dark"\n')
CSV_SEMICOLON = "Core ID;Depth [m];CaCO3 (wt.%);TOC (%)\nGeoB 12345-1;0,05;45,2;0,61\nGeoB 12345-1;0,15;38;0,55\n"
CSV_TAB = "\ufeffsample\tcore\tmid_mm\tCaCO3 [wt%]\tBa [ppm]\r\nA1\tC-1\t5\t*40\t120\r\nA2\tC-1\t15\t41.5\t/\r\n"
IODP = ("Exp,Site,Hole,Core,Type,Sect,A/W,Top offset on section (cm),Bottom offset on section (cm),"
        "Top depth CSF-A (m),Bottom depth CSF-A (m),Calcium carbonate (wt%),Inorganic carbon (wt%),"
        "Total organic carbon (wt%),Timestamp (UTC),Text ID\n"
        "339,U1385,A,1,H,2,W,10,12,1.60,1.62,45.3,5.44,0.61,2011-12-01 10:00:00,CARB123\n"
        "339,U1385,A,1,H,3,W,50,52,3.50,3.52,50.1,6.01,0.55,2011-12-01 10:05:00,\n"
        "339,U1385,B,2,H,1,W,0,2,10.25,10.27,40.0,4.80,0.70,2011-12-01 10:10:00,CARB125\n")
IODP_OFFSETS = ("Exp,Site,Hole,Core,Type,Sect,A/W,Top offset on section (cm),Bottom offset on section (cm),"
                "Top depth CSF-A (m),Calcium carbonate (wt%)\n339,U1385,A,1,H,2,W,10,12,1.60,45.3\n"
                "339,U1385,A,1,H,3,W,50,52,3.50,50.1\n")


def _lab_rows() -> list[dict]:
    return [dict(core="PS75-056-1", mid_mm=10.0 * i + 5, top_mm=10.0 * i, bottom_mm=10.0 * i + 10, CaCO3=30 + i,
                 TOC=0.5 + i / 10, flag_CaCO3="?" if i == 1 else "", flag_TOC="/" if i == 2 else "") for i in range(4)]


@functools.lru_cache(maxsize=None)
def _synth_lab_bytes() -> dict[str, bytes]:
    from xrfhub.synth import write_lab_csv, write_pangaea_tab

    with tempfile.TemporaryDirectory() as tmp:
        tab = write_pangaea_tab(Path(tmp, "cores.tab"), _lab_rows(), citation="Test (2024)",
                                events=["PS75/056-1 * LATITUDE: -50.0"])
        csv = write_lab_csv(Path(tmp, "slices.csv"), _lab_rows())
        return {"tab": tab.read_bytes(), "csv": csv.read_bytes()}


def _text_seed(label, name, text, options=None) -> Seed:
    return Seed(label, name, {name: text.encode() if isinstance(text, str) else text}, options or {})


def _pangaea_seeds() -> list[Seed]:
    return [_text_seed("synth-writer", "cores.tab", _synth_lab_bytes()["tab"]),
            _text_seed("example", "doe2010.tab", PANGAEA),
            _text_seed("example-interval", "geob.tab", PANGAEA_INTERVAL)]


def _iodp_seeds() -> list[Seed]:
    return [_text_seed("example", "carb.csv", IODP), _text_seed("example-offsets", "offsets.csv", IODP_OFFSETS)]


def _lab_csv_seeds() -> list[Seed]:
    return [_text_seed("synth-writer", "slices.csv", _synth_lab_bytes()["csv"]),
            _text_seed("example-comma", "lab.csv", CSV_COMMA), _text_seed("example-semicolon", "lab2.csv", CSV_SEMICOLON),
            _text_seed("example-tab", "lab3.txt", CSV_TAB)]


def _xy_text(n=40, third=None, header="", sep="\t", eol="\r\n") -> bytes:
    rng = np.random.default_rng(5)
    rows = []
    for i in range(n):
        cells = [f"{10 + 0.01 * i:.2f}", f"{rng.poisson(1900)}"]
        if third == "sigma":
            cells.append(f"{np.sqrt(1900):.2f}")
        elif third == "bkg":
            cells.append(f"{1864 - i}")
        rows.append(sep.join(cells))
    return (header + eol.join(rows) + eol).encode()


def _xrd_text_seeds() -> list[Seed]:
    out = [_text_seed("two-columns", "MnO.xy", _xy_text()),
           _text_seed("header-sigma", "ramp_0185.xye", _xy_text(third="sigma", header="# wavelength = 0.4843 A\n2theta intensity esd\n", eol="\n"),
                      {"scan_coord": "pressure_step"}),
           _text_seed("comma-q", "q.csv", b"q,I\n" + b"".join(f"{1 + 0.05 * i:.2f},{100 + i}\n".encode() for i in range(30)),
                      {"wavelength": 0.7}),
           _text_seed("background", "bkg.dat", _xy_text(third="bkg", sep=" "))]
    real = FIXTURES.parent / "xrd" / "Mn2O3+LiF.xy"
    if real.is_file():
        out.append(_text_seed("real-head", "Mn2O3+LiF.xy", _head_lines(real.read_bytes(), 60)))
    return out


@functools.lru_cache(maxsize=None)
def _nexus_bytes(n: int) -> bytes:
    from xrfhub.readers.xrd_nexus import write_nexus_patterns
    from xrfhub.records import DiffractionPatterns

    rng = np.random.default_rng(7)
    patterns = DiffractionPatterns("sim", [f"p{i}" for i in range(n)], np.linspace(10, 30, 40), rng.random((n, 40)),
                                   0.4843, "file", extra=rng.random((n, 40)), extra_kind="uncertainty",
                                   scan={"pressure_step": np.arange(n, dtype=float)} if n > 1 else {})
    with tempfile.TemporaryDirectory() as tmp:
        return write_nexus_patterns(Path(tmp, "p.nxs"), patterns).read_bytes()


def _xrd_nexus_seeds() -> list[Seed]:
    return [_text_seed("one-pattern", "one.nxs", _nexus_bytes(1)), _text_seed("scan", "ramp.nxs", _nexus_bytes(3))]


def _xrd_labels_seeds() -> list[Seed]:
    return [_text_seed("class", "labels.csv", "pattern_id,class\nMnO.xy,MnO\nTiO2.xy,TiO2\nramp_0001,low\n"),
            _text_seed("phases", "phases.tsv", "file\tphases\tnote\nMn2O3+LiF.xy\tMn2O3;LiF\tmix\nMnO.xy\tMnO\t\n"),
            _text_seed("wide", "wide.csv", "pattern,MnO,TiO2,LiF\nA,1,0,0\nB,1,1,0\nC,0,0,0\n")]


_AXML = ("<?xml version='1.0' encoding='ISO-8859-1'?>\n<bAxil>\n <ExperimentalConditions><Excitation><DIRECT_TUBE>"
         "<XRayTube>\n  <Voltage> 30 </Voltage>\n  <Anode><Composition> Mo </Composition></Anode>\n </XRayTube>"
         "</DIRECT_TUBE></Excitation></ExperimentalConditions>\n <Model>\n  <Calibration>\n   <Zero><Initial> 0.0 "
         "</Initial><Fitted> 0.00000E+000 </Fitted></Zero>\n   <Gain><Initial> 2.04000E-002 </Initial><Fitted> "
         "2.03734E-002 </Fitted></Gain>\n  </Calibration>\n  <XrayLines><LineGroup Z='26' Label='Fe-K'/></XrayLines>\n"
         "  <AnalyticalLines>\n   <Line><Z> 26 </Z><Label>Ka</Label><Area> 23245 </Area></Line>\n"
         "   <Line><Z> 45 </Z><Label>Ka-Inc</Label></Line>\n  </AnalyticalLines>\n </Model>\n</bAxil>\n")


def _axml_seeds() -> list[Seed]:
    out = [_text_seed("model", "m.axml", _AXML)]
    real = FIXTURES.parent / "real" / "iodp_SOD-Laboratory" / "XRF" / "30kVp_XRF2_FixedCalibration_v02.axml"
    if real.is_file():
        out.append(_text_seed("real", real.name, real.read_bytes()))
    return out


def uxd_bytes(n: int = 40, *, start=10.0, step=0.02, wl="1.5406", raw_name="") -> bytes:
    """A Bruker UXD export: ``_KEY = value`` header, one range, one count per line."""
    head = [f";content of C:\\DATA\\{raw_name} - (Diffrac Plus V4 file)" if raw_name else ";RAW4.00 export",
            "_FILEVERSION = 3", "_SAMPLE = S1_66_67", "_WL_UNIT = A", f"_WL1 = {wl}", "", "; Data for range 1",
            "_DRIVE = COUPLED", f"_STEPSIZE = {step}", f"_START = {start}", "_V4_TTLDETECTOR", "_COUNTS = 1",
            "; Cnt2_D1\t"]
    counts = [f"{100 + (i * 37) % 50:.6f}\t" for i in range(n)]
    return ("\r\n".join(head + counts) + "\r\n").encode("latin-1")


def raw4_bytes(counts, *, start=10.0, step=0.02, wavelength=1.5406, sample="S1_66_67", supplementary=24) -> bytes:
    """A Bruker RAW v4 file in the layout ``xrd_raw4`` reads: file header, a SAMPLEID text record,
    one range header (160 bytes) with its supplementary block, float32 counts."""
    import struct

    out = bytearray(b"RAW4.00\0" + b"\0" * 53)
    name, value = b"SAMPLEID".ljust(24, b"\0"), sample.encode() + b"\n"
    body = b"\0" * 4 + name + value
    out += struct.pack("<II", 10, 8 + len(body)) + body
    rng = bytearray(160)
    struct.pack_into("<II", rng, 0, 160, len(counts))
    struct.pack_into("<dd", rng, 72, start, step)
    struct.pack_into("<I", rng, 88, len(counts))
    struct.pack_into("<d", rng, 112, wavelength)
    struct.pack_into("<I", rng, 140, supplementary)
    out += rng + b"\0" * supplementary + np.asarray(counts, dtype="<f4").tobytes()
    return bytes(out)


def pxrf_csv_bytes(*, utf16=True) -> bytes:
    """A Vanta-style export: a Cal Check row, then IODP-named readings in ppm closing at 10^6."""
    rows = ["Date,Time,Reading,Mode,Unit,Run Number,Sample Name,Text_ID,Offset for SHLF,Comment,Mg,Ca,Fe,LE",
            "2019-10-13,15:04:43,#1,Cal Check,%,,,,,,,,,"]
    for i in range(4):
        mg, ca, fe = 20000 + i, 60000 + 10 * i, 30000 - i
        rows.append(f"2019-10-13,15:1{i}:00,#{i + 2},Geochem,%,{33 + i},385-U1545A-{i + 1}H-5-W-{10 * i + 5},"
                    f"CYL1036554{i},,,{mg:.2f},{ca:.2f},{'ND' if i == 2 else f'{fe:.2f}'},"
                    f"{1e6 - mg - ca - (0 if i == 2 else fe):.2f}")
    text = "\r\n".join(rows) + "\r\n"
    return text.encode("utf-16") if utf16 else text.encode()


def _xrd_uxd_seeds() -> list[Seed]:
    out = [Seed("synth", "p.uxd", {"p.uxd": uxd_bytes()})]
    real = FIXTURES.parent / "real" / "iodp_SOD-Laboratory" / "XRD" / "U1587A_2H3_66_67_CYL11802171.uxd"
    if real.is_file():
        out.append(Seed("real-head", "r.uxd", {"r.uxd": _head_lines(real.read_bytes(), 200)}))
    return out


def _xrd_raw4_seeds() -> list[Seed]:
    return [Seed("synth", "p.raw", {"p.raw": raw4_bytes(np.arange(40, dtype=float) + 100)})]


def _pxrf_seeds() -> list[Seed]:
    return [Seed("synth-utf16", "ExportData.csv", {"ExportData.csv": pxrf_csv_bytes()}),
            Seed("synth-utf8", "ExportData.csv", {"ExportData.csv": pxrf_csv_bytes(utf16=False)})]


_SEEDS = {"avaatech_spe": _avaatech_spe_seeds, "baxil_axml": _axml_seeds, "baxil_csv": _baxil_seeds, "avaatech_xlsx": _xlsx_seeds,
          "lab_xlsx": _lab_xlsx_seeds,
          "itrax_spe": _itrax_spe_seeds, "itrax_results": _itrax_results_seeds, "mca_amptek": _amptek_seeds,
          "mca_spec": _spec_seeds, "lab_pangaea": _pangaea_seeds, "lab_iodp": _iodp_seeds,
          "lab_csv": _lab_csv_seeds, "xrd_nexus": _xrd_nexus_seeds, "xrd_labels": _xrd_labels_seeds,
          "xrd_text": _xrd_text_seeds, "xrd_uxd": _xrd_uxd_seeds, "xrd_raw4": _xrd_raw4_seeds,
          "pxrf_export": _pxrf_seeds}


@functools.lru_cache(maxsize=None)
def seeds(reader: str) -> tuple[Seed, ...]:
    """Seed cases of a reader module (by its name in ``_MODULES``); real files when present."""
    return tuple(_SEEDS[reader]())


def all_seeds() -> tuple[Seed, ...]:
    return tuple(s for r in READERS for s in seeds(r))


def module(reader: str):
    import importlib

    return importlib.import_module(f"xrfhub.readers.{reader}")


# --------------------------------------------------------------------------- mutations

#: What a number in a file may be replaced by: garbage, huge, negative, NaN/inf, odd spellings.
BAD_NUMBERS = ("", "-", "x", "1e309", "-1e309", "1e-400", "nan", "NaN", "inf", "-inf", "Infinity", "-1", "-0",
               "0", "4294967296", "18446744073709551616", "9" * 40, "-9223372036854775809", "1,5", "1.2.3",
               "0x1F", "1_000", "１２", "½", "²", "⁰⁰⁰", "٣", "1e", "+", ".", "1 2", "\x00", "-2147483649", "2e9", "3.5",
               "1e18", "9" * 5000)
_NUMBER = re.compile(rb"[-+]?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?")
#: Bytes one mutation may add (a 5,000-digit number replacing each of 20,000 numbers would
#: make a 100 MB file whose reading takes seconds because of its size alone).
MAX_GROWTH = 1_000_000
_SEPARATORS = (b"\t", b",", b";", b" ", b"!", b"|", b"", b"\t\t", b",,")


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


@st.composite
def _byte_op(draw, data: bytes) -> bytes:
    n = len(data)
    kind = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "overwrite")))
    at = draw(st.integers(0, n))
    if kind == "flip" and n:
        at = min(at, n - 1)
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if kind == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    if kind == "delete":
        return data[:at] + data[at + draw(st.integers(1, 64)):]
    if kind == "overwrite":
        junk = draw(st.binary(min_size=1, max_size=8))
        return data[:at] + junk + data[at + len(junk):]
    return data[:at]  # truncate (also flip on an empty file)


@st.composite
def _line_op(draw, data: bytes) -> bytes:
    lines = _lines(data)
    if not lines:
        return data
    kind = draw(st.sampled_from(("duplicate", "remove", "swap", "blank", "move")))
    i = draw(st.integers(0, len(lines) - 1))
    j = draw(st.integers(0, len(lines) - 1))
    if kind == "duplicate":
        lines.insert(i, lines[i] * draw(st.integers(1, 3)))
    elif kind == "remove":
        del lines[i:i + draw(st.integers(1, 4))]
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "blank":
        lines[i] = b"\n"
    else:
        lines.insert(j, lines.pop(i))
    return b"".join(lines)


@st.composite
def _number_op(draw, data: bytes) -> bytes:
    """Replace one number (or every copy of it) by a bad one."""
    found = list(_NUMBER.finditer(data[:200_000]))
    if not found:
        return data
    match = found[draw(st.integers(0, len(found) - 1))]
    bad = draw(st.sampled_from(BAD_NUMBERS)).encode()
    # every copy, unless that makes a file of hundreds of MB (a long read is not a hang)
    if draw(st.booleans()) or data.count(match.group(0)) * len(bad) > MAX_GROWTH:
        return data[:match.start()] + bad + data[match.end():]
    return data.replace(match.group(0), bad)


@st.composite
def _separator_op(draw, data: bytes) -> bytes:
    old = draw(st.sampled_from(_SEPARATORS[:4]))
    new = draw(st.sampled_from([s for s in _SEPARATORS if s != old]))
    if draw(st.booleans()):
        return data.replace(old, new)
    lines = _lines(data)
    if not lines:
        return data
    i = draw(st.integers(0, len(lines) - 1))
    lines[i] = lines[i].replace(old, new)
    return b"".join(lines)


@st.composite
def _encoding_op(draw, data: bytes) -> bytes:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    kind = draw(st.sampled_from(("utf-16", "utf-16-le", "utf-8-bom", "latin-1", "cp1252", "utf-32", "non-ascii")))
    if kind == "utf-8-bom":
        return b"\xef\xbb\xbf" + data
    if kind == "non-ascii":
        at = draw(st.integers(0, len(text)))
        return (text[:at] + draw(st.sampled_from(("°", "µ", "é", "\u2212", "\ufeff", "\u00a0", "😀", "\u2028")))
                + text[at:]).encode(draw(st.sampled_from(("utf-8", "utf-16"))), errors="replace")
    return text.encode(kind, errors="replace")


@st.composite
def _newline_op(draw, data: bytes) -> bytes:
    lines = [line.rstrip(b"\r\n") for line in _lines(data)]
    if not lines:
        return data
    ends = (b"\n", b"\r\n", b"\r", b"\n\r", b"")
    if draw(st.booleans()):
        end = draw(st.sampled_from(ends))
        return end.join(lines) + end
    return b"".join(line + ends[draw(st.integers(0, 3))] for line in lines)


@st.composite
def _long_line_op(draw, data: bytes) -> bytes:
    unit = draw(st.sampled_from((b"9", b"x", b"1\t", b"1,", b"1 ", b"\t", b"\"", b"$", b"<<")))
    line = unit * draw(st.integers(1_000, 200_000 // len(unit)))
    lines = _lines(data)
    i = draw(st.integers(0, len(lines)))
    if draw(st.booleans()) and lines and i < len(lines):
        lines[i] = lines[i].rstrip(b"\r\n") + line + b"\n"  # lengthen a line
    else:
        lines.insert(i, line + b"\n")
    return b"".join(lines)


@st.composite
def _splice_op(draw, data: bytes) -> bytes:
    """Graft a piece of another format's seed in: a reader meets a cousin's content."""
    other = draw(st.sampled_from([s for s in all_seeds() if not s.files[s.mutated].startswith(b"PK")]))
    donor = other.files[other.mutated]
    a = draw(st.integers(0, min(len(donor), 4096)))
    piece = donor[a:a + draw(st.integers(1, 2048))]
    at = draw(st.integers(0, len(data)))
    if draw(st.booleans()):
        return data[:at] + piece
    return data[:at] + piece + data[at:]


_TEXT_OPS = (_byte_op, _line_op, _number_op, _separator_op, _encoding_op, _newline_op, _long_line_op, _splice_op)


@st.composite
def mutate_text(draw, data: bytes) -> bytes:
    """One to three mutations of a (text) file, or the file emptied or left as it is."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return b""
    if kind == 1:
        return draw(st.sampled_from((b"\n", b" \r\n\t", b"\xef\xbb\xbf", b"\x00" * 8)))
    for _ in range(draw(st.integers(1, 3))):
        data = draw(st.sampled_from(_TEXT_OPS).flatmap(lambda op: op(data)))
    return data


@st.composite
def mutate_xlsx(draw, data: bytes) -> bytes:
    """A workbook: its zip bytes mutated, or a valid zip whose parts (sheet XML, shared strings,
    workbook) are mutated as text."""
    if draw(st.integers(0, 3)) == 0:
        return draw(mutate_text(data))
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        items = [(info, book.read(info.filename)) for info in book.infolist()]
    xml = [k for k, (info, _) in enumerate(items) if info.filename.endswith((".xml", ".rels"))]
    parts = [k for k in xml if "worksheets/" in items[k][0].filename or "sharedStrings" in items[k][0].filename]
    k = draw(st.sampled_from(parts if parts and draw(st.integers(0, 3)) else xml))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        del items[k]
    else:
        info, body = items[k]
        items[k] = (info, draw(mutate_text(body)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for info, body in items:
            book.writestr(info.filename, body)
    return out.getvalue()


def mutations(seed: Seed):
    """Strategy of mutated bytes of a seed's target file."""
    data = seed.files[seed.mutated]
    return mutate_xlsx(data) if data.startswith(b"PK") else mutate_text(data)


def cases(reader: str):
    """Strategy of ``(seed, mutated bytes)`` for a reader."""
    return st.sampled_from(seeds(reader)).flatmap(lambda s: st.tuples(st.just(s), mutations(s)))


# --------------------------------------------------------------------------- the oracle


class FuzzFailure(AssertionError):
    """A reader broke its contract on a fuzzed file (the message says how)."""


class CaseHung(BaseException):
    """Raised by the alarm inside a reader; a BaseException so that no ``except Exception`` in
    the reader turns it into an InputError."""


@contextlib.contextmanager
def hard_timeout(seconds: float):
    """SIGALRM after ``seconds`` (main thread only; elsewhere no guard)."""
    def ring(_signum, _frame):
        raise CaseHung()

    try:
        previous = signal.signal(signal.SIGALRM, ring)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def case_folder(seed: Seed, data: bytes, base: str | Path | None = None):
    """A fresh folder holding the seed's files with the target replaced by ``data``; yields the
    path of the file to read. Fresh each time: the ITRAX readers cache side files per folder."""
    folder = Path(tempfile.mkdtemp(prefix="fz", dir=base))
    try:
        for name, body in seed.files.items():
            (folder / name).write_bytes(data if name == seed.mutated else body)
        yield folder / seed.name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_case(reader, path: Path, options: dict | None = None, *, timeout: float = HANG_S) -> str:
    """Read ``path`` with a reader module; ``"error"`` for an InputError naming a file of the case
    folder, ``"parsed"`` for records. Anything else raises :class:`FuzzFailure`."""
    path = Path(path)
    where = f"{reader.FORMAT} on {path.name!r}"
    try:
        with hard_timeout(timeout):
            reader.read(path, source=path.name, raw=path.read_bytes(), **(options or {}))
    except CaseHung:
        raise FuzzFailure(f"{where}: hang (no answer within {timeout:g} s)") from None
    except InputError as exc:
        if not str(exc).startswith(str(path.parent)):
            raise FuzzFailure(f"{where}: InputError does not name the file: {exc}") from exc
        return "error"
    except Exception as exc:  # noqa: BLE001 - the point of the oracle
        raise FuzzFailure(f"{where}: {type(exc).__name__}: {exc}") from exc
    return "parsed"


def check_parse_one(path: Path, *, timeout: float = HANG_S) -> str:
    """The user's entry point: :func:`xrfhub.sources.parse_one` must return, with records or an
    InputError; ``"error"``/``"parsed"`` like :func:`check_case`."""
    path = Path(path)
    try:
        with hard_timeout(timeout):
            parsed = parse_one(Candidate(path, path.name, explicit=True))
    except CaseHung:
        raise FuzzFailure(f"parse_one on {path.name!r}: hang (no answer within {timeout:g} s)") from None
    except Exception as exc:  # noqa: BLE001
        raise FuzzFailure(f"parse_one on {path.name!r}: {type(exc).__name__}: {exc}") from exc
    if parsed.error is not None:
        if not isinstance(parsed.error, InputError) or not str(parsed.error).startswith(str(path.parent)):
            raise FuzzFailure(f"parse_one on {path.name!r}: bad error {parsed.error!r}")
        if parsed.error.reason.startswith("cannot parse ("):
            raise FuzzFailure(f"parse_one on {path.name!r}: a reader raised a generic exception: {parsed.error}")
        return "error"
    return "parsed"


def run_case(reader: str, seed: Seed, data: bytes, base=None) -> str:
    """Write the case and check it: against the reader, or ``parse_one`` for reader ``"parse_one"``."""
    with case_folder(seed, data, base) as path:
        if reader == "parse_one":
            return check_parse_one(path)
        return check_case(module(reader), path, seed.options)
