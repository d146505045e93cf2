"""Bruker RAW version 4 binary patterns (``RAW4.00``, DIFFRAC.SUITE / XRDWizard).

Layout, as read here (little-endian; offsets checked against the UXD text export of the same
measurement, which the tests compare value for value):

* a 61-byte file header opening with ``RAW4.00``;
* info records, each ``uint32 type, uint32 length`` (length counting the whole record): text
  entries (type 10: name and value, e.g. ``SAMPLEID``), instrument entries (type 30) ...;
* a range: ``uint32 header length`` (160), ``uint32 steps``, ..., at +72 ``float64`` start
  2-theta, at +80 ``float64`` step, at +112 ``float64`` wavelength (angstrom), at +140 ``uint32``
  length of the supplementary records that follow the range header; then ``steps`` ``float32``
  counts.

The first record whose length field reads 160 where a record type is expected starts the
ranges (no info record type is 160). Every number is checked (finite, 2-theta in 0..180,
positive step, a plausible wavelength, the counts ending inside the file); a file that does not
fit is refused naming the offset, rather than read at a guessed offset. One range per file
(several are refused: export them separately). The pattern id is the ``SAMPLEID`` entry, else
the file stem; the wavelength is the file's (``wavelength_source="file"``) unless the
``wavelength`` option is given.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..records import DiffractionPatterns
from .xrd_text import MIN_POINTS, wavelength_option

FORMAT = "bruker-raw4"
KIND = "diffraction"
DESCRIPTION = "Bruker RAW v4 binary pattern (RAW4.00)"

MAGIC = b"RAW4.00"
_FILE_HEADER = 61
_RANGE_HEADER = 160
_TEXT_RECORD = 10


def sniff(head: bytes, name: str = "") -> bool:
    return head.startswith(MAGIC)


def _u32(raw: bytes, offset: int, path, what: str) -> int:
    if offset + 4 > len(raw):
        raise InputError(path, f"file ends at byte {len(raw)} inside the {what} (offset {offset}): truncated?")
    return struct.unpack_from("<I", raw, offset)[0]


def _f64(raw: bytes, offset: int, path, what: str) -> float:
    if offset + 8 > len(raw):
        raise InputError(path, f"file ends at byte {len(raw)} inside the {what} (offset {offset}): truncated?")
    value = struct.unpack_from("<d", raw, offset)[0]
    if not math.isfinite(value):
        raise InputError(path, f"{what} at offset {offset} is not a finite number")
    return value


def _text_entry(record: bytes) -> tuple[str, str]:
    """(name, value) of a type-10 record: a NUL-padded name at +12, the value after its padding."""
    body = record[12:]
    name = body[:24].split(b"\0", 1)[0].decode("latin-1")
    value = body[24:].split(b"\0", 1)[0].decode("latin-1").strip()
    return name, value


def read(path, *, source: str | None = None, raw: bytes | None = None, wavelength: float | None = None,
         **_options) -> DiffractionPatterns:
    """Read a RAW4 file into a one-pattern :class:`DiffractionPatterns` (see the module docstring)."""
    path = Path(path)
    wl_option = wavelength_option(path, wavelength)
    raw = path.read_bytes() if raw is None else raw
    if not raw.startswith(MAGIC):
        raise InputError(path, f"expected a Bruker RAW v4 file starting with {MAGIC.decode()!r}")
    info: dict[str, str] = {}
    offset = _FILE_HEADER
    while True:
        kind = _u32(raw, offset, path, "info records")
        if kind == _RANGE_HEADER:
            break
        length = _u32(raw, offset + 4, path, "info records")
        if length < 8 or offset + length > len(raw):
            raise InputError(path, f"info record at offset {offset} has length {length}, outside the file: "
                                   "not a RAW v4 layout this reader knows")
        if kind == _TEXT_RECORD:
            name, value = _text_entry(raw[offset:offset + length])
            info[name] = value
        offset += length
    start_range = offset
    steps = _u32(raw, offset + 4, path, "range header")
    start = _f64(raw, offset + 72, path, "start 2-theta")
    step = _f64(raw, offset + 80, path, "2-theta step")
    lam_file = _f64(raw, offset + 112, path, "wavelength")
    supplementary = _u32(raw, offset + 140, path, "range header")
    data = offset + _RANGE_HEADER + supplementary
    end = data + 4 * steps
    if steps < MIN_POINTS or end > len(raw):
        raise InputError(path, f"range at offset {start_range} declares {steps} steps from byte {data}, but the file "
                               f"has {len(raw)} bytes: truncated, or not a RAW v4 layout this reader knows")
    if end != len(raw):
        raise InputError(path, f"{len(raw) - end} bytes follow the first range (offset {end}): files of several "
                               "ranges are not read; export each range separately")
    if not (0 <= start < 180 and 0 < step < 10 and start + step * (steps - 1) < 180):
        raise InputError(path, f"range at offset {start_range}: start {start:g} and step {step:g} degrees do not give "
                               "2-theta within 0..180")
    counts = np.frombuffer(raw, dtype="<f4", count=steps, offset=data).astype(np.float64)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise InputError(path, f"counts from byte {data} are not finite non-negative numbers")
    metadata = {"format": FORMAT, "points": str(steps), "start_2theta": f"{start:g}", "step_2theta": repr(step),
                **{k.lower(): v for k, v in info.items() if v}}
    if wl_option is not None:
        lam, lam_source = wl_option, "option"
        metadata["wavelength_file"] = f"{lam_file:g}"
    else:
        if not 0.05 < lam_file < 5.0:
            raise InputError(path, f"wavelength {lam_file:g} angstrom at offset {start_range + 112} is implausible: "
                                   "pass --wavelength")
        lam, lam_source = lam_file, "file"
    pid = info.get("SAMPLEID", "").strip() or path.stem
    return DiffractionPatterns(source=source or path.name, pattern_ids=[pid],
                               two_theta=start + step * np.arange(steps, dtype=np.float64),
                               intensity=counts[None, :], wavelength=lam, wavelength_source=lam_source,
                               axis="2theta", lines=[], metadata=metadata)
