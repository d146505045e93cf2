"""The QC picture: per core, down-core throughput, scatter ratio and principal elements, with
flagged points marked by reason (``xrfhub qc STORE --out qc.png``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .store import QCResult
from .verdicts import SEP

MAX_ROWS = 12  # cores drawn (a longer store gets the first ones and says so in the title)
_MARKERS = "ovs^D<>pPX*h"


def plot(result: QCResult, path, *, max_rows: int = MAX_ROWS) -> Path:
    """Draw ``result`` into a PNG at ``path``; returns the path."""
    from ..plots import pyplot

    plt = pyplot()
    rows = [(g, c) for g, t in result.tables.items() for c in sorted(set(t["core"].astype(str)))]
    shown = rows[:max_rows]
    reasons = sorted({str(r).split(SEP)[0] for t in result.tables.values()
                      for r, f in zip(t["qc_reasons"], t["qc_flag"]) if f in ("bad", "suspect")})
    cmap = plt.get_cmap("tab10" if len(reasons) <= 10 else "tab20")
    style = {r: (cmap(i % cmap.N), _MARKERS[i % len(_MARKERS)]) for i, r in enumerate(reasons)}
    fig, axes = plt.subplots(len(shown) or 1, 3, figsize=(15, 2.6 * max(len(shown), 1) + 1.0), squeeze=False)
    for (group, core), ax_row in zip(shown, axes):
        table = result.tables[group]
        sel = np.flatnonzero(table["core"].astype(str).to_numpy() == core)
        # one line per source table (two evaluations of one scan would otherwise zig-zag), in depth order
        source = table["source"].astype(str).to_numpy() if "source" in table else np.full(len(table), "")
        sel = sel[np.lexsort((table["depth_mm"].to_numpy(dtype=float)[sel], source[sel]))]
        segments = [np.flatnonzero(source[sel] == s) for s in dict.fromkeys(source[sel])]
        depth = table["depth_mm"].to_numpy(dtype=float)[sel]
        why = table["qc_reasons"].to_numpy()[sel]
        flag = table["qc_flag"].to_numpy()[sel]
        principal = result.principal.get(group)
        panels = [("throughput (counts / live s)", {"": table["throughput_cps"].to_numpy(dtype=float)[sel]}, False),
                  ("tube scatter ratio", {"": table["scatter_ratio"].to_numpy(dtype=float)[sel]}, False),
                  ("principal elements (share of counts)",
                   {c: principal[c].to_numpy(dtype=float)[sel] for c in principal.columns} if principal is not None
                   else {}, True)]
        for ax, (title, series, log) in zip(ax_row, panels):
            if not any(np.isfinite(y).any() for y in series.values()):
                ax.text(0.5, 0.5, "not measured (inputs missing)", ha="center", va="center",
                        transform=ax.transAxes, fontsize=8, color="0.4")
            for label, y in series.items():
                line = None
                for seg in segments:
                    kw = {"color": line.get_color()} if line is not None else {"label": label or None}
                    (line,) = ax.plot(depth[seg], y[seg], lw=0.7, **kw)
                for code, (color, marker) in style.items():  # each point by its first (most basic) reason
                    hit = np.array([str(w).split(SEP)[0] == code for w in why], dtype=bool)
                    for level, size in (("suspect", 22), ("bad", 44)):
                        at = hit & (flag == level)
                        if at.any():
                            ax.scatter(depth[at], y[at], s=size, color=color, marker=marker, zorder=3,
                                       edgecolors="k", linewidths=0.4 if level == "suspect" else 1.2)
            if log and series:
                ax.set_yscale("log")
                ax.legend(fontsize=7, loc="best", ncol=len(series))
            ax.set_title(f"{core} ({group}): {title}", fontsize=9)
            ax.set_xlabel("depth (mm)", fontsize=8)
            ax.tick_params(labelsize=7)
        n_flagged = int(np.isin(flag, ("bad", "suspect")).sum())
        ax_row[0].text(0.01, 0.03, f"{n_flagged} of {len(sel)} flagged", transform=ax_row[0].transAxes, fontsize=7)
    handles = [plt.Line2D([], [], color=c, marker=m, ls="", markeredgecolor="k", label=r) for r, (c, m) in style.items()]
    note = f" (first {len(shown)} of {len(rows)} core groups)" if len(rows) > len(shown) else ""
    fig.suptitle(f"xrfhub qc, generation {result.generation}{note}: flagged points by first reason "
                 "(large, thick edge: bad; small: suspect)", fontsize=10)
    band = 0.5 / (2.6 * max(len(shown), 1) + 1.0)  # a fixed height in inches, as a fraction of the figure
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 9), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, band if handles else 0, 1, 1))  # room for the legend (save_figure would undo it)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
