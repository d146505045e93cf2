"""Spectra of other instruments that share a file format with XRF spectra.

ORTEC's ``.spe`` layout (``$SPEC_ID:`` ... ``$DATA:``) is written by Avaatech XRF scanners and by
gamma-ray spectrometers alike, e.g. the natural gamma radiation (NGR) logger of a core
laboratory with NaI scintillators. Counts of a gamma spectrum stored as XRF would be read as
X-ray lines; a file whose header describes a scintillation detector or a natural-gamma system
is therefore refused, before any core or position question. Not a reader: spectrum readers call
:func:`refuse_gamma`.
"""
from __future__ import annotations

import re

from ..errors import InputError

#: Detector materials of gamma spectrometers (scintillators), never of XRF scanners (which use
#: silicon drift, Si(Li), Si-PIN or CdTe detectors), and names of natural-gamma systems.
_GAMMA = re.compile(r"(?<![A-Za-z])(?:NaI|CsI|BGO|LaBr3?|CeBr3?|NGR|natural[\s_-]*gamma)(?![a-z])")
#: What every match of ``_GAMMA`` contains: where none is in the text, the regex cannot match,
#: and plain substring tests are ten times cheaper than its scan with look-arounds.
_GAMMA_WORDS = ("NaI", "CsI", "BGO", "LaBr", "CeBr", "NGR", "natural")


def refuse_gamma(header_lines: list[str], path, *, first_line: int = 1) -> None:
    """Raise :class:`InputError` when a header line names a gamma detector or system."""
    refuse_gamma_text("\n".join(header_lines), path, first_line=first_line)


def refuse_gamma_text(header: str, path, *, first_line: int = 1) -> None:
    """:func:`refuse_gamma` on the header as one text (lines joined by ``\\n``).

    One regex scan of the whole header instead of one per line: a file is read thousands of
    times more often than it is refused. Only when the text matches somewhere are its lines
    searched one by one, so the refusal names the line, and a match that only spans two lines
    (``natural`` at the end of one, ``gamma`` at the start of the next) is not one, as before.
    """
    if not any(word in header for word in _GAMMA_WORDS) or _GAMMA.search(header) is None:
        return
    for number, line in enumerate(header.split("\n"), start=first_line):
        match = _GAMMA.search(line)
        if match:
            raise InputError(path, f"not an XRF spectrum: the header names {match.group(0)!r} "
                                   f"({line.strip()[:60]!r}), a gamma-ray detector or natural-gamma system; xrfhub "
                                   "stores X-ray fluorescence spectra", line=number)
