"""Energy calibration of spectra whose files carry none: bAXIL models beside them, or the default.

Order of precedence, strongest first: the user's ``--gain``/``--calibration FILE`` (applied by
the readers as an option), the file's own calibration (``$MCA_CAL``/``$ENER_FIT`` ...), a bAXIL
model (``.axml``) in the same folder, and last the default 20 eV/channel, which is never
applied silently: ingest warns with the number of spectra that use it.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from . import __version__
from .records import Process, Spectrum
from .store.generations import now_iso


def models_by_folder(models) -> dict[str, list]:
    """bAXIL models (``readers.baxil_axml.EnergyModel``) grouped by the folder they lie in."""
    out: dict[str, list] = defaultdict(list)
    for m in models:
        out[str(Path(m.path).resolve().parent)].append(m)
    return out


def pick_model(models: list, tube_kv: float):
    """The folder's model for a spectrum at ``tube_kv``: the one of that voltage, else the one
    all models agree on; None when the models of the folder disagree (then nothing is guessed)."""
    if not models:
        return None
    same_kv = [m for m in models if not math.isnan(tube_kv) and m.tube_kv == tube_kv]
    pool = same_kv or models
    first = pool[0].calibration
    if all(abs(m.calibration.gain_kev - first.gain_kev) < 1e-9 and abs(m.calibration.offset_kev - first.offset_kev)
           < 1e-9 for m in pool):
        return pool[0]
    return None


def apply_folder_models(spectra: list[Spectrum], paths: dict[str, str], models) -> tuple[dict[str, list], list[str]]:
    """Give spectra without a calibration of their own the model of their folder.

    ``paths`` maps a spectrum's store source name to the path it was read from. Returns
    (model source -> store names of the spectra it calibrated, warnings).
    """
    folders = models_by_folder(models)
    used: dict[str, list] = defaultdict(list)
    warnings: list[str] = []
    if not folders:
        return used, warnings
    resolved: dict[str, str] = {}
    for s in spectra:
        if s.calibration.source != "default" or s.source not in paths:
            continue
        parent = str(Path(paths[s.source]).parent)
        folder = resolved.setdefault(parent, str(Path(parent).resolve()))
        candidates = folders.get(folder, [])
        model = pick_model(candidates, s.tube_kv)
        if model is None:
            if candidates:
                warnings.append(f"{s.source}: the bAXIL models beside it ({', '.join(m.source for m in candidates)}) "
                                "give different calibrations and none is for its tube voltage; default scale kept")
            continue
        s.calibration = model.calibration
        used[model.source].append(s.source)
    return used, warnings


def default_warning(spectra: list[Spectrum]) -> str | None:
    """One warning naming how many spectra fall back to the default energy scale, or None."""
    users = [s.source for s in spectra if s.calibration.source == "default"]
    if not users:
        return None
    return (f"{len(users)} spectra use the default energy scale (20 eV/channel, no offset): their files carry no "
            "calibration ($MCA_CAL/$ENER_FIT), no bAXIL model (.axml) lies beside them and none was given "
            f"(--calibration FILE or --gain); first: {users[0]}")


def record_calibration(records, spectra, calibrated: dict[str, list], models, model_sources) -> None:
    """Provenance of bAXIL calibrations: the model (calibration, lines evaluated) on each core."""
    if not calibrated:
        return
    by_name = {m.source: m for m in models}
    core_of = {s.source: s.core for s in spectra}
    for source, names in calibrated.items():
        model = by_name.get(source)
        for core_id in sorted({core_of[n] for n in names if n in core_of}):
            rec = records.get(core_id)
            if rec is None or model is None:
                continue
            rec.processes.append(Process("energy_calibration", "xrfhub", __version__, now_iso(),
                                         {**model.describe(), "n_spectra": sum(core_of.get(n) == core_id
                                                                               for n in names)}))
            src = model_sources.get(source)
            if src is not None and all(x.name != src.name for x in rec.sources):
                rec.sources.append(src)
