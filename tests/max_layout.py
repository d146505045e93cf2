"""Write a small MAX-style data set (the dispink/xpt layout) from a synthetic corpus.

``write_max_layout(out)`` generates a small ``xrfhub.synth`` corpus, reads its 10 kV ``.spe``
files and exports them exactly as MAX's data scripts lay them out::

    out/data/pretrain/{train,test}/spe/<i>.csv + info.csv
    out/data/finetune/{CaCO3%,TOC%}/{train,test}/spe/<i>.csv + target/<i>.csv + info.csv

``<i>`` is the row number of the whole exported table (train files keep their numbers, as in
MAX); whole cores are held out for ``test``. Fine-tuning spectra are the mean of the 10 kV
spectra within +-5 mm of the sample's mid-depth (edges included); targets at or below zero
become 0.001, as MAX's script does. The returned :class:`MaxLayout` holds what was written, so
tests compare what is read against it.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xrfhub.readers import avaatech_spe
from xrfhub.synth import generate_corpus

#: A corpus small enough for tests: 3 scanned cores of 0.5-0.7 m, 10 kV only.
SMALL = {"n_cores": 3, "length_m": (0.5, 0.7), "lab_spacing_mm": 50.0, "n_30kv": 0, "n_50kv": 0}
PRETRAIN_HEADER = ("dirname", "composite_id", "cps", "core", "composite_depth_mm", "section_depth_mm",
                   "filename", "section")
TARGETS = {"CaCO3%": "CaCO3", "TOC%": "TOC"}  # folder name -> column of the corpus truth


@dataclass
class MaxLayout:
    root: Path  # the data set folder (``out/data``)
    corpus: Path  # the synthetic corpus it was exported from
    pretrain: pd.DataFrame  # one row per exported spectrum: split, dirname, info columns
    counts: np.ndarray  # (n, 2048) uint32, row for row with ``pretrain``
    finetune: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)  # (target, split)
    means: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # provided mean spectra
    test_cores: list[str] = field(default_factory=list)


def _read_10kv(corpus: Path) -> list:
    spectra = []
    for path in sorted((corpus / "scans").rglob("*.spe")):
        s = avaatech_spe.read(path, source=path.name)[0]
        if s.tube_kv == 10:
            spectra.append(s)
    spectra.sort(key=lambda s: (s.core, s.depth_mm))
    return spectra


def _write_rows(path: Path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        # pandas writes NaN as an empty cell
        w.writerows([["" if isinstance(v, float) and np.isnan(v) else v for v in r] for r in rows])


def write_max_layout(out, *, seed: int = 0, size=None, n_test_cores: int = 1,
                     file_column: str = "dirname") -> MaxLayout:
    """Write the layout under ``out/data``; ``file_column`` names the fine-tune info's first
    column (``"dirname"`` as DESIGN says, ``"filename"`` as older MAX scripts wrote)."""
    out = Path(out)
    truth = generate_corpus(out / "corpus", size=size or SMALL, seed=seed)
    spectra = _read_10kv(out / "corpus")
    scanned = sorted({s.core for s in spectra})
    test_cores = scanned[-n_test_cores:] if n_test_cores else []
    root = out / "data"

    rows = []
    for i, s in enumerate(spectra):
        split = "test" if s.core in test_cores else "train"
        rows.append({"split": split, "dirname": f"{i}.csv",
                     "composite_id": f"{s.core}_{int(round(s.depth_mm)):05d}", "cps": s.total_cps,
                     "core": s.core, "composite_depth_mm": s.depth_mm, "section_depth_mm": s.position_mm,
                     "filename": s.source, "section": s.section})
    pretrain = pd.DataFrame(rows)
    counts = np.stack([s.counts for s in spectra]).astype(np.uint32)
    for split in ("train", "test"):
        folder = root / "pretrain" / split
        (folder / "spe").mkdir(parents=True, exist_ok=True)
        sel = pretrain["split"] == split
        for i in np.flatnonzero(sel.to_numpy()):
            (folder / "spe" / pretrain.dirname[i]).write_text("\n".join(map(str, counts[i])) + "\n")
        _write_rows(folder / "info.csv", PRETRAIN_HEADER,
                    [[r[c] for c in PRETRAIN_HEADER] for r in pretrain[sel].to_dict("records")])

    # the compiled table of lab samples with their mean spectra: one index shared by the targets
    core_of = np.array([s.core for s in spectra], dtype=object)
    depth = np.array([s.depth_mm for s in spectra])
    compiled = []
    for core in scanned:
        for lab in truth.cores[core].lab:
            hit = (core_of == core) & (np.abs(depth - lab["mid_mm"]) <= 5.0 + 1e-9)
            if hit.any():
                compiled.append((lab, counts[hit].astype(np.float64).mean(axis=0)))
    layout = MaxLayout(root, out / "corpus", pretrain, counts, test_cores=list(test_cores))
    for folder_name, column in TARGETS.items():
        for split in ("train", "test"):
            folder = root / "finetune" / folder_name / split
            for sub in ("spe", "target"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            info, means = [], []
            for i, (lab, mean) in enumerate(compiled):
                if ("test" if lab["core"] in test_cores else "train") != split or not np.isfinite(lab[column]):
                    continue
                value = lab[column] if lab[column] > 0 else 0.001
                (folder / "spe" / f"{i}.csv").write_text("\n".join(repr(float(v)) for v in mean) + "\n")
                (folder / "target" / f"{i}.csv").write_text(repr(float(value)))
                info.append({"dirname": f"{i}.csv", "core": lab["core"], "mid_depth_mm": lab["mid_mm"],
                             "value": float(value)})
                means.append(mean)
            _write_rows(folder / "info.csv", (file_column, "core", "mid_depth_mm"),
                        [[r["dirname"], r["core"], r["mid_depth_mm"]] for r in info])
            layout.finetune[(folder_name, split)] = pd.DataFrame(info)
            layout.means[(folder_name, split)] = np.stack(means) if means else np.zeros((0, 2048))
    return layout


def write_tiny_layout(out, *, seed: int = 0) -> Path:
    """A hand-sized MAX data set (no corpus): three spectra, one lab sample; returns its root.

    ``pretrain/train``: PS75-056-1 at 1005 and 1015 mm (section ``0100``, positions 5 and 15 mm);
    ``pretrain/test``: LV28-44-3 at 20 mm; ``finetune/CaCO3%/train``: one sample of PS75-056-1 at
    1010 mm, 12.5 wt%, whose mean spectrum is the mean of the two train spectra.
    """
    rng = np.random.default_rng(seed)
    root = Path(out) / "data"
    counts = rng.poisson(50.0, size=(3, 2048)).astype(np.uint32)
    rows = [("0.csv", "PS75-056-1_01005", 5000.0, "PS75-056-1", 1005.0, 5.0,
             "PS75-056-1_0100    5.0mm  10s  10kV 150uA No-Filter   0.0mm Run1 Rep0 Sett Low.spe", "0100"),
            ("1.csv", "PS75-056-1_01015", 5100.0, "PS75-056-1", 1015.0, 15.0,
             "PS75-056-1_0100   15.0mm  10s  10kV 150uA No-Filter   0.0mm Run1 Rep0 Sett Low.spe", "0100"),
            ("2.csv", "LV28-44-3_00020", 4900.0, "LV28-44-3", 20.0, 20.0, "", "0000")]
    for split, idx in (("train", [0, 1]), ("test", [2])):
        folder = root / "pretrain" / split
        (folder / "spe").mkdir(parents=True, exist_ok=True)
        for i in idx:
            (folder / "spe" / rows[i][0]).write_text("\n".join(map(str, counts[i])) + "\n")
        _write_rows(folder / "info.csv", PRETRAIN_HEADER, [rows[i] for i in idx])
    folder = root / "finetune" / "CaCO3%" / "train"
    for sub in ("spe", "target"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    mean = counts[:2].astype(np.float64).mean(axis=0)
    (folder / "spe" / "7.csv").write_text("\n".join(repr(float(v)) for v in mean) + "\n")
    (folder / "target" / "7.csv").write_text("12.5")
    _write_rows(folder / "info.csv", ("dirname", "core", "mid_depth_mm"), [("7.csv", "PS75-056-1", 1010.0)])
    np.save(Path(out) / "counts.npy", counts)
    return root
