"""bAXIL spectrum-evaluation models (``.axml``): the energy calibration and the lines evaluated.

Avaatech scanners aboard IODP expeditions write ``.spe`` files without ``$ENER_FIT:`` or
``$MCA_CAL:``; the energy scale lives in the bAXIL model used to evaluate them, an XML file
kept beside the spectra. Its ``Model/Calibration`` holds ``Zero`` and ``Gain`` (keV and
keV/channel), each with an ``Initial`` and a ``Fitted`` value: the fitted one is the
calibration bAXIL found on the measured spectra, so it is the one used (the initial value is a
starting guess). ``Model/AnalyticalLines`` lists the lines the model evaluates (atomic number
and line label), and ``ExperimentalConditions`` the tube voltage and anode.

A model is not a measurement: ingest reads it as a *calibration* kind and applies it to the
spectra of the same folder that carry no calibration of their own (or to every spectrum when
named with ``--calibration``); see :func:`xrfhub.ingestion.ingest`.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..lines import SYMBOLS, unify_line
from ..records import Calibration

FORMAT = "baxil-axml"
KIND = "calibration"
DESCRIPTION = "bAXIL spectrum-evaluation model (.axml XML: energy calibration, evaluated lines)"


@dataclass
class EnergyModel:
    """What a bAXIL model says about the spectra it evaluates.

    ``calibration`` is the fitted zero/gain with ``source`` ``"baxil:<file name>"``;
    ``tube_kv`` the tube voltage of the model (NaN if absent); ``lines`` the unified names of
    the analytical lines it evaluates (``Ca-Ka``, ``Rh-Ka-inc``); ``line_groups`` the line
    groups as bAXIL labels them (``Ca-K``, ``Rh-K Coh``).
    """

    source: str
    path: str
    calibration: Calibration
    tube_kv: float = math.nan
    anode: str = ""
    lines: list[str] = field(default_factory=list)
    line_groups: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        """JSON-able summary, recorded in the provenance of the cores it calibrates."""
        return {"model": self.source, "gain_kev": self.calibration.gain_kev,
                "zero_kev": self.calibration.offset_kev,
                "tube_kv": None if math.isnan(self.tube_kv) else self.tube_kv, "anode": self.anode,
                "lines": list(self.lines)}


def sniff(head: bytes, name: str = "") -> bool:
    """An XML document whose root element is ``<bAxil>``."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"<") and b"<bAxil" in text[:2048]


def _number(node: ET.Element | None, path, what: str) -> float | None:
    if node is None or node.text is None or not node.text.strip():
        return None
    try:
        value = float(node.text.strip())
    except ValueError:
        raise InputError(path, f"expected a number, found {node.text.strip()[:40]!r}", field=what) from None
    if not math.isfinite(value):
        raise InputError(path, f"expected a finite number, found {node.text.strip()[:40]!r}", field=what)
    return value


def _fitted(cal: ET.Element, key: str, path) -> float | None:
    """The fitted value of ``Calibration/<key>``, else its initial value (a model never fitted)."""
    node = cal.find(key)
    if node is None:
        return None
    for leaf in ("Fitted", "Initial"):
        value = _number(node.find(leaf), path, f"Model/Calibration/{key}/{leaf}")
        if value is not None:
            return value
    return _number(node, path, f"Model/Calibration/{key}")


def read(path, *, source: str | None = None, raw: bytes | None = None, **_options) -> EnergyModel:
    """Read the calibration and the evaluated lines of a bAXIL model."""
    path = Path(path)
    if raw is None:
        raw = path.read_bytes()
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise InputError(path, f"not well-formed XML ({exc}); expected a bAXIL model (.axml)", line=line) from None
    except (LookupError, ValueError) as exc:  # an encoding the XML declaration names but Python lacks
        raise InputError(path, f"cannot decode the XML ({exc}); expected a bAXIL model (.axml)") from None
    if root.tag != "bAxil":
        raise InputError(path, f"XML root element is <{root.tag}>, expected <bAxil> (a bAXIL model)")
    cal = root.find("Model/Calibration")
    if cal is None:
        raise InputError(path, "no <Model><Calibration> in the bAXIL model: it carries no energy calibration",
                         field="Model/Calibration")
    gain = _fitted(cal, "Gain", path)
    zero = _fitted(cal, "Zero", path)
    if gain is None:
        raise InputError(path, "no Gain in <Model><Calibration>: expected the keV per channel",
                         field="Model/Calibration/Gain")
    name = source or path.name
    calibration = Calibration(gain, zero or 0.0, f"baxil:{Path(name).name}")
    if calibration.degenerate:
        raise InputError(path, f"calibration gain {gain:g} keV/channel, zero {zero or 0:g} keV cannot be an "
                               "energy scale (expected 0.0001-1 keV/channel, |zero| < 5 keV)",
                         field="Model/Calibration")
    tube = root.find("ExperimentalConditions/Excitation/DIRECT_TUBE/XRayTube")
    kv = _number(tube.find("Voltage"), path, "XRayTube/Voltage") if tube is not None else None
    anode = (tube.findtext("Anode/Composition") or "").strip() if tube is not None else ""
    lines = []
    for line in root.iterfind("Model/AnalyticalLines/Line"):
        z = _number(line.find("Z"), path, "AnalyticalLines/Line/Z")
        label = (line.findtext("Label") or "").strip()
        if z is None or not label or not 1 <= z <= len(SYMBOLS) or not float(z).is_integer():
            continue  # a line without an element or label names nothing we can store
        lines.append(unify_line(f"{SYMBOLS[int(z) - 1]}-{label}"))
    groups = [g.get("Label", "").replace(" -", "-").strip() for g in root.iterfind("Model/XrayLines/LineGroup")]
    return EnergyModel(name, str(path), calibration, kv if kv is not None else math.nan, anode,
                       list(dict.fromkeys(lines)), [g for g in groups if g])
