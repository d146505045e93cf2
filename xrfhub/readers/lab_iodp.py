"""IODP LIMS/LORE report exports (CSV), e.g. the carbonate (CARB) report::

    Exp,Site,Hole,Core,Type,Sect,A/W,Top offset on section (cm),Bottom offset on section (cm),
    Top depth CSF-A (m),Bottom depth CSF-A (m),Calcium carbonate (wt%),Total organic carbon (wt%)
    339,U1385,A,1,H,2,W,10,12,1.60,1.62,45.3,0.61

Core id: one per **hole**, written the IODP way ``{Exp}-{Site}{Hole}`` (``339-U1385A``; ODP legs
the same: ``177-1090B``). A hole is the unit a scanner campaign, a PANGAEA event and a splice
refer to; IODP "cores" (1H, 2H, ...) are 9.5 m pieces of it and sections 1.5 m pieces of those,
so keeping them as separate cores would cut one sediment record into hundreds. Depths are the
hole's CSF-A depths (m -> mm), which is the depth scale scanner data of a hole are given in;
the section-offset form (``1H-2-W 10-12``) is kept as the ``sample_id`` unless the export
has its own ``Sample`` (text id) column.
"""
from __future__ import annotations

import math
from pathlib import Path

from .. import properties as P
from ..errors import InputError
from ..records import LabTable
from . import lab_rules
from .lab_csv import _header_roles, check_options, parse_delimited, read_text, table_from_cells

FORMAT = "iodp"
KIND = "samples"
DESCRIPTION = "IODP LIMS/LORE report CSV (Exp, Site, Hole, Core, Sect, offsets, CSF-A depths)"

#: key (``properties.name_key`` of the header name) -> our name for the fixed columns.
_FIXED = lab_rules.IODP_COLUMNS
#: columns of LIMS reports that are bookkeeping, not lab values (read past, listed in metadata)
_BOOKKEEPING = {"testno", "testnumber", "timestamp", "timestamputc", "samplecomments",
                "testcomments", "resultcomments", "comments", "topdepthcsfb", "bottomdepthcsfb",
                "topdepthccsf", "bottomdepthccsf", "topdepthcsfaa", "instrument", "method",
                "analyst", "labelid", "resultid"}


_keys = lab_rules.iodp_keys


def sniff(head: bytes, name: str = "") -> bool:
    """A header naming Exp (or Leg), Site, Hole, Core, Sect and a top offset or CSF-A depth."""
    parsed = _header_roles(head)
    if parsed is None:
        return False
    return lab_rules.is_iodp_lims(parsed[0])


def _number(cell: str, path, line: int, field: str) -> float:
    try:
        value = float(cell.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(path, f"expected a number, found {cell.strip()!r}", line=line, field=field)
    return value


def read(path, *, source: str | None = None, raw: bytes | None = None, core: str | None = None,
         ignore_columns=(), **options) -> LabTable:
    """Read an IODP LIMS report CSV; one core per hole (``339-U1385A``), CSF-A depths in mm.

    Needs ``Top depth CSF-A (m)`` and either ``Bottom depth CSF-A (m)`` or both section
    offsets (bottom = top + interval length). ``core`` replaces the hole id of every row;
    ``ignore_columns`` leaves columns out.
    """
    check_options(options, set(), FORMAT)
    text = read_text(path, raw)
    header, rows, _sep = parse_delimited(path, text)
    fields = [P.split_header(h) for h in header]
    keys = _keys(fields)
    missing = [k for k in ("exp", "site", "hole", "core", "sect", "top_csfa") if k not in keys]
    if "bottom_csfa" not in keys and not {"top_offset", "bottom_offset"} <= keys.keys():
        missing.append("bottom_csfa (or both section offsets)")
    if missing:
        names = {"exp": "Exp", "site": "Site", "hole": "Hole", "core": "Core", "sect": "Sect",
                 "top_csfa": "Top depth CSF-A (m)"}
        raise InputError(path, "not a complete IODP report: missing column(s) "
                         f"{[names.get(m, m) for m in missing]}", line=1)

    # Build normalised rows: hole id, sample id, top/bottom CSF-A in m, then the value columns.
    value_cols = [i for i, f in enumerate(fields)
                  if i not in keys.values() and P.name_key(f.name) not in _BOOKKEEPING]
    used = set(value_cols) | set(keys.values())  # a set: a damaged header may have 100,000 columns
    bookkeeping = [fields[i].text for i in range(len(fields)) if i not in used]
    bottom_name = header[keys["bottom_csfa"]] if "bottom_csfa" in keys else "Bottom depth CSF-A (m)"
    new_header = ["core", "sample_id", header[keys["top_csfa"]], bottom_name] + \
        [header[i] for i in value_cols]
    roles = {0: P.CORE, 1: P.SAMPLE_ID, 2: P.TOP, 3: P.BOTTOM}
    roles.update({4 + j: P.ANCILLARY if P.column_role(fields[i]) == P.ANCILLARY else P.PROPERTY
                  for j, i in enumerate(value_cols)})
    width = len(fields)
    new_rows = []
    for line, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        cells = [c.strip() for c in cells] + [""] * max(0, width - len(cells))
        c = {k: cells[i] for k, i in keys.items()}
        for k in ("exp", "site", "hole"):
            if not c[k]:
                raise InputError(path, "empty cell: every sample needs Exp, Site and Hole",
                                 line=line, field=header[keys[k]])
        hole = f"{c['exp']}-{c['site']}{c['hole']}"
        top = _number(c["top_csfa"], path, line, header[keys["top_csfa"]])
        if c.get("bottom_csfa"):
            bottom = _number(c["bottom_csfa"], path, line, header[keys["bottom_csfa"]])
        else:
            t_off = _number(c.get("top_offset", ""), path, line, "Top offset on section (cm)")
            b_off = _number(c.get("bottom_offset", ""), path, line, "Bottom offset on section (cm)")
            bottom = top + (b_off - t_off) / 100.0
        sample = c.get("sample") or c.get("text_id") or ""
        if not sample:
            interval = ""
            if c.get("top_offset") and c.get("bottom_offset"):
                interval = f" {c['top_offset']}-{c['bottom_offset']}"
            sample = f"{hole}-{c['core']}{c.get('type', '')}-{c['sect']}" \
                     f"{'-' + c['aw'] if c.get('aw') else ''}{interval}"
        new_rows.append((line, [hole, sample, repr(top), repr(bottom)] +
                         [cells[i] for i in value_cols]))
    metadata = {"format": FORMAT, "core_id": "{Exp}-{Site}{Hole}: one core per hole",
                "depth_scale": "CSF-A"}
    if bookkeeping:
        metadata["ignored_columns"] = "; ".join(bookkeeping)
    table = table_from_cells(path, new_header, new_rows, source=source or Path(path).name,
                             core=core, ignore_columns=ignore_columns, metadata=metadata,
                             roles=roles)
    return table
