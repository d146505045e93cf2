"""ITRAX raw spectra: one ``Lnnnnnn.spe`` file per measured point.

Layout: about 37 header records ``key<TAB>value<TAB>unit<TAB>``, each ended by a bare CR
(``Tube voltage:  30  kV``, ``Position  707.540018  mm``, ``livetime  13.480499  seconds``),
then the record ``channel<TAB>content``, then one ``channel<TAB>count`` row per channel ended
by CRLF, channels numbered from 1 and counts written as decimals (``41.000<TAB>1.000``).
Keys are matched by name (a trailing colon and case ignored), never by position.

Calibration: the header's ``E0``/``E1`` (0 keV, 1 keV/channel) is a placeholder. In order of
precedence the reader uses ``calibration=`` (source ``"option"``), the ``E-gain``/``E-offset``
of this spectrum's row in a ``Results.txt``/``result.txt`` beside it (``"Results.txt"``: Q-Spec
refits the gain per point; a table superseded by a newer evaluation is consulted last), the
``settings.dfl`` beside it (``"settings.dfl"``), then the nearest ``.dfl`` up to three folders
above, where ITRAX runs keep the run's settings (applied with a warning naming it). With none of
these the file is refused: the placeholder would put Fe K-alpha at 360 keV. "Beside" means the same folder, the section folder
above when the file sits in the ITRAX ``XRF data`` folder, and the folder of the zip archive when
it was read from one (``XRF Data.zip``).

Sum spectra: Q-Spec writes ``sumspectra.spe`` (the sum of a section's points) into the section
folder; it is not a scan point and is not stored (:class:`~xrfhub.errors.NotStored`, said in the
ingest report). ``sumspectra_<sample>.spe`` is the spectrum of a discrete lab sample: stored with
``sample_id`` = ``<sample>``, ``depth_scale`` ``sample`` and run ``sample-<sample>``, and paired
with the lab rows of the same sample id (see :func:`_sample_spectrum`).

Side files that do not belong: a ``document.txt`` whose date (more than a day apart) or section
name disagrees with the spectrum's own header is not used, with a warning naming both; a
``.dfl`` fitted for another tube voltage or current than the header's is not used either, and
one whose file name names another run is warned about (see :func:`_settings_disagree`). Q-Spec's calibration
applies to the 0-based channel index (the file's row number minus one), which is what
:class:`~xrfhub.records.Calibration` expects.

Position in the section: the matched ``Results.txt`` row, else the header's ``Position``, else
``document.txt`` (start + n x step for ``L{n:06d}.spe``); the spectrum's validity follows its
``Results.txt`` row. Core and section as in ``itrax_results``: ``core=`` wins, then the section
name from ``document.txt``, the ``Results.txt`` paths, the header's ``Section name`` (unless it is
the software's default ``section``), then the folder above ``XRF data``.
"""
from __future__ import annotations

import dataclasses
import math
import re
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import InputError, NotStored
from ..records import DEPTH_SAMPLE, Calibration, Spectrum, on_depth_scale, sample_run
from . import itrax_meta as meta
from . import itrax_results

FORMAT = "itrax-spe"
KIND = "spectra"
DESCRIPTION = "ITRAX raw spectrum (Lnnnnnn.spe, tab-separated header ended by bare CR)"

_DATA_HEADER = re.compile(rb"(?:^|[\r\n])channel\tcontent", re.IGNORECASE)
_POINT_NUMBER = re.compile(r"^L(\d+)$", re.IGNORECASE)
_PLACEHOLDER_SECTION = "section"  # what the ITRAX software writes when the operator leaves it
_POSITION_AGREE_MM = 0.05
_SUM_SPECTRUM = re.compile(r"^sum_?spectr(?:a|um)(?:[_\- ]+(?P<sample>.+))?$", re.IGNORECASE)
#: How far a document's date may lie from a spectrum's (a scan may run past midnight).
_DOCUMENT_DAYS = 1
#: Tube kV/mA of a settings file and a header agree within this (both are written as set, e.g. 30).
_TUBE_AGREE = 0.05


def sniff(head: bytes, name: str = "") -> bool:
    """Tab-separated header records and a ``channel<TAB>content`` record; Avaatech files open
    with ``$SPEC_ID:`` and are never claimed."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"$") or b"\x00" in text:
        return False
    first = re.split(rb"[\r\n]", text, maxsplit=1)[0]
    return b"\t" in first and _DATA_HEADER.search(text) is not None


# --------------------------------------------------------------------------- parsing


def parse_header(records: list[str], path) -> tuple[dict[str, tuple[str, str, int]], list[str]]:
    """``key -> (value, unit, line)`` with keys lower-cased and without their colon."""
    header: dict[str, tuple[str, str, int]] = {}
    for number, record in enumerate(records, start=1):
        if not record.strip():
            continue
        cells = record.split("\t")
        if len(cells) < 2:
            raise InputError(path, f"expected a 'key<TAB>value<TAB>unit' header record, found {record[:40]!r}",
                             line=number)
        key = cells[0].strip().rstrip(":").strip().lower()
        header[key] = (cells[1].strip(), cells[2].strip() if len(cells) > 2 else "", number)
    return header, records


def parse_counts(rows: list[str], first_line: int, path) -> np.ndarray:
    """Counts of the ``channel<TAB>content`` rows; channels must run 1, 2, ... (or 0, 1, ...)."""
    body = [r for r in rows if r.strip()]
    if not body:
        raise InputError(path, "no channel rows after 'channel<TAB>content'", line=first_line)
    # one conversion of all tokens; a row with a missing or extra cell shifts the channel column,
    # which the numbering check below then reports
    try:
        flat = np.array(" ".join(body).split(), dtype=np.float64)
    except ValueError:
        flat = None
    if flat is None or flat.size != 2 * len(body):
        _locate_bad_row(rows, first_line, path)
    table = flat.reshape(-1, 2)
    channels, counts = table[:, 0], table[:, 1]
    start = channels[0]
    expected = start + np.arange(len(channels))
    if start not in (0.0, 1.0) or not np.array_equal(channels, expected):
        bad = int(np.flatnonzero(channels != expected)[0]) if not np.array_equal(channels, expected) else 0
        raise InputError(path, f"channel numbers must run 1, 2, 3, ...; found {channels[bad]:g}",
                         line=first_line + _row_offset(rows, bad), field="channel")
    rounded = np.rint(counts)
    with np.errstate(invalid="ignore"):  # nan/inf counts are caught by the isfinite test
        wrong = ~np.isfinite(counts) | (np.abs(counts - rounded) > 1e-6) | (rounded < 0) | \
            (rounded > np.iinfo(np.uint32).max)
    if wrong.any():
        bad = int(np.flatnonzero(wrong)[0])
        raise InputError(path, f"count {counts[bad]:g} is not a whole number of counts in 0..2^32-1",
                         line=first_line + _row_offset(rows, bad), field="content")
    return rounded.astype(np.uint32)


def _row_offset(rows: list[str], nonblank_index: int) -> int:
    seen = -1
    for offset, row in enumerate(rows):
        if row.strip():
            seen += 1
            if seen == nonblank_index:
                return offset
    return len(rows)


def _locate_bad_row(rows, first_line, path):
    for offset, row in enumerate(rows):
        if not row.strip():
            continue
        cells = row.split("\t")
        if len(cells) != 2:
            raise InputError(path, f"expected 'channel<TAB>count', found {row[:40]!r}", line=first_line + offset)
        for cell, name in zip(cells, ("channel", "content")):
            if meta.number(cell) is None or "," in cell:
                raise InputError(path, f"expected a number, found {cell[:20]!r}", line=first_line + offset, field=name)
    raise InputError(path, "cannot read the channel rows", line=first_line)


def _header_number(header, key: str, path) -> float | None:
    if key not in header or not header[key][0]:
        return None
    value, _unit, line = header[key]
    parsed = meta.number(value)
    if parsed is None or not math.isfinite(parsed):
        raise InputError(path, f"expected a number, found {value[:40]!r}", line=line, field=key)
    return parsed


def _iso_date(header) -> str:
    date = header.get("date", ("", "", 0))[0]
    time = header.get("time", ("", "", 0))[0]
    for fmt in ("%d-%b-%y %I:%M %p", "%d-%b-%Y %I:%M %p", "%d-%b-%y %H:%M", "%d-%b-%y %H:%M:%S", "%d-%b-%y"):
        try:
            return datetime.strptime(f"{date} {time}".strip(), fmt).isoformat()
        except ValueError:
            continue
    return ""


# --------------------------------------------------------------------------- side files


def _results_row(path: Path, warnings: list[str]):
    """(table, row) of this spectrum in a result table beside it, or (None, None)."""
    for candidate in itrax_results.current_results(meta.find_results(path)):
        try:
            table = itrax_results.load_results(candidate)
        except InputError as exc:
            warnings.append(f"{candidate.name} not used: {exc.reason}")
            continue
        row = table.row_of(path.name)
        if row is not None:
            return table, row
    return None, None


def _calibration(option, table, row, ctx, header, path, warnings, names=("", "")) -> Calibration:
    """The spectrum's energy calibration (precedence in the module docstring). ``names`` is the
    spectrum's (core, section), which a settings file's own name must not contradict."""
    if option is not None:
        return dataclasses.replace(option, source="option")
    if table is not None:
        cal = Calibration(table.value(row, "e-gain"), table.value(row, "e-offset"), "Results.txt")
        if not cal.degenerate:
            return cal
        warnings.append(f"{table.source} row for {path.name} has no usable E-gain/E-offset")
    settings = ctx["settings"]
    refused = []  # settings files that disagree with the header: named, with why, in the refusal
    why = _settings_disagree(settings, settings.source, header, names, path, warnings) if settings is not None else ""
    if why:
        refused.append(f"{settings.source} ({why})")
        settings = None
    if settings is not None:
        cal = settings.calibration()
        if cal is not None and not cal.degenerate:
            return cal
        warnings.append(f"{settings.source} has no usable keV/channel and energy offset")
    higher = _settings_above(path)
    why = _settings_disagree(meta.load_dfl(Path(higher)), higher, header, names, path, warnings) if higher else ""
    if why:
        refused.append(f"{higher} ({why})")
        higher = ""
    if higher:
        # ITRAX runs keep one Q-Spec settings file at the top of the run's folder (the section
        # folders below hold the spectra): the nearest one above is the run's, applied with a
        # warning that names it, so a user whose tree mixes runs sees which file was used
        cal = meta.load_dfl(Path(higher)).calibration()
        if cal is not None and not cal.degenerate:
            warnings.append(f"energy calibration from {higher}, the nearest Q-Spec settings above the spectrum "
                            "(none beside it); pass --gain/--offset if that file belongs to another run")
            return dataclasses.replace(cal, source="settings.dfl (folder above)")
    offset = _header_number(header, "e0", path)
    gain = _header_number(header, "e1", path)
    written = (f"E0 {offset:g} keV, E1 {gain:g} keV/channel" if offset is not None and gain is not None
               else "no usable E0/E1")
    unusable = f"; {higher} in a folder above has no usable keV/channel and energy offset" if higher else ""
    if refused:
        unusable += f"; not used because it disagrees with the spectrum's header: {'; '.join(refused)}"
    raise InputError(path, f"no energy calibration: the header holds only the ITRAX placeholder ({written}); "
                           "put the scan's Results.txt or Q-Spec settings (.dfl) beside the file or in the run's "
                           f"folder above it, or pass --gain (keV/channel) and --offset (keV){unusable}", field="E1")


def _settings_above(path: Path, levels: int = 3) -> str:
    """The nearest ``.dfl`` up to ``levels`` folders above the searched ones (the run's settings
    at the top of its folder tree); "" when there is none."""
    folder = meta.search_folders(path)[-1]
    for parent in list(folder.parents)[:levels]:
        try:
            found = sorted(p.name for p in parent.iterdir() if p.suffix.lower() == ".dfl" and p.is_file())
        except OSError:
            continue
        if found:
            return str(parent / found[0])
    return ""


def _position(table, row, header, doc, path, warnings) -> float:
    from_header = None
    if "position" in header and header["position"][0]:
        value = _header_number(header, "position", path)
        from_header = meta.length_mm(value, header["position"][1], path, "Position")
    if table is not None:
        position = float(table.position_mm()[row])
        if from_header is not None and abs(from_header - position) > _POSITION_AGREE_MM:
            warnings.append(f"header Position {from_header:g} mm disagrees with {table.source} {position:g} mm; "
                            f"{table.source} used")
        return position
    if from_header is not None:
        return from_header
    match = _POINT_NUMBER.match(path.stem)
    if doc is not None and match and math.isfinite(doc.start_mm) and math.isfinite(doc.step_mm):
        warnings.append(f"position from {doc.source}: start + {int(match.group(1))} x step")
        return doc.position_of(int(match.group(1)))
    raise InputError(path, "no position in section: the header has no 'Position' and no Results.txt beside the "
                           "file lists it; put the scan's Results.txt (or document.txt) beside it",
                     field="Position")


def _section_names(table, header, doc, path) -> list[tuple[str, str]]:
    names = [(doc.section_name if doc else "", doc.source if doc else "")]
    if table is not None:
        names.append((table.section_name(), table.source))
    written = header.get("section name", ("", "", 0))[0]
    if written.lower() != _PLACEHOLDER_SECTION:
        names.append((written, "header Section name"))
    inside_zip = meta.zip_folder(path)
    if inside_zip is not None:
        names.append((inside_zip.name, "folder"))
    elif path.parent.name.lower() == meta.XRF_DATA_FOLDER:
        names.append((path.parent.parent.name, "folder"))
    return names


def _settings_run_name(name: str) -> str:
    """The run named by a settings file's name: ``CD166_19_(2020)_SETTINGS.dfl`` -> ``CD166_19_(2020)``;
    "" for names that are only the words settings/results (``settings.dfl``, ``Results_ settings.dfl``)."""
    stem = re.sub(r"(?i)(?:^|(?<=[_\- .]))(?:results?|settings?|q-?spec)(?=$|[_\- .])", "", Path(name).stem)
    return stem.strip(" _-.")


def _settings_disagree(settings, name: str, header, names, path, warnings) -> str:
    """Why a Q-Spec settings file does not describe this spectrum ("" when it may be used); warned.

    A ``.dfl`` states no date, sample or section, so what both files state is compared: the fit's
    tube (``[Fit cluster] kV``/``mA``) with the header's ``Tube voltage``/``Tube current``: a
    settings file made for another tube setting is another run's, so it is not used. Its
    file name may name the run (``CD166_19_(2020)_SETTINGS.dfl``): a name that shares nothing with
    the spectrum's core or section is warned about, naming both, but the file is still used (""),
    because a file name is a weaker statement than a number both files write.
    """
    kv, ma = settings.tube()
    header_kv = _header_number(header, "tube voltage", path)
    header_ma = _header_number(header, "tube current", path)
    for what, theirs, ours, unit in (("tube voltage", kv, header_kv, "kV"), ("tube current", ma, header_ma, "mA")):
        if ours is not None and math.isfinite(theirs) and abs(theirs - ours) > _TUBE_AGREE:
            why = f"fitted for {what} {theirs:g} {unit}, the spectrum's header says {ours:g} {unit}"
            warnings.append(f"{name} was {why.replace('header says', f'header ({path.name}) says')}: "
                            f"{Path(name).name} not used for this spectrum")
            return why
    run = _settings_run_name(Path(name).name)
    core, section = names
    ours = f"{core}_{section}".lower() if section else core.lower()
    if run and core and core.lower() not in run.lower() and run.lower() not in ours:
        warnings.append(f"{Path(name).name} names the run {run!r}, the spectrum {path.name} is of core {core!r}"
                        f"{f' section {section!r}' if section else ''}: used, as the nearest settings; pass "
                        "--gain/--offset if it belongs to another run")
    return ""


def _document_disagrees(doc, header, date: str) -> str:
    """Why ``document.txt`` does not describe this spectrum ("" when nothing disagrees)."""
    written = header.get("section name", ("", "", 0))[0]
    if doc.section_name and written and written.lower() != _PLACEHOLDER_SECTION and \
            written.lower() != doc.section_name.lower():
        return f"{doc.source} names section {doc.section_name!r}, the spectrum's header {written!r}"
    if doc.date and date:
        apart = abs((datetime.fromisoformat(date).date() - datetime.fromisoformat(doc.date).date()).days)
        if apart > _DOCUMENT_DAYS:
            return f"{doc.source} is dated {doc.date[:10]}, the spectrum's header {date[:10]}"
    return ""


# --------------------------------------------------------------------------- discrete samples


def _sample_spectrum(path: Path, sample: str, header, records, counts, calibration, core, source) -> Spectrum:
    """A ``sumspectra_<sample>.spe``: the spectrum of the discrete lab sample ``sample``.

    It is stored with ``sample_id`` = the name's sample token and no depth (``depth_scale``
    ``sample``, depth NaN): neither the file nor its name gives the sample's depth in the core
    (the header's ``Position`` is the sample holder's 0, its ``Sample name`` the software's).
    The lab rows of the same sample id are paired with it (``xrfhub.samples``). Its core is
    ``--core``, else a header ``Section name`` other than the default ``section``; with neither
    it is refused rather than put in a core named after the sample.
    """
    warnings: list[str] = []
    written = header.get("section name", ("", "", 0))[0]
    if core:
        core_id = core.strip()
    elif written and written.lower() != _PLACEHOLDER_SECTION:
        core_id = meta.split_section_name(meta.split_replicate(written)[0])[0]
    else:
        raise InputError(path, f"ITRAX sum spectrum of the discrete sample {sample!r}: the file names no core (header "
                               f"Section name {written!r}, Sample name {header.get('sample name', ('',))[0]!r}); "
                               "pass --core", field="Section name", lacks=frozenset({"core"}))
    ctx = itrax_results.scan_context(path)
    warnings += ctx["warnings"]
    cal = _calibration(calibration, None, None, ctx, header, path, warnings, names=(core_id, ""))
    kv = _header_number(header, "tube voltage", path)
    ma = _header_number(header, "tube current", path)
    live = _header_number(header, "livetime", path)
    real = _header_number(header, "runtime", path)
    cps = _header_number(header, "input_count_rate", path)
    return Spectrum(
        counts=counts, core=core_id, section="", sample_id=sample, section_top_mm=math.nan, position_mm=math.nan,
        depth_mm=math.nan, depth_scale=DEPTH_SAMPLE, run=sample_run(sample), replicate=0,
        tube_kv=math.nan if kv is None else kv, tube_ma=math.nan if ma is None else ma,
        live_time_s=math.nan if live is None else live, real_time_s=math.nan if real is None else real,
        total_cps=math.nan if cps is None else cps, date=_iso_date(header), calibration=cal, instrument="itrax",
        valid=True, source=source or path.name, header="\n".join(r for r in records if r.strip()),
        warnings=tuple(warnings),
    )


# --------------------------------------------------------------------------- reader


def read(path, *, source: str | None = None, raw: bytes | None = None, calibration: Calibration | None = None,
         section_top_mm_override: float | None = None, core: str | None = None, **_options) -> list[Spectrum]:
    """Read one ITRAX ``.spe`` file into a one-element list of :class:`Spectrum`."""
    path = Path(path)
    if raw is None:
        raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise InputError(path, "binary content: expected an ITRAX .spe text file")
    lines = meta.split_lines(meta.decode(raw))
    at = next((i for i, line in enumerate(lines) if line.lower().startswith("channel\tcontent")), None)
    if at is None:
        raise InputError(path, "no 'channel<TAB>content' record: expected an ITRAX .spe file with counts")
    header, records = parse_header(lines[:at], path)
    counts = parse_counts(lines[at + 1:], at + 2, path)
    declared = _header_number(header, "number_mca_channels", path)
    if declared is not None and declared != counts.size:
        raise InputError(path, f"found {counts.size} channel rows, the header declares {declared:g} "
                               "(truncated file?)", field="number_mca_channels")

    summed = _SUM_SPECTRUM.match(path.stem)
    if summed and summed.group("sample"):
        return [_sample_spectrum(path, summed.group("sample").strip(), header, records, counts, calibration, core,
                                 source)]
    if summed:
        raise NotStored(path, "the section's sum spectrum (Q-Spec's sum of the scan's points), not a scan point: "
                              "not stored; the points themselves are")

    warnings: list[str] = []
    table, row = _results_row(path, warnings)
    ctx = itrax_results.scan_context(path, section_name=table.section_name() if table is not None else "")
    warnings += ctx["warnings"]
    doc = ctx["document"]
    date = _iso_date(header)
    if doc is not None:
        why = _document_disagrees(doc, header, date)
        if why:
            warnings.append(f"{why}: {doc.source} not used for this spectrum")
            doc = None
            ctx = dict(ctx, tube_kv=math.nan, tube_ma=math.nan, tube_source="") if ctx["tube_source"] == \
                ctx["document"].source else ctx
    core_id, section, _where, replicate = itrax_results.resolve_core(
        path, core=core, names=_section_names(table, header, doc, path))
    top = itrax_results.section_top(section_top_mm_override, warnings, section)
    position = _position(table, row, header, doc, path, warnings)

    kv = _header_number(header, "tube voltage", path)
    ma = _header_number(header, "tube current", path)
    if kv is None and math.isfinite(ctx["tube_kv"]):
        kv, ma = ctx["tube_kv"], ctx["tube_ma"]
        warnings.append(f"tube settings from {ctx['tube_source']}")
    live = _header_number(header, "livetime", path)
    real = _header_number(header, "runtime", path)
    if real is None and doc is not None:
        real = doc.exposure_s
    cps = _header_number(header, "input_count_rate", path)
    valid = True if table is None else bool(table.value(row, "validity") != 0)
    cal = _calibration(calibration, table, row, ctx, header, path, warnings,  # last: refuses the placeholder
                       names=(core_id, section))

    depth, scale = on_depth_scale(top, float(position))
    return [Spectrum(
        counts=counts, core=core_id, section=section, section_top_mm=top, position_mm=float(position),
        depth_mm=depth, depth_scale=scale, run="", replicate=replicate,
        tube_kv=math.nan if kv is None else kv, tube_ma=math.nan if ma is None else ma,
        live_time_s=math.nan if live is None else live, real_time_s=math.nan if real is None else real,
        total_cps=math.nan if cps is None else cps, date=date or (doc.date if doc else ""),
        calibration=cal, instrument="itrax", valid=valid, source=source or path.name,
        header="\n".join(r for r in records if r.strip()), warnings=tuple(warnings),
    )]
