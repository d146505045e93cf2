"""Write Avaatech raw spectra (``.spe``, ORTEC-like ASCII) and their file names.

``write_spe`` is public so that tests and benchmarks can make edge-case files (old heads, CRLF,
decimal commas, one or eight counts per line) with the same code the demo corpus uses. The
layout follows DESIGN section 3: ``$KEY:`` lines with the value on the following line(s),
``$DATA:`` then ``first last`` channel, then the counts.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Keys of a new (long) head in the order the scanner writes them.
NEW_HEAD_KEYS = ("SPEC_ID", "SPEC_REM", "DATE_MEA", "MEAS_TIM", "Core_ID", "Section_ID",
                 "X_Position", "Y_Position", "Depth", "Run_ID", "Replicate_ID", "Slit_DC",
                 "Slit_CC", "TotalCPS", "USER_ID", "ACC_VOLT", "TUBE_CUR", "FILTER", "ENER_FIT",
                 "MCA_CAL", "PRESETS", "ROI")
#: Keys of an old (short) head: no position, no TotalCPS, no calibration.
OLD_HEAD_KEYS = ("SPEC_ID", "SPEC_REM", "DATE_MEA", "MEAS_TIM")


@dataclass(frozen=True)
class SpeStyle:
    """How a scanner head writes its files.

    ``head``: "new" (long header with position and calibration) or "old" (four keys);
    ``newline``: "\\n" or "\\r\\n"; ``decimal_comma``: header numbers as ``15,0``;
    ``per_line``: counts per data line (1, or 8 right-aligned in 8-wide fields);
    ``omit``: header keys to leave out (real files drop keys whose value is empty).
    """

    head: str = "new"
    newline: str = "\n"
    decimal_comma: bool = False
    per_line: int = 1
    omit: tuple[str, ...] = field(default=())


@dataclass
class SpeMeta:
    """What one measurement's header and file name say (positions in mm, current in uA)."""

    core: str
    section: str              # section token as written, e.g. "0100" (cm) or "01000" (mm)
    position_mm: float
    date: dt.datetime
    live_s: float = 10.0
    real_s: float = 11.0
    kv: float = 10.0
    current_ua: float = 150.0
    filter: str = "No-Filter"
    y_mm: float = 0.0
    slit_dc_mm: float = 10.0
    slit_cc_mm: float = 12.0
    run: int = 1
    replicate: int = 0
    setting: str = "Low"
    total_cps: float = 0.0
    gain_kev: float = 0.02
    offset_kev: float = 0.0
    remark: str = "Avaatech XRF Core Scanner  head 2 / SDD"
    user: str = "xrfhub-synth"
    spec_id: str = ""         # defaults to the file name without .spe


def space_name(m: SpeMeta) -> str:
    """Space-separated scheme: ``PS75-056-1_0100   15.0mm  10s  10kV 150uA No-Filter ...``."""
    return (f"{m.core}_{m.section} {m.position_mm:6.1f}mm {int(round(m.live_s)):3d}s "
            f"{int(round(m.kv)):3d}kV {int(round(m.current_ua)):3d}uA {m.filter} "
            f"{m.y_mm:5.1f}mm Run{m.run} Rep{m.replicate} Sett {m.setting}.spe")


def bang_name(m: SpeMeta) -> str:
    """17 ``!``-separated fields: core!section!?!depth!date!time!live!kV!uA!X!Y!filter!DC!CC!run!rep!setting."""
    fields = [m.core, m.section, "0", f"{m.position_mm:6.1f}", m.date.strftime("%Y-%m-%d"),
              m.date.strftime("%H-%M-%S"), f"{int(round(m.live_s))}", f"{int(round(m.kv))}",
              f"{int(round(m.current_ua))}", f"{m.position_mm:.1f}", f"{m.y_mm:.1f}", m.filter,
              f"{m.slit_dc_mm:.1f}", f"{m.slit_cc_mm:.1f}", f"Run{m.run}", f"Rep{m.replicate}",
              f"Sett {m.setting}"]
    return "!".join(fields) + ".spe"


def _ortec_e(x: float) -> str:
    """ORTEC scientific notation with a three-digit exponent: ``2.000000E-002``."""
    if x == 0:
        return "0.000000E+000"
    exp = int(np.floor(np.log10(abs(x))))
    mant = x / 10.0 ** exp
    if round(abs(mant), 6) >= 10.0:
        mant, exp = mant / 10.0, exp + 1
    return f"{mant:.6f}E{'+' if exp >= 0 else '-'}{abs(exp):03d}"


def header_lines(meta: SpeMeta, style: SpeStyle, spec_id: str) -> list[str]:
    """The header as a list of lines (without line ends)."""
    def num(x: float, fmt: str = ".1f") -> str:
        s = format(x, fmt)
        return s.replace(".", ",") if style.decimal_comma else s

    values = {
        "SPEC_ID": [spec_id],
        "SPEC_REM": [meta.remark],
        "DATE_MEA": [meta.date.strftime("%m-%d-%Y %H:%M:%S")],
        "MEAS_TIM": [f"{num(meta.live_s, 'g')} {num(meta.real_s, '.1f')}"],
        "Core_ID": [meta.core],
        "Section_ID": [meta.section],
        "X_Position": [num(meta.position_mm)],
        "Y_Position": [num(meta.y_mm)],
        "Depth": [num(meta.position_mm)],
        "Run_ID": [str(meta.run)],
        "Replicate_ID": [str(meta.replicate)],
        "Slit_DC": [num(meta.slit_dc_mm)],
        "Slit_CC": [num(meta.slit_cc_mm)],
        "TotalCPS": [str(int(round(meta.total_cps)))],
        "USER_ID": [meta.user],
        "ACC_VOLT": [num(meta.kv, "g")],
        "TUBE_CUR": [num(meta.current_ua / 1000.0, ".3f")],
        "FILTER": [meta.filter],
        "ENER_FIT": [f"{meta.offset_kev:.6f} {meta.gain_kev:.6f}"],
        "MCA_CAL": ["2", f"{_ortec_e(meta.offset_kev)} {_ortec_e(meta.gain_kev)} keV"],
        "PRESETS": ["Live Time", f"{int(round(meta.live_s))}", "0"],
        "ROI": ["0"],
    }
    keys = NEW_HEAD_KEYS if style.head == "new" else OLD_HEAD_KEYS
    lines = []
    for key in keys:
        if key in style.omit:
            continue
        lines.append(f"${key}:")
        lines.extend(values[key])
    return lines


def spe_text(counts: np.ndarray, meta: SpeMeta, style: SpeStyle = SpeStyle(),
             spec_id: str | None = None) -> str:
    """The whole file content as one string (line ends per ``style``)."""
    counts = np.asarray(counts)
    if counts.ndim != 1:
        raise ValueError(f"counts must be 1-D, got shape {counts.shape}")
    sid = spec_id or meta.spec_id or "spectrum"
    lines = header_lines(meta, style, sid)
    lines += ["$DATA:", f"0 {counts.size - 1}"]
    vals = counts.astype(np.int64).tolist()
    if style.per_line <= 1:
        lines.extend(map(str, vals))
    else:
        k = style.per_line
        for i in range(0, len(vals), k):
            chunk = vals[i:i + k]
            lines.append(("%8d" * len(chunk)) % tuple(chunk))
    return style.newline.join(lines) + style.newline


def write_spe(path: str | os.PathLike, counts: np.ndarray, meta: SpeMeta,
              style: SpeStyle = SpeStyle()) -> Path:
    """Write one spectrum to ``path``; ``$SPEC_ID:`` is the file name without ``.spe``
    unless ``meta.spec_id`` says otherwise. Bytes are exactly what ``style`` asks for."""
    path = Path(path)
    sid = meta.spec_id or (path.name[:-4] if path.name.lower().endswith(".spe") else path.name)
    text = spe_text(counts, meta, style, spec_id=sid)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="ascii", newline="") as fh:
        fh.write(text)
    return path
