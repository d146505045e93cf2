"""The store's layout, defined in this one place.

A store is a folder (or an fsspec URL for reading) holding immutable *generations*; one
pointer file names the current one, so a commit is a single atomic rename::

    STORE/
      store.json                   pointer: format, version, current generation
      .lock                        single-writer lock
      log.jsonl                    append-only ingest log (provenance of every step)
      history/                     NeXus files of replaced source versions
      generations/gNNNNNN/
        manifest.json              generation, alignment, core map, warnings, history, runs
        index/cores/<core>.json    per core: NeXus file, scans (rows, sha256), depths, sources, hub order
        index/sources/<b>.json     sources by parent folder: name -> sha256, format, kind, size
        nexus/<core>.nxs           the archival master, one file per core
        runs/<run>.nxs             one prediction run (NXprocess: model, config, inputs, values)
        hub.zarr/                  the Zarr v3 hub: one group per kind

Kinds inside ``hub.zarr`` and their dimensions:

=============  ==========================================  ==============================
kind           group(s)                                    dimensions
=============  ==========================================  ==============================
spectra        ``spectra/ch<N>`` (one per channel count)   spectrum x channel
elements       ``elements``                                point x line
samples        ``samples``                                 sample (x channel for spectra)
predictions    ``predictions/<run_id>``                    spectrum, or pattern (x phase)
diffraction    ``diffraction/<grid_id>`` (one per grid)     pattern x two_theta
qc             ``qc/<judged group>`` (e.g. spectra_ch2048)  rows of the judged group
=============  ==========================================  ==============================
"""
from __future__ import annotations

STORE_FORMAT = "xrfhub-store"
STORE_VERSION = 1

POINTER = "store.json"
LOCK = ".lock"
LOG = "log.jsonl"
HISTORY = "history"
#: content identity -> source hints, shared by the generations (``store.catalog``)
IDENTITIES = "identities"
GENERATIONS = "generations"
MANIFEST = "manifest.json"
NEXUS_DIR = "nexus"
HUB = "hub.zarr"
NEXUS_SUFFIX = ".nxs"
INDEX_DIR = "index"
RUNS_DIR = "runs"

#: the kinds, each one module of ``xrfhub.kinds`` (whose registry, in this order, is the order of the writes)
KINDS = ("spectra", "elements", "samples", "predictions", "diffraction", "qc")

# dimension names
SPECTRUM = "spectrum"
CHANNEL = "channel"
SAMPLE = "sample"
POINT = "point"
LINE = "line"
PATTERN = "pattern"
TWO_THETA = "two_theta"
MATCH = "match"

#: rows per chunk of the counts array: whole spectra per chunk, ~1000 rows (DESIGN section 4)
SPECTRA_CHUNK_ROWS = 1024
#: rows per chunk of 1-D per-row arrays (coordinates, predictions): appends rewrite at most one
#: partial chunk per array, and ``xrfhub.open`` reads few files for a million rows
COORD_CHUNK_ROWS = 16384

#: Per-spectrum coordinates of the ``spectra`` kind: name -> (dtype, units, long name).
SPECTRUM_COORDS: dict[str, tuple[str, str, str]] = {
    "core": ("str", "", "core id"),
    "section": ("str", "", "section token as written by the scanner"),
    "half": ("str", "", "section half (IODP A archive, W working), when named"),
    "sample_id": ("str", "", "text id of the measured section or sample (IODP LIMS text id)"),
    "section_top_mm": ("float64", "mm", "depth of the section top in the core"),
    "position_mm": ("float64", "mm", "position in the section"),
    "depth_mm": ("float64", "mm", "depth on the scale depth_scale names (core: section top + position)"),
    "depth_scale": ("str", "", "what depth_mm measures: core, section-relative, or a --sections table's scale"),
    "composite_depth_mm": ("float64", "mm", "composite depth (from a user's affine table)"),
    "scan": ("str", "", "scan name (section, run, tube voltage, replicate)"),
    "run": ("str", "", "scanner run"),
    "replicate": ("int32", "", "replicate number"),
    "tube_kv": ("float64", "kV", "X-ray tube voltage"),
    "tube_ma": ("float64", "mA", "X-ray tube current"),
    "live_time_s": ("float64", "s", "live time"),
    "real_time_s": ("float64", "s", "real time"),
    "filter": ("str", "", "primary beam filter"),
    "slit_dc_mm": ("float64", "mm", "slit down-core"),
    "slit_cc_mm": ("float64", "mm", "slit cross-core"),
    "date": ("str", "", "measurement time (ISO 8601)"),
    "energy_gain_kev": ("float64", "keV", "energy per channel"),
    "energy_offset_kev": ("float64", "keV", "energy of channel 0"),
    "calibration_source": ("str", "", "where the energy calibration came from"),
    "instrument": ("str", "", "scanner / file format"),
    "detector": ("str", "", "scanner head or detector identity"),
    "valid": ("bool", "", "False when the reader flagged the spectrum"),
    "source": ("str", "", "source file name in the store"),
}


#: Values of new coordinates for spectra written before the coordinate existed.
SPECTRUM_COORD_DEFAULTS: dict[str, object] = {"half": "", "sample_id": "", "depth_scale": "core"}


def spectra_group(n_channels: int) -> str:
    return f"spectra/ch{n_channels}"


def predictions_group(run_id: str) -> str:
    return f"predictions/{run_id}"


def generation_name(number: int) -> str:
    return f"g{number:06d}"


def run_file(run_id: str) -> str:
    """A prediction run's NeXus file, relative to the generation folder."""
    return f"{RUNS_DIR}/{run_id}{NEXUS_SUFFIX}"
