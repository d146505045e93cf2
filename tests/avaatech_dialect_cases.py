"""Avaatech ``.spe`` files in every dialect, and what the reader made of them before it was sped up.

``write_cases(folder)`` writes the same bytes every time (fixed counts and metadata): each of
the dialects the benchmark mixes (comma decimals, CRLF, packed counts, old heads), the plain
file, all four at once, in both file-name schemes; then layouts real heads write (blank lines
between keys and ten right-aligned counts per line, as the IODP files; whole counts written as
floats; ORTEC blocks after the counts; a BOM; a latin-1 remark); and broken files whose
refusal must keep its message. ``outcome(path)`` is what ``avaatech_spe.read`` returns for a
file, as JSON-able text: every field of the Spectrum (floats by ``repr``, so NaN and the last
bit count) and the sha256 of its uint32 counts, or the error message.

``tests/data/avaatech_dialects_golden.json`` holds the outcomes of the reader as it was before
the fast path (commit "golden outcomes of the Avaatech reader per dialect"); regenerate it only
for a deliberate change of behaviour:

    python tests/avaatech_dialect_cases.py --write
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parent / "data" / "avaatech_dialects_golden.json"
DIALECTS = ("plain", "comma", "crlf", "packed", "old", "all4")


def _counts(seed: int) -> np.ndarray:
    """Counts shaped like a real 10 kV spectrum: large in the middle, zeros at the top end."""
    rng = np.random.default_rng(seed)
    channel = np.arange(2048)
    level = 5e3 * np.exp(-((channel - 300) / 180.0) ** 2) + 40 * np.exp(-channel / 400.0)
    level[1500:] = 0.0
    return rng.poisson(level).astype(np.int64)


def _style(dialect: str):
    from xrfhub.synth.spe_writer import SpeStyle

    return {"plain": SpeStyle(), "comma": SpeStyle(decimal_comma=True), "crlf": SpeStyle(newline="\r\n"),
            "packed": SpeStyle(per_line=8), "old": SpeStyle(head="old"),
            "all4": SpeStyle(head="old", newline="\r\n", decimal_comma=True, per_line=8)}[dialect]


def _meta(k: int):
    from xrfhub.synth.spe_writer import SpeMeta

    return SpeMeta(core="PS75-056-1" if k % 2 == 0 else "GeoB1234-5", section="0100" if k % 3 else "01500",
                   position_mm=12.5 + 10 * k, date=dt.datetime(2014, 5, 6, 7, 8, 9) + dt.timedelta(minutes=k),
                   live_s=10.0, real_s=11.25 + 0.01 * k, kv=10.0 if k % 4 else 30.0,
                   current_ua=150.0 if k % 4 else 1000.0, filter="No-Filter" if k % 4 else "Pd-Thick",
                   y_mm=-2.0 if k % 5 == 0 else 0.0, run=1 + k % 3, replicate=k % 2, total_cps=98765.0 + k,
                   gain_kev=0.0201, offset_kev=-0.0015)


def _iodp_text(counts: np.ndarray, eol: str) -> str:
    """The layout of the real IODP expedition files: a blank line after every value, keys in
    their own order, placeholder core and section, ten 8-wide counts per line."""
    head = ["$Core_ID:", "0", "", "$Section_ID:", "0", "", "$Depth:", "  10.0", "", "$Run_ID:", "2", "",
            "$X_Position:", "  10.0", "", "$Y_Position:", " -2.0", "", "$Replicate_ID:", "0", "",
            "$Slit_DC:", "10.00", "", "$Slit_CC:", "12.00", "", "$TotalCPS:", " 168809", "",
            "$SPEC_ID:", "  10.0", "", "$USER_ID:", "", "$ACC_VOLT:", "  30.0", "", "$TUBE_CUR:", "  1.250", "",
            "$MEAS_TIM:", "      6     10", "", "$DATE_MEA:", "04-01-2023 09:36:24", "", "$DATA:", "      0   2047"]
    rows = ["".join(f"{c:8d}" for c in counts[i:i + 10]) for i in range(0, counts.size, 10)]
    return eol.join(head + rows) + eol


def write_cases(folder: Path) -> dict[str, Path]:
    """Write every case under ``folder``; returns case name -> file."""
    from xrfhub.synth.spe_writer import bang_name, space_name, spe_text

    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Path] = {}

    def put(case: str, name: str, data: bytes) -> None:
        sub = folder / case
        sub.mkdir(exist_ok=True)
        path = sub / name
        path.write_bytes(data)
        cases[case] = path

    k = 0
    for dialect in DIALECTS:
        for scheme in ("space", "bang"):
            meta = _meta(k)
            name = space_name(meta) if scheme == "space" else bang_name(meta)
            text = spe_text(_counts(k), meta, _style(dialect), spec_id=name[:-4])
            put(f"{dialect}-{scheme}", name, text.encode("ascii"))
            k += 1
    meta = _meta(20)
    base = spe_text(_counts(20), meta, _style("plain"), spec_id=space_name(meta)[:-4])
    sname = space_name(meta)
    iodp = "397-U1587A-2H-1-A_SHLF11796791!0!0!  10.0!2023-04-01!09-36-35!6!30!1250!10.0!-2.0!Pd-Thick!10.0!12.0!" \
           "Run2!Rep0!Sett Middle.spe"
    put("iodp-layout-lf", iodp, _iodp_text(_counts(21), "\n").encode("ascii"))
    put("iodp-layout-crlf", iodp, _iodp_text(_counts(22), "\r\n").encode("ascii"))
    floats = base.split("$DATA:\n")
    body = floats[1].split("\n")
    put("float-counts", sname, (floats[0] + "$DATA:\n" + "\n".join([body[0]] + [f"{v}.0" if v else "0." for v in
                                                                              body[1:-1]] + [""])).encode("ascii"))
    put("trailing-ortec-blocks", sname, (base + "$ROI:\n0\n$ENER_FIT:\n-0.002 0.0199\n").encode("ascii"))
    put("bom", sname, b"\xef\xbb\xbf" + base.encode("ascii"))
    put("latin1-remark", sname, base.replace("head 2 / SDD", "t\xeate 2").encode("latin-1"))
    put("cr-only", sname, base.replace("\n", "\r").encode("ascii"))
    put("tabs-and-trailing-blanks", sname, base.replace("\n0 2047\n", "\n0\t2047  \n").replace(
        "$DATA:", "$DATA:  ").encode("ascii"))
    # broken files: the message (file, line, field) must not change
    put("bad-garbled-count", sname, base.replace("\n0 2047\n", "\n0 2047\n12x\n", 1).encode("ascii"))
    put("bad-truncated", sname, base[:len(base) - 3000].encode("ascii"))
    put("bad-negative-count", sname, base.replace("\n0 2047\n", "\n0 2047\n-5\n", 1).replace(
        "\n0 2047\n", "\n0 2048\n").encode("ascii"))
    put("bad-no-data", sname, base.split("$DATA:")[0].encode("ascii"))
    put("bad-bounds", sname, base.replace("\n0 2047\n", "\n0 two\n").encode("ascii"))
    put("bad-fractional-count", sname, base.replace("\n0 2047\n", "\n0 2047\n1.5\n", 1).replace(
        "\n0 2047\n", "\n0 2048\n").encode("ascii"))
    put("bad-huge-count", sname, base.replace("\n0 2047\n", "\n0 2047\n99999999999\n", 1).replace(
        "\n0 2047\n", "\n0 2048\n").encode("ascii"))
    put("bad-dollar-in-counts", sname, base.replace("\n0 2047\n", "\n0 2047\n12$3\n", 1).replace(
        "\n0 2047\n", "\n0 2048\n").encode("ascii"))
    put("bad-text-before-keys", sname, ("hello\n" + base).encode("ascii"))
    put("bad-gamma", sname, base.replace("head 2 / SDD", "NaI detector").encode("ascii"))
    put("bad-unit", sname, base.replace("$X_Position:\n", "$X_Position:\n12.5furlong\n", 1).replace(
        "12.5furlong\n" + f"{meta.position_mm:.1f}\n", "12.5furlong\n").encode("ascii"))
    # CRLF files keep their line ends while the counts are parsed: their refusals must still
    # read as the LF file's, line numbers and quoted text included
    for case in [c for c in cases if c.startswith("bad-")]:
        data = cases[case].read_bytes()
        put(f"{case}-crlf", cases[case].name, data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    put("mixed-line-ends", sname, base.replace("\n", "\r\n", 30).encode("ascii"))
    put("cr-and-crlf", sname, base.replace("\n", "\r\n").replace("\r\n$DATA:", "\r$DATA:").encode("ascii"))
    put("crlf-trailing-ortec-blocks", sname, (base + "$ROI:\n0\n$ENER_FIT:\n-0.002 0.0199\n").replace(
        "\n", "\r\n").encode("ascii"))
    return cases


def _value(v):
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, np.ndarray):
        return {"dtype": str(v.dtype), "shape": list(v.shape), "sha256": hashlib.sha256(v.tobytes()).hexdigest()}
    if dataclasses.is_dataclass(v):
        return {f.name: _value(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, tuple):
        return [_value(x) for x in v]
    return v


def outcome(path: Path) -> dict:
    """What the reader makes of ``path``: the Spectrum's fields or the refusal, path-independent."""
    from xrfhub.errors import InputError
    from xrfhub.readers import avaatech_spe

    try:
        spectra = avaatech_spe.read(path, source=path.name)
    except InputError as exc:
        return {"error": str(exc).replace(str(path.parent), "<dir>")}
    return {"spectra": [_value(s) for s in spectra]}


REAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real" / "iodp_SOD-Laboratory" / "XRF"


def real_files() -> list[Path]:
    """The real IODP Avaatech files, when the shared fixtures are there."""
    return sorted(REAL.glob("*.spe")) if REAL.is_dir() else []


def outcomes() -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = {case: outcome(path) for case, path in sorted(write_cases(Path(tmp)).items())}
    out.update({f"real:{path.name}": outcome(path) for path in real_files()})
    return out


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(outcomes(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
