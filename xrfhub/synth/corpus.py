"""Generate a synthetic scanner corpus: raw ``.spe`` folders, lab tables and the truth behind them.

``generate_corpus(out_dir, size, seed)`` writes::

    out_dir/scans/<core>/Run 1 at  10kV/<name>.spe      (two spaces before the voltage)
    out_dir/scans/<core>/Run 2 at  30kV/...              (some cores)
    out_dir/scans/<core>/Run 3 at  10kV_<a>-<b>cm/...    (one core: lower sections re-run)
    out_dir/lab/<name>.tab  out_dir/lab/<name>.csv       (PANGAEA export, plain CSV)
    out_dir/truth.json                                   (``CorpusTruth``)

Cores vary the way real archives do: space or ``!`` file-name scheme, new or old head, LF or
CRLF, decimal commas, section tokens in cm (4 digits) or mm (5 digits), 1 m or 1.5 m sections,
10 or 5 mm steps, per-core energy calibration. The cores (names, formats, sediment histories, lab
values) are drawn from one seeded ``numpy.random.Generator``; each run's counting noise and water
film from its own generator seeded by (seed, core, run). Why apart: numpy's Poisson sampler takes a
number of draws that depends on the expected counts, and those depend on floating-point physics
(scipy, xraylib), so with one stream a library update moved every later draw: numpy 2.1 and 2.4
gave demo seed 0 different carbonate-rich cores. Now a library update can change counts, not which
core is which. The same seed and libraries give byte-identical files.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import composition as comp
from . import physics as phys
from .lab_writer import pangaea_event, write_lab_csv, write_pangaea_tab
from .spe_writer import SpeMeta, SpeStyle, bang_name, space_name, write_spe

#: Tube settings per voltage: (filter, current uA, live s, setting name).
KV_SETTINGS = {10: ("No-Filter", 150, 10, "Low"), 30: ("Pd-Thick", 1000, 10, "Mid"),
               50: ("Cu", 150, 10, "High")}
REFERENCE_TOTAL_COUNTS = 1.0e6   # a typical sediment at 10 kV / 150 uA / 10 s (real mean: 1.05e6)
DEAD_TIME_S = 1.0e-6             # per count, sets real time from live time
TUBE_INSTALLED = dt.datetime(2008, 1, 1)
TUBE_AGEING_PER_YEAR = 0.04      # relative loss of tube output per year of use

_CRUISES = ("PS75", "SO264", "PS97", "M77", "SO202", "PS118", "MSM05")


@dataclass
class CorpusSpec:
    """What to generate: number of cores, their lengths, lab spacing, extra runs."""

    n_cores: int = 6
    length_m: tuple[float, float] = (3.0, 5.0)
    lab_spacing_mm: float = 100.0
    n_30kv: int = 2               # cores with a 30 kV run (every second point)
    n_50kv: int = 1               # cores with a 50 kV run on their first section
    n_held_out: int = 0           # cores with a different (higher) TOC distribution


SIZES = {
    "tiny": CorpusSpec(n_cores=3, length_m=(1.2, 1.6), lab_spacing_mm=50.0, n_30kv=1, n_50kv=0),
    "demo": CorpusSpec(n_cores=6, length_m=(3.5, 4.5), lab_spacing_mm=80.0, n_30kv=2, n_50kv=1),
    "benchmark": CorpusSpec(n_cores=44, length_m=(9.5, 14.0), lab_spacing_mm=200.0, n_30kv=6,
                            n_50kv=2, n_held_out=3),
}


@dataclass
class ScanTruth:
    folder: str
    run: int
    kv: int
    replicate: int
    depths_mm: list[float]
    section_tokens: list[str]


@dataclass
class CoreTruth:
    """One core as generated: how its files look and what its sediment really is."""

    core: str
    event: str                     # PANGAEA event label (slash style)
    has_scan: bool
    held_out: bool
    length_mm: float
    section_length_mm: float
    section_tops_mm: list[float]
    step_mm: float
    name_scheme: str               # "space" or "bang"
    head: str                      # "new" or "old"
    newline: str
    decimal_comma: bool
    section_unit: str              # "cm" (4-digit tokens) or "mm" (5-digit tokens)
    gain_kev: float
    offset_kev: float
    lab_file: str
    scans: list[ScanTruth] = field(default_factory=list)
    # lab samples: top/bottom/mid in mm, true and measured values, flags, expected match
    lab: list[dict] = field(default_factory=list)

    @property
    def depths_10kv_mm(self) -> list[float]:
        return sorted(d for s in self.scans if s.kv == 10 for d in s.depths_mm)


@dataclass
class CorpusTruth:
    """What ``generate_corpus`` made; written to ``out_dir/truth.json``."""

    out_dir: str
    size: str
    seed: int
    cores: dict[str, CoreTruth]
    held_out: list[str]
    no_scan_core: str
    lab_files: list[str]
    n_spectra: int
    n_spectra_by_kv: dict[str, int]
    n_lab_samples: int

    def to_json(self, path: str | Path) -> None:
        d = asdict(self)
        Path(path).write_text(json.dumps(d, indent=1), encoding="utf-8")

    @classmethod
    def from_json(cls, path: str | Path) -> "CorpusTruth":
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        cores = {}
        for name, c in d.pop("cores").items():
            scans = [ScanTruth(**s) for s in c.pop("scans")]
            cores[name] = CoreTruth(scans=scans, **c)
        return cls(cores=cores, **d)


def _spec_for(size) -> tuple[str, CorpusSpec]:
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown corpus size {size!r}; use one of {sorted(SIZES)}, "
                             f"an int (about that many 10 kV spectra) or a dict of CorpusSpec fields")
        return size, SIZES[size]
    if isinstance(size, dict):
        unknown = set(size) - set(CorpusSpec.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown corpus size fields {sorted(unknown)}; "
                             f"known: {sorted(CorpusSpec.__dataclass_fields__)}")
        return "custom", CorpusSpec(**size)
    if isinstance(size, (int, np.integer)) and size > 0:
        n_cores = int(max(3, round(size / 1100)))
        mean_len = max(size / n_cores * 0.0095, 0.8)
        return "custom", CorpusSpec(n_cores=n_cores, length_m=(0.8 * mean_len, 1.2 * mean_len),
                                    lab_spacing_mm=100.0, n_30kv=max(1, n_cores // 7),
                                    n_50kv=int(n_cores >= 6), n_held_out=3 if n_cores >= 12 else 0)
    raise ValueError(f"size must be a name, a positive int or a dict, got {size!r}")


def _core_names(rng: np.random.Generator, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        if rng.random() < 0.2:
            name = f"GeoB{rng.integers(1000, 9999)}-{rng.integers(1, 6)}"
        else:
            cruise = _CRUISES[rng.integers(len(_CRUISES))]
            width = 3 if cruise.startswith("PS") else 2
            name = f"{cruise}-{rng.integers(1, 120):0{width}d}-{rng.integers(1, 4)}"
        if name not in names:
            names.append(name)
    return names


def _section_token(top_mm: float, unit: str) -> str:
    return f"{int(round(top_mm / 10)):04d}" if unit == "cm" else f"{int(round(top_mm)):05d}"


@lru_cache(maxsize=1)
def _flux_per_ua_s() -> float:
    """Tube flux per uA and second, fixed so that a typical sediment at 10 kV / 150 uA / 10 s
    gives ``REFERENCE_TOTAL_COUNTS``; other voltages follow from the tube physics."""
    exc = phys.excitation(10.0, "No-Filter")
    dry = np.array([[0.15, 0.08, 0.006, 0.754, 8e-4, 4e-3, 1.5e-3]])
    w = comp.element_weights(dry, np.array([0.5]))
    basis = phys.detector_basis(exc.src_energy, exc.src_width, 0.02, 0.0)
    total = phys.expected_counts(exc, w, np.array([10.0]), np.ones(1), basis,
                                 film_weights=comp.SEAWATER_ELEMENTS).sum()
    return REFERENCE_TOTAL_COUNTS / (total * 150.0 * 10.0)


def simulate_spectra(rng: np.random.Generator, weights: np.ndarray, film_um: np.ndarray,
                     kv: int, filter: str, current_ua: float, live_s: float,
                     dates: list[dt.datetime], gain_kev: float, offset_kev: float):
    """Counts (n, 2048) uint32 for one run, with real times and total count rates."""
    exc = phys.excitation(float(kv), filter)
    basis = phys.detector_basis(exc.src_energy, exc.src_width, gain_kev, offset_kev)
    years = np.array([(d - TUBE_INSTALLED).days / 365.25 for d in dates])
    ageing = np.exp(-TUBE_AGEING_PER_YEAR * years)
    scale = _flux_per_ua_s() * current_ua * live_s * ageing
    lam = phys.expected_counts(exc, weights, film_um, scale, basis,
                               film_weights=comp.SEAWATER_ELEMENTS)
    live = np.full(len(lam), float(live_s))
    lam = phys.add_pileup(lam, live)
    counts = rng.poisson(lam).astype(np.uint32)
    rate = counts.sum(axis=1) / live
    real = live / np.clip(1.0 - rate * DEAD_TIME_S, 0.3, 1.0)
    return counts, real, rate


def _film(rng: np.random.Generator, n_sections: int, section_of: np.ndarray) -> np.ndarray:
    """Water film under the foil (um): a level per section plus a down-core wander."""
    level = rng.gamma(2.0, 5.0, n_sections)
    wander = comp._ar1(rng, section_of.size, 1.0, 20.0, 0.35)[0]
    return np.clip(level[section_of] * np.exp(wander), 0.0, 60.0)


def _plan_core(rng, name: str, spec: CorpusSpec, i: int, held_out: bool) -> CoreTruth:
    length = float(rng.uniform(*spec.length_m)) * 1000.0
    sec_len = 1500.0 if rng.random() < 0.25 else 1000.0
    tops = list(np.arange(0.0, length, sec_len))
    # the first cores cover every format variant so that even a tiny corpus has them all
    scheme = "bang" if i == 1 else "space" if i in (0, 2) else ("bang" if rng.random() < 0.25 else "space")
    head = "old" if i == 2 else "new" if i < 3 else ("old" if rng.random() < 0.2 else "new")
    crlf = i == 1 or (i >= 3 and rng.random() < 0.3)
    comma = i == 1 or (i >= 3 and rng.random() < 0.15)
    unit = "mm" if i == 1 else "cm" if i < 3 else ("mm" if rng.random() < 0.3 else "cm")
    step = 5.0 if (i >= 3 and rng.random() < 0.15) else 10.0
    gain, offset = (0.02, 0.0) if head == "old" else (float(rng.uniform(0.0199, 0.0201)),
                                                      float(rng.uniform(-0.005, 0.005)))
    return CoreTruth(core=name, event=pangaea_event(name), has_scan=True, held_out=held_out,
                     length_mm=length, section_length_mm=sec_len,
                     section_tops_mm=[float(t) for t in tops], step_mm=step, name_scheme=scheme,
                     head=head, newline="\r\n" if crlf else "\n", decimal_comma=comma,
                     section_unit=unit, gain_kev=gain, offset_kev=offset, lab_file="")


def _positions(core: CoreTruth, top: float, step: float) -> np.ndarray:
    """Scan positions in one section: from one step below the top to 5 mm above its end."""
    end = min(core.section_length_mm, core.length_mm - top)
    return np.arange(step, end - 5.0 + 1e-9, step)


def _write_run(rng, out: Path, core: CoreTruth, hist: comp.CoreHistory, folder: str, run: int,
               kv: int, step: float, sections: list[int], start: dt.datetime) -> tuple[ScanTruth, dt.datetime]:
    filter_, current, live, setting = KV_SETTINGS[kv]
    pos, tops, sec_idx = [], [], []
    for s in sections:
        p = _positions(core, core.section_tops_mm[s], step)
        pos.append(p)
        tops.append(np.full(p.size, core.section_tops_mm[s]))
        sec_idx.append(np.full(p.size, s))
    pos, tops, sec_idx = np.concatenate(pos), np.concatenate(tops), np.concatenate(sec_idx)
    depth = tops + pos
    dry, water = hist.at(depth)
    weights = comp.element_weights(dry, water)
    film = _film(rng, len(core.section_tops_mm), sec_idx)
    # one point every live time + ~20 s of moving; 10 minutes to change sections
    t = np.cumsum(np.full(depth.size, live + 20.0)) + 600.0 * np.unique(sec_idx, return_inverse=True)[1]
    dates = [start + dt.timedelta(seconds=float(x)) for x in t]
    counts, real, rate = simulate_spectra(rng, weights, film, kv, filter_, current, live, dates,
                                          core.gain_kev, core.offset_kev)
    style = SpeStyle(head=core.head, newline=core.newline, decimal_comma=core.decimal_comma,
                     per_line=8 if core.name_scheme == "bang" else 1)
    run_dir = out / "scans" / core.core / folder
    tokens = []
    for k in range(depth.size):
        token = _section_token(tops[k], core.section_unit)
        tokens.append(token)
        meta = SpeMeta(core=core.core, section=token, position_mm=float(pos[k]), date=dates[k],
                       live_s=live, real_s=float(real[k]), kv=kv, current_ua=current,
                       filter=filter_, run=run, setting=setting, total_cps=float(rate[k]),
                       gain_kev=core.gain_kev, offset_kev=core.offset_kev)
        name = bang_name(meta) if core.name_scheme == "bang" else space_name(meta)
        write_spe(run_dir / name, counts[k], meta, style)
    scan = ScanTruth(folder=folder, run=run, kv=kv, replicate=0,
                     depths_mm=[float(d) for d in depth], section_tokens=tokens)
    return scan, dates[-1] + dt.timedelta(hours=1)


def _lab_samples(rng, core: CoreTruth, hist: comp.CoreHistory, spacing: float,
                 scanned_bottom: float) -> list[dict]:
    """Lab slices of 1 cm every ``spacing``; one or two below the scanned range (unmatched)."""
    start = rng.uniform(5.0, spacing)
    tops = np.arange(start, core.length_mm - 15.0, spacing)
    n_extra = 1 + int(rng.random() < 0.5)
    extra = scanned_bottom + 40.0 + 60.0 * np.arange(n_extra) if core.has_scan else np.zeros(0)
    tops = np.round(np.concatenate([tops, extra]) / 5.0) * 5.0
    bottoms = tops + 10.0
    caco3_t, toc_t, caco3, toc = comp.lab_values(rng, hist, tops, bottoms)
    flags = rng.choice(["", "?", "/", "*"], size=(tops.size, 2), p=[0.97, 0.015, 0.01, 0.005])
    rows = []
    for k in range(tops.size):
        rows.append(dict(core=core.core, top_mm=float(tops[k]), bottom_mm=float(bottoms[k]),
                         mid_mm=float(tops[k] + 5.0), CaCO3_true=float(caco3_t[k]),
                         TOC_true=float(toc_t[k]), CaCO3=float(round(caco3[k], 2)),
                         TOC=float(round(toc[k], 3)), flag_CaCO3=str(flags[k, 0]),
                         flag_TOC=str(flags[k, 1]),
                         within_scan=bool(core.has_scan and tops[k] + 5.0 <= scanned_bottom + 5.0)))
    return rows


def _noise(seed: int, core: int, run: int) -> np.random.Generator:
    """The generator of one run's counting noise and water film, apart from the cores' stream."""
    return np.random.default_rng([int(seed), int(core), int(run), 1])


def generate_corpus(out_dir: str | Path, size="demo", seed: int = 0) -> CorpusTruth:
    """Write a synthetic corpus under ``out_dir`` and return (and save) its truth.

    ``size``: "tiny" (3 cores, ~450 spectra, for tests), "demo" (6 cores, ~2,500 spectra with
    30 and 50 kV runs), "benchmark" (44 cores, >50,000 spectra, >2,000 lab samples, 3 held-out
    cores with higher TOC), an int (about that many 10 kV spectra) or a dict of ``CorpusSpec``
    fields. ``seed`` seeds every random choice.
    """
    name, spec = _spec_for(size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = _core_names(rng, spec.n_cores + 1)
    held = set(range(spec.n_cores - spec.n_held_out, spec.n_cores))
    cores: dict[str, CoreTruth] = {}
    tab_rows, csv_rows = [], []
    by_kv = {"10": 0, "30": 0, "50": 0}
    kv30 = set(rng.choice(spec.n_cores, size=min(spec.n_30kv, spec.n_cores), replace=False).tolist())
    kv50 = set(rng.choice(spec.n_cores, size=min(spec.n_50kv, spec.n_cores), replace=False).tolist())
    variant_core = spec.n_cores - 1 if spec.n_cores > 1 else 0
    for i in range(spec.n_cores + 1):
        scanned = i < spec.n_cores
        core = _plan_core(rng, names[i], spec, i, held_out=i in held)
        core.has_scan = scanned
        style = comp.random_style(rng, high_toc=core.held_out)
        hist = comp.simulate_core(rng, core.length_mm + 300.0, style)
        start = dt.datetime(2010, 1, 1) + dt.timedelta(days=int(rng.integers(0, 3650)), hours=8)
        bottom = -math.inf
        if scanned:
            n_sec = len(core.section_tops_mm)
            split = n_sec // 2 if (i == variant_core and n_sec > 1) else n_sec
            scan, start = _write_run(_noise(seed, i, 1), out, core, hist, "Run 1 at  10kV", 1, 10, core.step_mm,
                                     list(range(split)), start)
            core.scans.append(scan)
            if split < n_sec:
                top_cm = int(core.section_tops_mm[split] / 10)
                bot_cm = int(math.ceil(core.length_mm / 10))
                scan, start = _write_run(_noise(seed, i, 3), out, core, hist, f"Run 3 at  10kV_{top_cm}-{bot_cm}cm",
                                         3, 10, core.step_mm, list(range(split, n_sec)), start)
                core.scans.append(scan)
            if i in kv30:
                scan, start = _write_run(_noise(seed, i, 2), out, core, hist, "Run 2 at  30kV", 2, 30,
                                         2 * core.step_mm, list(range(n_sec)), start)
                core.scans.append(scan)
            if i in kv50:
                scan, start = _write_run(_noise(seed, i, 4), out, core, hist, "Run 4 at  50kV", 4, 50,
                                         2 * core.step_mm, [0], start)
                core.scans.append(scan)
            for s in core.scans:
                by_kv[str(s.kv)] += len(s.depths_mm)
            bottom = max(core.depths_10kv_mm)
        core.lab = _lab_samples(rng, core, hist, spec.lab_spacing_mm, bottom)
        # PANGAEA for most cores, CSV for every third and for the core that was never scanned
        to_csv = (i % 3 == 1) or not scanned
        core.lab_file = "lab/lab_slices.csv" if to_csv else "lab/pangaea_export.tab"
        (csv_rows if to_csv else tab_rows).extend(core.lab)
        cores[core.core] = core
    for r in csv_rows:  # CSV carries no quality flags: those values are plain numbers
        r["flag_CaCO3"] = r["flag_TOC"] = ""
    tab_events = sorted({pangaea_event(r["core"]) for r in tab_rows})
    write_pangaea_tab(out / "lab" / "pangaea_export.tab", tab_rows,
                      citation=f"xrfhub synth (seed {seed}): CaCO3 and TOC of sediment cores",
                      events=tab_events)
    write_lab_csv(out / "lab" / "lab_slices.csv", csv_rows)
    truth = CorpusTruth(out_dir=str(out), size=name, seed=int(seed), cores=cores,
                        held_out=[names[i] for i in sorted(held)], no_scan_core=names[spec.n_cores],
                        lab_files=["lab/pangaea_export.tab", "lab/lab_slices.csv"],
                        n_spectra=sum(by_kv.values()), n_spectra_by_kv=by_kv,
                        n_lab_samples=len(tab_rows) + len(csv_rows))
    truth.to_json(out / "truth.json")
    return truth
