"""What the generic MCA readers (``mca_amptek``, ``mca_spec``) share: placing spectra in a core,
turning calibration points into a linear scale, and checking counts.

An MCA file knows its detector, not the core it looked at. Core and depth therefore come from
the caller or the file name:

* ``core=`` (the CLI's ``--core``), else the core of an Avaatech-style file name
  (``PS75-056-1_0100   15.0mm ...``); otherwise :class:`InputError`.
* ``depth_mm=``: the core depth of the spectrum (one number), or one depth per spectrum for a
  file holding several; the section top is ``section_top_mm_override`` (else 0) and the position
  is the rest. Without it, the file name's ``_0100`` section token (3-4 digits cm, 5-6 digits mm)
  and ``NN.Nmm`` position, as for Avaatech names, with ``section_top_mm_override`` winning over
  the token and 0 (with a warning) when there is neither. Otherwise :class:`InputError`.

This module is no reader: it has no ``FORMAT`` and is not listed among the readers.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..records import DEFAULT_CALIBRATION, Calibration
from .avaatech_spe import parse_space_name, section_top_mm

#: Energy units an MCA file may name for its calibration points -> factor to keV.
ENERGY_UNITS = {"kev": 1.0, "ev": 1e-3, "mev": 1e3}


def placements(path: Path, n: int, *, core: str | None, depth_mm, section_top_mm_override: float | None) -> list[dict]:
    """Core, section, section top, position and depth of each of the file's ``n`` spectra,
    with warnings; see the module docstring for the rules."""
    name = parse_space_name(path.stem)
    core_id = (core or name.get("core") or "").strip()
    if not core_id:
        raise InputError(path, "an MCA file names no core: pass the core id (--core / core=), or name the file "
                               "'CORE_0100   15.0mm ...'", field="core")
    warnings: list[str] = []
    section = name.get("section", "")
    if depth_mm is not None:
        depths = _depths(path, depth_mm, n)
        top = float(section_top_mm_override) if section_top_mm_override is not None else 0.0
        return [dict(core=core_id, section=section, section_top_mm=top, position_mm=d - top, depth_mm=d,
                     warnings=()) for d in depths]
    position = name.get("position_mm")
    if position is None:
        raise InputError(path, "an MCA file gives no depth: pass depth_mm= (--depth, core depth in mm), or name "
                               "the file 'CORE_0100   15.0mm ...' (section token and position)", field="depth_mm")
    if n != 1:
        raise InputError(path, f"the file holds {n} spectra and its name gives one position: pass depth_mm= "
                               f"with {n} depths", field="depth_mm")
    if section_top_mm_override is not None:
        top = float(section_top_mm_override)
    elif section:
        top = section_top_mm(section, path, "file name section token")
    else:
        top = 0.0
        warnings.append("section top unknown, 0 used (pass --section-top)")
    return [dict(core=core_id, section=section, section_top_mm=top, position_mm=float(position),
                 depth_mm=top + float(position), warnings=tuple(warnings))]


def name_settings(path: Path) -> dict:
    """Scan settings an Avaatech-style file name carries (tube kV/mA, live time, run, ...)."""
    return parse_space_name(path.stem)


def _depths(path, depth_mm, n: int) -> list[float]:
    values = list(depth_mm) if isinstance(depth_mm, Sequence) and not isinstance(depth_mm, str) else [depth_mm]
    try:
        depths = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InputError(path, f"depth_mm must be a number or a list of numbers, got {depth_mm!r}",
                         field="depth_mm") from None
    if len(depths) != n:
        raise InputError(path, f"{len(depths)} depth(s) given for {n} spectra in the file", field="depth_mm")
    if not all(math.isfinite(d) for d in depths):
        raise InputError(path, f"depth_mm must be finite, got {depth_mm!r}", field="depth_mm")
    return depths


def linear_fit(channels: np.ndarray, energies_kev: np.ndarray, source: str) -> Calibration:
    """Least-squares line through calibration points (one point: through the origin)."""
    channels = np.asarray(channels, dtype=np.float64)
    energies_kev = np.asarray(energies_kev, dtype=np.float64)
    if channels.size == 1:
        return Calibration(float(energies_kev[0] / channels[0]) if channels[0] else math.nan, 0.0, source)
    design = np.column_stack([channels, np.ones_like(channels)])
    with np.errstate(all="ignore"):
        if not (np.isfinite(design).all() and np.isfinite(energies_kev).all()):
            return Calibration(math.nan, math.nan, source)  # degenerate: the caller warns and falls back
        try:
            (gain, offset), *_ = np.linalg.lstsq(design, energies_kev, rcond=None)
        except np.linalg.LinAlgError:  # points near the float limits: no line through them
            return Calibration(math.nan, math.nan, source)
    return Calibration(float(gain), float(offset), source)


def choose_calibration(option: Calibration | None, from_file: Calibration | None,
                       warnings: list[str]) -> Calibration:
    """The caller's calibration (``"option"``), else the file's when usable, else the default."""
    if option is not None:
        return Calibration(option.gain_kev, option.offset_kev, "option")
    if from_file is not None and not from_file.degenerate:
        return from_file
    if from_file is not None:
        warnings.append(f"the file's calibration ({from_file.gain_kev:g} keV/channel, offset "
                        f"{from_file.offset_kev:g} keV) is not an energy scale; the default is used "
                        "(pass --calibration)")
    else:
        warnings.append("no calibration in the file; the default 20 eV/channel is used (pass --calibration)")
    return DEFAULT_CALIBRATION


def whole_counts(values: np.ndarray, path, lines: np.ndarray, field: str) -> np.ndarray:
    """Counts as uint32; a fraction, a negative number or an overflow names its line."""
    rounded = np.rint(values)
    too_big = rounded > np.iinfo(np.uint32).max
    with np.errstate(invalid="ignore"):  # inf - inf: caught by the isfinite test
        wrong = ~np.isfinite(values) | (np.abs(values - rounded) > 1e-6) | (rounded < 0) | too_big
    if wrong.any():
        bad = int(np.flatnonzero(wrong)[0])
        raise InputError(path, f"count {values[bad]:g} of channel {bad} is not a whole number of counts "
                               "in 0..2^32-1", line=int(lines[bad]), field=field)
    return rounded.astype(np.uint32)


def is_number(text: str) -> bool:
    """True for anything ``float`` reads (``inf`` and ``nan`` included: callers check range)."""
    try:
        float(text)
    except ValueError:
        return False
    return True
