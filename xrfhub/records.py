"""Domain records: what readers produce and the store keeps.

Readers turn files into these plain objects; the store writes them to NeXus and Zarr; nothing
here knows about files or storage. Depths are in millimetres, energies in keV, times in seconds,
lab values in wt%.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: AWI default energy scale when a file carries no usable calibration: 20 eV per channel, no
#: offset (Ca K-alpha near channel 185, Fe K-alpha near 320).
DEFAULT_GAIN_KEV = 0.02
DEFAULT_OFFSET_KEV = 0.0


@dataclass(frozen=True)
class Calibration:
    """Linear energy scale of one spectrum: E(channel) = offset + gain * channel.

    ``source`` says where it came from, e.g. ``"header:$MCA_CAL"``, ``"header:$ENER_FIT"``,
    ``"default"``, ``"option"``, ``"settings.dfl"``, ``"Results.txt"``.
    """

    gain_kev: float = DEFAULT_GAIN_KEV
    offset_kev: float = DEFAULT_OFFSET_KEV
    source: str = "default"

    def energy(self, n_channels: int) -> np.ndarray:
        return self.offset_kev + self.gain_kev * np.arange(n_channels, dtype=np.float64)

    @property
    def degenerate(self) -> bool:
        """True when the scale cannot be right (zero/negative/absurd gain, non-finite)."""
        g, o = self.gain_kev, self.offset_kev
        return not (math.isfinite(g) and math.isfinite(o) and 1e-4 < g < 1.0 and abs(o) < 5.0)


DEFAULT_CALIBRATION = Calibration()

#: What ``depth_mm`` measures (the ``depth_scale`` coordinate). ``core``: section top + position,
#: the top known from the file (an Avaatech section token) or ``--section-top``;
#: ``section-relative``: the section top is unknown, so ``depth_mm`` is the position in the
#: section and two sections of one core share depths. A ``--sections`` table replaces either
#: with the scale its header names (``CSF-A``, ``CCSF``, ``composite``, ...; see ``xrfhub.depth``).
DEPTH_CORE = "core"
DEPTH_SECTION_RELATIVE = "section-relative"
#: ``sample``: the spectrum of a discrete lab sample (an ITRAX ``sumspectra_<sample>.spe``), not a
#: point of a scan: ``depth_mm`` is NaN (no file gives the sample's depth), ``sample_id`` names the
#: sample, and lab rows of the same ``sample_id`` are paired with it by that id, never by depth.
DEPTH_SAMPLE = "sample"


def sample_run(sample_id: str) -> str:
    """The ``run`` of a discrete sample's spectrum: ``sample-<id>``. Each sample is a scan of its
    own, so its spectrum never shares a scan (and a scan's checks: depths distinct and increasing
    with measurement time) with the core's scan points or with other samples measured in any order."""
    return f"sample-{sample_id}"


def on_depth_scale(top, position):
    """``(depth_mm, depth_scale)`` of positions in a section whose top may be unknown (NaN):
    unknown, the positions are the depths on the section-relative scale; known, core depths."""
    if np.all(np.isnan(np.asarray(top, dtype=float))):
        return position, DEPTH_SECTION_RELATIVE
    return top + position, DEPTH_CORE


@dataclass
class Spectrum:
    """One measured point of a core scan: its counts and everything its file says about them.

    ``depth_mm`` is the core depth, ``section_top_mm + position_mm`` (DESIGN section 3); the
    composite depth is only ever derived from a user's affine table, never stored here.
    """

    counts: np.ndarray  # uint32, (n_channels,)
    core: str
    section: str = ""  # the section token as written, e.g. "0100", or an IODP section number "1"
    half: str = ""  # section half when the name gives one (IODP "A" archive, "W" working)
    sample_id: str = ""  # a text id of the measured section/sample (IODP LIMS "SHLF11796791")
    section_top_mm: float = 0.0
    position_mm: float = 0.0
    depth_mm: float = 0.0
    depth_scale: str = DEPTH_CORE  # what depth_mm measures (DEPTH_CORE, DEPTH_SECTION_RELATIVE, ...)
    run: str = ""
    replicate: int = 0
    tube_kv: float = math.nan
    tube_ma: float = math.nan
    live_time_s: float = math.nan
    real_time_s: float = math.nan
    filter: str = ""
    slit_dc_mm: float = math.nan
    slit_cc_mm: float = math.nan
    y_mm: float = math.nan
    total_cps: float = math.nan
    date: str = ""  # ISO 8601, "" when unknown
    calibration: Calibration = DEFAULT_CALIBRATION
    instrument: str = ""  # vendor/format, e.g. "avaatech"
    detector: str = ""  # scanner head / detector identity when the file gives one
    valid: bool = True  # False when the reader flagged it (e.g. ITRAX validity 0)
    source: str = ""  # name of the source file in the store
    header: str = ""  # the raw vendor header, kept verbatim
    warnings: tuple[str, ...] = ()

    @property
    def n_channels(self) -> int:
        return int(self.counts.shape[0])

    @property
    def scan_key(self) -> tuple[str, str, str, float, int]:
        """A scan is core x section x run x tube voltage x replicate (DESIGN section 3)."""
        return (self.core, self.section, self.run, float(self.tube_kv), int(self.replicate))


def scan_name(key: tuple[str, str, str, float, int]) -> str:
    """A stable, HDF5-safe name for a scan key, e.g. ``scan_0100_Run1_10kV_rep0``."""
    _core, section, run, kv, rep = key
    kv_txt = "nan" if math.isnan(kv) else f"{kv:g}".replace(".", "p")
    parts = ["scan", section or "nosection", run or "norun", f"{kv_txt}kV", f"rep{rep}"]
    return "_".join(p.replace("/", "-").replace(" ", "") for p in parts)


@dataclass
class SourceFile:
    """A file the store has ingested: its name in the store, where it was read, its digest."""

    name: str
    path: str
    sha256: str
    format: str
    size: int


#: Quality flags of lab values (PANGAEA conventions): "" plain, "?" questionable (kept),
#: "/" not valid (value set to NaN), "*" unknown meaning (kept).
LAB_FLAGS = ("", "?", "/", "*")


@dataclass
class LabTable:
    """Lab measurements read from one file, in canonical form.

    ``samples`` has one row per lab sample with columns ``core`` (as written in the file),
    ``top_mm``, ``bottom_mm``, ``mid_mm`` (NaN where the file gives no interval), ``line``
    (1-based line number in the file) and one float column per canonical property (``CaCO3``,
    ``TOC``, ...; values in wt%). ``flags`` has the same index and one string column per
    property holding the quality flag (see ``LAB_FLAGS``). ``units`` maps each property to the
    unit the file wrote; ``metadata`` keeps file-level facts (citation, events, ...).
    """

    source: str
    samples: pd.DataFrame
    flags: pd.DataFrame
    units: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    #: QC rows (blanks, standards, duplicates) kept apart from the samples: one dict per row with
    #: ``line``, ``qc`` (blank/standard/duplicate), ``label`` (the cell that marked it) and
    #: ``values`` (the row's cells by header, as written)
    qc: list[dict] = field(default_factory=list)

    @property
    def properties(self) -> list[str]:
        fixed = {"core", "top_mm", "bottom_mm", "mid_mm", "line", "sample_id"}
        return [c for c in self.samples.columns if c not in fixed]


@dataclass
class SpectraBlock:
    """Many spectra of one channel count in columnar form: what the store reads and writes.

    ``counts`` is ``(n, n_channels)`` uint32; ``coords`` has one row per spectrum and the columns
    of ``xrfhub.store.layout.SPECTRUM_COORDS`` plus ``header`` (raw vendor header) and
    ``warnings`` ("; "-joined). Row order is the order the store keeps.
    """

    counts: np.ndarray
    coords: pd.DataFrame

    def __post_init__(self):
        if self.counts.ndim != 2 or len(self.coords) != self.counts.shape[0]:
            raise ValueError(f"counts {self.counts.shape} and coords ({len(self.coords)} rows) disagree")

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.counts.shape[1])

    @classmethod
    def from_spectra(cls, spectra: list[Spectrum]) -> "SpectraBlock":
        from .store.layout import SPECTRUM_COORDS

        if not spectra:
            raise ValueError("no spectra")
        counts = np.stack([s.counts for s in spectra]).astype(np.uint32, copy=False)
        derived = {
            "scan": lambda s: scan_name(s.scan_key),
            "composite_depth_mm": lambda s: math.nan,
            "energy_gain_kev": lambda s: s.calibration.gain_kev,
            "energy_offset_kev": lambda s: s.calibration.offset_kev,
            "calibration_source": lambda s: s.calibration.source,
        }
        columns = {}
        for name, (dtype, _u, _l) in SPECTRUM_COORDS.items():
            get = derived.get(name)
            values = [get(s) for s in spectra] if get else [getattr(s, name) for s in spectra]
            # object arrays for text: pandas would otherwise convert every column to arrow strings
            columns[name] = np.array(values, dtype=object if dtype == "str" else dtype)
        columns["header"] = np.array([s.header for s in spectra], dtype=object)
        columns["warnings"] = np.array(["; ".join(s.warnings) for s in spectra], dtype=object)
        return cls(counts, pd.DataFrame(columns, copy=False))

    @classmethod
    def concat(cls, blocks: list["SpectraBlock"]) -> "SpectraBlock":
        return cls(np.concatenate([b.counts for b in blocks]),
                   pd.concat([b.coords for b in blocks], ignore_index=True))


@dataclass
class Process:
    """One derived step (ingest, alignment, prediction) as recorded in NeXus (NXprocess).

    ``parameters`` is JSON-serialisable; ``data`` holds arrays the step produced (e.g. the
    depths of the spectra matched to each sample, or predicted values per spectrum).
    """

    name: str
    program: str
    version: str
    date: str
    parameters: dict = field(default_factory=dict)
    data: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class CoreRecord:
    """Everything the store holds about one core: the content of its NeXus file.

    ``scans`` maps a scan name (see ``scan_name``) to its spectra, rows sorted by depth.
    ``lab`` holds the core's lab samples (columns as ``LabTable.samples`` plus ``source``,
    with ``core`` set to this core's id) and ``lab_flags`` their quality flags; ``lab_units``
    maps property -> unit as written in the source.
    """

    core: str
    scans: dict[str, SpectraBlock] = field(default_factory=dict)
    lab: pd.DataFrame = field(default_factory=pd.DataFrame)
    lab_flags: pd.DataFrame = field(default_factory=pd.DataFrame)
    lab_units: dict[str, str] = field(default_factory=dict)
    sources: list[SourceFile] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)
    igsn: str = ""
    elements: list["ElementTable"] = field(default_factory=list)
    #: diffraction patterns of this series by grid id (``xrfhub.diffraction.DiffractionBlock``)
    diffraction: dict[str, "DiffractionBlock"] = field(default_factory=dict)  # noqa: F821
    #: labels of its patterns: pattern_id, label (class, or phases joined by ";"), multi, source, line
    pattern_labels: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class ElementTable:
    """Processed line intensities (vendor peak fits) for many points: the ``elements`` kind.

    ``points`` has one row per measured point with at least ``core``, ``section``,
    ``section_top_mm``, ``position_mm``, ``depth_mm``, ``tube_kv``, ``run``, ``replicate``,
    ``valid`` (False for points the vendor flagged, e.g. ITRAX validity 0), ``source`` and
    ``spectrum`` (the vendor's spectrum/file name for the point, "" if none); extra columns
    (``live_time_s``, ``tube_ma``, ``date``, ``filter``, ``mse``/``chi2`` totals ...) are kept.
    ``lines`` are unified line names (``"Ca-Ka"``, ``"Fe-Kb"``, ``"Ba-La"``, ``"Mo-inc"``,
    ``"Mo-coh"``); ``values`` maps a quantity (``"area"``, ``"area_std"``, ``"chi2"``,
    ``"cps"``, ``"cps_std"``) to a float array of shape (points, lines), NaN where absent.
    Negative areas are kept as they are; ``flags`` (same shape, str) marks them ``"negative"``.
    """

    source: str
    points: pd.DataFrame
    lines: list[str]
    values: dict[str, np.ndarray]
    flags: np.ndarray | None = None
    metadata: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------- diffraction

#: Wavelength (angstrom) assumed when neither the file nor the user gives one: Cu K-alpha1.
CU_KALPHA1_A = 1.5406


@dataclass
class DiffractionPatterns:
    """Diffraction patterns read from one source, all on one 2-theta grid (as measured).

    ``intensity`` is (patterns x points) over ``two_theta`` (degrees, increasing). ``extra`` is
    an optional third column of the same shape, ``extra_kind`` says what it is ("uncertainty" or
    "background"). ``wavelength_source`` says where ``wavelength`` (angstrom) came from: "file",
    "option" or "assumed" (Cu K-alpha1); ``axis`` says what the file's axis was ("2theta", or "q"
    converted with the wavelength). ``scan`` holds per-pattern coordinates (e.g. a pressure step),
    ``lines`` the 1-based line where each pattern's data start (for messages).
    """

    source: str
    pattern_ids: list[str]
    two_theta: np.ndarray
    intensity: np.ndarray
    wavelength: float
    wavelength_source: str = "assumed"
    axis: str = "2theta"
    extra: np.ndarray | None = None
    extra_kind: str = ""
    scan: dict[str, np.ndarray] = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pattern_ids)


@dataclass
class PatternLabels:
    """What a labels table says each pattern is: one class, or a set of phases.

    ``table`` has one row per pattern with columns ``pattern_id``, ``label`` (a class name, or
    the phases joined by ";" in sorted order for multi-phase labels) and ``line`` (1-based).
    ``multi`` is True when the table lists sets of phases rather than one class.
    """

    source: str
    table: pd.DataFrame
    multi: bool = False

    @property
    def phases(self) -> list[str]:
        """Every phase (or class) named in the table, sorted."""
        names = set()
        for label in self.table["label"]:
            names.update(p for p in str(label).split(";") if p)
        return sorted(names)
