"""Shared test material: small corpora written byte by byte in the scanners' formats."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def spe_text(core: str, section: str, position_mm: float, *, kv: float = 10, run: int = 1, rep: int = 0,
             counts: np.ndarray, minute: int = 0, eol: str = "\n") -> str:
    """A new-head Avaatech .spe file as the scanner writes it."""
    lines = [
        "$SPEC_ID:", spe_stem(core, section, position_mm, kv=kv, run=run, rep=rep),
        "$SPEC_REM:", "head 1", "$DATE_MEA:", f"06-14-2012 10:{minute // 60:02d}:{minute % 60:02d}",
        "$MEAS_TIM:", "10 12", "$Core_ID:", core, "$Section_ID:", section, "$X_Position:", f"{position_mm:.1f}",
        "$Run_ID:", str(run), "$Replicate_ID:", str(rep), "$ACC_VOLT:", f"{kv:g}", "$TUBE_CUR:", "0.150",
        "$ENER_FIT:", "0.000 0.0200", "$DATA:", f"0 {len(counts) - 1}",
    ]
    lines += [" ".join(str(int(c)) for c in counts[i:i + 8]) for i in range(0, len(counts), 8)]
    return eol.join(lines) + eol


def spe_stem(core, section, position_mm, *, kv=10, run=1, rep=0) -> str:
    return f"{core}_{section}   {position_mm:.1f}mm  10s  {kv:g}kV 150uA No-Filter   0.0mm Run{run} Rep{rep} Sett Low"


def synthetic_counts(rng, caco3: float, n_channels: int = 2048) -> np.ndarray:
    """Poisson counts with a Ca peak that scales with CaCO3 and a Fe peak that does not."""
    ch = np.arange(n_channels)
    mean = 20 * np.exp(-ch / 400) + 5
    mean = mean + 30 * caco3 * np.exp(-0.5 * ((ch - 185) / 4) ** 2) + 800 * np.exp(-0.5 * ((ch - 320) / 5) ** 2)
    return rng.poisson(mean).astype(np.uint32)


@dataclass
class Corpus:
    root: Path
    scans: Path
    lab: Path
    files: dict[str, Path] = field(default_factory=dict)
    n_spectra: int = 0


def write_corpus(root: Path, *, cores=("PS75-056-1", "SO264-09-2"), seed: int = 0, kv30_core: str | None = "PS75-056-1",
                 n_channels: int = 2048) -> Corpus:
    """Two cores of two 100 mm sections each (10 mm step), one 30 kV run, and a PANGAEA table."""
    rng = np.random.default_rng(seed)
    scans = root / "scans"
    corpus = Corpus(root, scans, root / "lab")
    for core in cores:
        for kv, run in ((10, 1), (30, 2)):
            if kv == 30 and core != kv30_core:
                continue
            folder = scans / core / f"Run {run} at  {kv}kV"
            folder.mkdir(parents=True)
            minute = 0
            for section in ("0000", "0010"):
                for pos in np.arange(5.0, 100.0, 10.0):
                    depth = int(section) * 10 + pos
                    caco3 = 20 + 10 * np.sin(depth / 50)
                    path = folder / f"{spe_stem(core, section, pos, kv=kv, run=run)}.spe"
                    path.write_text(spe_text(core, section, pos, kv=kv, run=run, minute=minute,
                                             counts=synthetic_counts(rng, caco3, n_channels)))
                    corpus.files[f"{core}/{kv}/{depth:g}"] = path
                    corpus.n_spectra += 1
                    minute += 1
    corpus.lab.mkdir()
    rows = []
    for core in cores:
        for depth in (15.0, 55.0, 115.0, 175.0, 500.0):  # 500 mm lies beyond the scans: unmatched
            caco3 = 20 + 10 * np.sin(depth / 50)
            rows.append(f"{core.replace('-', '/', 1)}\t{depth / 1000:.3f}\t{caco3:.2f}\t{0.2 + depth / 1000:.3f}")
    rows.append("PS75/999-9\t0.100\t?12.5\t/0.3")  # a lab core with no scan, flagged values
    pangaea = corpus.lab / "cores.tab"
    pangaea.write_text(
        "/* DATA DESCRIPTION:\nCitation:\tTest, A (2024): Carbonate of test cores. PANGAEA\n"
        "Event(s):\tPS75/056-1 * LATITUDE: -50.0 * LONGITUDE: 170.0\n"
        "Parameter(s):\tDepth, sediment/rock [m] (Depth sed)\n\tCalcium carbonate [%] (CaCO3)\n"
        "\tCarbon, organic, total [%] (TOC)\nLicense:\tCC-BY-4.0\n*/\n"
        "Event\tDepth sed [m]\tCaCO3 [%]\tTOC [%]\n" + "\n".join(rows) + "\n")
    corpus.files["pangaea"] = pangaea
    return corpus


@pytest.fixture
def corpus(tmp_path) -> Corpus:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def fixtures_dir() -> Path:
    path = SHARED / "fixtures"
    if not path.is_dir():
        pytest.skip(f"real instrument fixtures not found at {path} (they live in ../shared beside the checkout)")
    return path


def run_cli(*args, cwd=None, env=None, check=True):
    """Run the installed ``xrfhub`` command in a fresh process, as a user would."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "xrfhub_cli", *map(str, args)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


FOUR_CORES = ("PS75-056-1", "SO264-09-2", "PS75-057-1", "SO264-10-2")


@pytest.fixture(scope="module")
def four_core_store(tmp_path_factory):
    """A real ingested store of four cores of 10 kV spectra and their PANGAEA lab table (one per
    test module): enough cores for splits and folds of whole cores."""
    import xrfhub

    root = tmp_path_factory.mktemp("four-cores")
    written = write_corpus(root / "corpus", cores=FOUR_CORES, kv30_core=None)
    hub = root / "hub"
    xrfhub.ingest([written.scans, written.files["pangaea"]], hub, progress=False)
    return hub
