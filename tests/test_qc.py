"""Quality control: known faults injected into generated spectra are flagged with their reason,
untouched spectra stay ok; the flags are stored (NeXus + hub), queried, counted, drawn, and
flagged spectra are left out of depth alignment and loaders by default (issue 15)."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest

import xrfhub
from conftest import run_cli
from xrfhub.errors import ConfigError
from xrfhub.qc import command as qc_command
from xrfhub.qc import store as qc_store
from xrfhub.qc.params import QCParams

N = 40  # spectra per core, 10 mm apart
#: fault -> (row in core TQC-1, the reason it must be flagged with)
FAULTS = {"tube_off": 8, "throughput_drop": 14, "air_gap": 20, "swapped_anode": 26, "calibration_shift": 32}
REASON = {"tube_off": "tube_off", "throughput_drop": "throughput_low", "air_gap": "air_gap",
          "swapped_anode": "anode", "calibration_shift": "calibration_drift"}


def depth_of(row: int) -> float:
    return 10.0 + 10.0 * row


def write_fault_corpus(root, seed: int = 0) -> None:
    """Two cores of generated Avaatech spectra (10 kV, Rh tube); TQC-1 carries one injected fault each."""
    from xrfhub.synth import composition as comp, corpus as sc, faults
    from xrfhub.synth.lab_writer import write_lab_csv
    from xrfhub.synth.spe_writer import SpeMeta, SpeStyle, space_name, write_spe

    rng = np.random.default_rng(seed)
    hist = comp.simulate_core(rng, 600.0, comp.random_style(rng))
    depth = np.array([depth_of(i) for i in range(N)])
    dry, water = hist.at(depth)
    weights = comp.element_weights(dry, water)
    film = np.full(N, 10.0)
    for core in ("TQC-1", "TQC-2"):
        dates = [dt.datetime(2015, 1, 1, 8) + dt.timedelta(seconds=30 * i) for i in range(N)]
        counts, real, rate = sc.simulate_spectra(rng, weights, film, 10, "No-Filter", 150, 10, dates, 0.02, 0.0)
        if core == "TQC-1":
            one = lambda i: slice(i, i + 1)  # noqa: E731
            i = FAULTS["tube_off"]
            counts[i] = faults.tube_off(rng, counts[one(i)])[0]
            i = FAULTS["throughput_drop"]
            counts[i] = faults.throughput_drop(rng, counts[one(i)], 0.6)[0]
            i = FAULTS["air_gap"]
            counts[i] = faults.air_gap(rng, counts[one(i)], 0.02, 0.0, fraction=0.03)[0]
            i = FAULTS["swapped_anode"]
            counts[i] = faults.other_anode(rng, weights[one(i)], film[one(i)], 10, "No-Filter",
                                           counts[one(i)].sum(1), 0.02, 0.0, anode="Mo")[0]
            i = FAULTS["calibration_shift"]
            counts[i] = faults.calibration_shift(counts[one(i)], 4)[0]  # 80 eV
        for k in range(N):
            meta = SpeMeta(core=core, section="0000", position_mm=float(depth[k]), date=dates[k], live_s=10.0,
                           real_s=float(real[k]), kv=10, current_ua=150, total_cps=float(rate[k]))
            write_spe(root / "scans" / core / "Run 1 at  10kV" / space_name(meta), counts[k], meta, SpeStyle())
    # lab samples 4 mm wide at a faulty depth and at clean depths (window 5 mm: one spectrum each)
    rows = [dict(core=c, top_mm=depth_of(r) - 2, bottom_mm=depth_of(r) + 2, CaCO3=30.0, TOC=0.5)
            for c in ("TQC-1", "TQC-2") for r in (FAULTS["air_gap"], 5)]
    write_lab_csv(root / "lab" / "lab.csv", rows)


@pytest.fixture(scope="module")
def qc_store_dir(tmp_path_factory):
    """A store of the fault corpus after `xrfhub qc STORE --out qc.png` (run as a user would)."""
    root = tmp_path_factory.mktemp("qc")
    write_fault_corpus(root)
    store = root / "store"
    xrfhub.ingest([root / "scans", root / "lab"], store)
    result = qc_command.run(store)  # the command line is exercised below (--alignment keep, refusals)
    from xrfhub.qc.figure import plot

    plot(result, root / "qc.png")
    return store, root, result


def _spectra_table(store) -> pd.DataFrame:
    ds = xrfhub.open(store, "spectra", index=False)
    return pd.DataFrame({c: ds[c].values for c in ("core", "depth_mm", "qc_flag", "qc_reasons")})


def test_injected_faults_are_flagged_with_their_reason_and_clean_spectra_stay_ok(qc_store_dir):
    store, _root, _out = qc_store_dir
    t = _spectra_table(store)
    assert len(t) == 2 * N
    faulty = t["core"].eq("TQC-1") & t["depth_mm"].isin([depth_of(r) for r in FAULTS.values()])
    for fault, row in FAULTS.items():
        hit = t[t["core"].eq("TQC-1") & t["depth_mm"].eq(depth_of(row))].iloc[0]
        assert hit["qc_flag"] in ("bad", "suspect"), (fault, hit.to_dict())
        assert REASON[fault] in hit["qc_reasons"].split(","), (fault, hit.to_dict())
    severe = t[t["core"].eq("TQC-1") & t["depth_mm"].isin([depth_of(FAULTS[f]) for f in
                                                          ("tube_off", "throughput_drop", "swapped_anode")])]
    assert set(severe["qc_flag"]) == {"bad"}
    clean = t[~faulty]
    assert (clean["qc_flag"] == "ok").all(), clean[clean["qc_flag"] != "ok"]
    assert (clean["qc_reasons"] == "").all()


def test_flags_are_coordinates_that_follow_selection_and_queries_return_everything(qc_store_dir, tmp_path):
    store, _root, _out = qc_store_dir
    ds = xrfhub.open(store)
    assert "qc_flag" in ds.coords and "qc_reasons" in ds.coords
    part = ds.sel(core="TQC-1", depth_mm=slice(depth_of(FAULTS["tube_off"]), depth_of(FAULTS["tube_off"])))
    assert part["qc_flag"].values.tolist() == ["bad"] and part["qc_reasons"].values[0].startswith("tube_off")
    out = tmp_path / "all.csv"
    n = xrfhub.query(store, out, kind="spectra")
    table = pd.read_csv(out, keep_default_na=False)
    assert n == 2 * N and "qc_flag" in table and (table["qc_flag"] == "bad").sum() == 3


def test_provenance_holds_thresholds_and_version_in_nexus_and_hub(qc_store_dir):
    from pathlib import Path

    from xrfhub import api
    from xrfhub import kinds

    store, _root, _out = qc_store_dir
    gen, _ = api.resolve(store)
    for path in sorted((Path(gen) / "nexus").glob("*.nxs")):
        with h5py.File(path, "r") as f:  # an NXprocess named qc, read as plain HDF5
            found = []
            f.visititems(lambda name, obj: found.append(name) if name.endswith("/qc") and
                         obj.attrs.get("NX_class") in ("NXprocess", b"NXprocess") else None)
            assert len(found) == 1
        procs = [p for p in kinds.read_core(path).processes if p.name == "qc"]
        assert len(procs) == 1
        assert procs[0].parameters["thresholds"] == QCParams().to_dict()
        assert procs[0].parameters["xrfhub_version"] == xrfhub.__version__
        assert len(procs[0].data["spectra_ch2048__flag"]) == N
    ds = xrfhub.open(store)
    assert json.loads(ds.attrs["qc"])["thresholds"]["throughput_bad_ratio"] == QCParams().throughput_bad_ratio


def test_rebuild_reproduces_the_flags_from_nexus_and_the_store_validates(qc_store_dir, tmp_path):
    from xrfhub.store import hub

    store, _root, _out = qc_store_dir
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    from xrfhub import api

    gen_before = api.resolve(copy)[0]
    sums_before = hub.stored_checksums(f"{gen_before}/hub.zarr", "qc/spectra_ch2048")
    xrfhub.rebuild(copy)
    gen_after = api.resolve(copy)[0]
    assert gen_after != gen_before
    assert hub.stored_checksums(f"{gen_after}/hub.zarr", "qc/spectra_ch2048") == sums_before
    assert xrfhub.validate(copy).ok


def test_alignment_leaves_flagged_spectra_out_and_records_it(qc_store_dir, tmp_path):
    store, _root, _out = qc_store_dir
    samples = xrfhub.open(store, "samples", index=False)
    at_fault = (samples["core"].values == "TQC-1") & np.isclose(samples["depth_mm"].values, depth_of(FAULTS["air_gap"]))
    assert samples["match_status"].values[at_fault].tolist() == ["unmatched"]
    assert (samples["match_status"].values[~at_fault] == "matched").all()
    summary = xrfhub.info(store)["matches"]["qc"]
    assert summary == {"policy": "exclude", "qc_ran": True, "left_out": {"bad": 3, "suspect": 2}}


@pytest.mark.slow
def test_alignment_keeps_flagged_spectra_when_told_through_the_command_line(qc_store_dir, tmp_path):
    store, _root, _out = qc_store_dir
    copy = tmp_path / "keep"
    shutil.copytree(store, copy)
    out = run_cli("qc", copy, "--alignment", "keep", "--out", tmp_path / "keep.png").stdout
    assert "TQC-1" in out and "tube_off 1" in out and (tmp_path / "keep.png").is_file()
    samples = xrfhub.open(copy, "samples", index=False)
    assert (samples["match_status"].values == "matched").all()
    assert xrfhub.info(copy)["matches"]["qc"]["policy"] == "keep"


def test_loaders_leave_flagged_spectra_out_unless_told_to_keep_them(qc_store_dir):
    from xrfhub.ml.loaders import qc_policy, select_rows

    store, _root, _out = qc_store_dir
    ds = xrfhub.open(store, index=False)
    assert len(select_rows(ds)) == 2 * N - 5
    with qc_policy("keep"):
        assert len(select_rows(ds)) == 2 * N
    assert len(select_rows(ds, qc="keep")) == 2 * N
    with pytest.raises(ConfigError, match="unknown QC policy"):
        with qc_policy("maybe"):
            pass
    record = qc_command.training_record(store, "exclude")
    assert record["left_out_spectra"]["spectra/ch2048"]["n"] == 5
    assert record["left_out_spectra"]["spectra/ch2048"]["by_reason"]["tube_off"] == 1


def test_info_counts_flags_per_core_and_reason_and_the_picture_is_written(qc_store_dir):
    store, root, stdout = qc_store_dir
    counts = xrfhub.info(store)["qc"]["spectra/ch2048"]
    assert counts["TQC-1"]["flags"] == {"ok": N - 5, "bad": 3, "suspect": 2}
    assert counts["TQC-2"]["flags"] == {"ok": N}
    assert {"tube_off", "throughput_low", "air_gap", "anode", "calibration_drift"} <= set(counts["TQC-1"]["reasons"])
    from xrfhub.summary import format_info

    text = format_info(xrfhub.info(store))
    assert "quality flags (xrfhub qc):" in text and "tube_off 1" in text
    png = root / "qc.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert stdout.counts() == xrfhub.info(store)["qc"]


def test_bad_threshold_is_refused_and_nothing_is_written(qc_store_dir):
    store, _root, _out = qc_store_dir
    before = json.loads((store / "store.json").read_text())["current"]
    result = run_cli("qc", store, "--set", "throughput_bad_ratio=half", check=False)
    assert result.returncode != 0 and "throughput_bad_ratio='half': expected a number" in result.stderr
    with pytest.raises(ConfigError, match="unknown QC threshold 'no_such'"):
        QCParams.from_options({"no_such": "1"})
    with pytest.raises(xrfhub.errors.StoreError, match="unknown QC policy"):
        qc_command.run(store, alignment="sometimes")
    assert json.loads((store / "store.json").read_text())["current"] == before


# ---------------------------------------------------------------------------- unit level


def _coords(n, **over):
    base = {"core": "C", "run": "R", "tube_kv": 10.0, "replicate": 0, "depth_mm": np.arange(n) * 10.0,
            "live_time_s": 10.0, "real_time_s": 11.0, "energy_gain_kev": 0.02, "energy_offset_kev": 0.0,
            "tube_ma": 0.15, "filter": "No-Filter", "detector": "", "instrument": "avaatech", "section": "0"}
    base.update(over)
    return pd.DataFrame(base)


def _simulated(n: int, seed: int = 1):
    from xrfhub.synth import composition as comp, corpus as sc

    rng = np.random.default_rng(seed)
    hist = comp.simulate_core(rng, 400.0, comp.random_style(rng))
    dry, water = hist.at(np.arange(n) * 10.0 + 10)
    dates = [dt.datetime(2016, 1, 1)] * n
    counts, real, _ = sc.simulate_spectra(rng, comp.element_weights(dry, water), np.full(n, 10.0), 10,
                                          "No-Filter", 150, 10, dates, 0.02, 0.0)
    return counts, real


def test_instrument_settings_that_differ_within_a_run_are_bad():
    from xrfhub.qc import spectra

    n = 30
    counts, real = _simulated(n)
    filters = np.array(["No-Filter"] * n, dtype=object)
    filters[5] = "Al"
    current = np.full(n, 0.15)
    current[9] = 0.6
    kv = np.full(n, 10.0)
    kv[15] = 30.0  # a stray voltage inside a 10 kV run
    coords = _coords(n, real_time_s=real, filter=filters, tube_ma=current, tube_kv=kv)
    v, _ = spectra.check(spectra.measure(counts, coords, QCParams()), coords, QCParams())
    flags, reasons = v.flags(), v.reason_strings()
    for row in (5, 9, 15):
        assert flags[row] == "bad" and "identity" in reasons[row].split(","), (row, reasons[row])
    assert set(np.delete(flags, [5, 9, 15])) == {"ok"}


def test_missing_inputs_make_points_indeterminate_never_ok():
    from xrfhub.qc import spectra

    n = 24
    counts, real = _simulated(n)
    live = np.full(n, 10.0)
    live[3] = np.nan
    real = real.copy()
    real[7] = np.nan
    coords = _coords(n, live_time_s=live, real_time_s=real)
    v, _ = spectra.check(spectra.measure(counts, coords, QCParams()), coords, QCParams())
    flags, reasons = v.flags(), v.reason_strings()
    assert flags[3] == "indeterminate" and "missing_live_time" in reasons[3]
    assert flags[7] == "indeterminate" and "missing_real_time" in reasons[7]
    assert set(np.delete(flags, [3, 7])) == {"ok"}


def test_a_throughput_drop_of_a_whole_block_is_still_flagged():
    """A block longer than the rolling window must not become its own reference."""
    from xrfhub.qc.verdicts import robust_reference

    x = np.full(100, 1000.0)
    x[40:75] = 400.0
    rough = x / np.median(x)
    ref = robust_reference(x, 21, rough < 0.5)
    assert np.allclose(ref, 1000.0)


def test_replicates_that_disagree_are_suspect():
    from xrfhub.qc import elements
    from xrfhub.elements import elements_dataset as _elements_dataset
    from xrfhub.records import CoreRecord, ElementTable

    n = 30
    pts = pd.DataFrame({"core": "C", "section": "1", "section_top_mm": 0.0, "position_mm": np.tile(np.arange(15) * 10.0, 2),
                        "tube_kv": 10.0, "run": "R", "replicate": np.repeat([0, 1], 15), "valid": True,
                        "source": "t.csv", "spectrum": "", "live_time_s": 10.0, "real_time_s": 12.0,
                        "throughput_cps": 1e5})
    pts["depth_mm"] = pts["position_mm"]
    area = np.tile([[5e4, 2e4, 1e4]], (n, 1)).astype(float)
    pts.loc[15 + 6, "throughput_cps"] = 1.5e5  # replicate 1 at 60 mm counts 50 % more
    table = ElementTable("t.csv", pts, ["Ca-Ka", "Fe-Ka", "K-Ka"], {"area": area})
    v, _ = elements.check(_elements_dataset({"C": CoreRecord("C", elements=[table])}), QCParams())
    reasons = v.reason_strings()
    assert "replicate" in reasons[6] and "replicate" in reasons[21]
    assert all("replicate" not in r for i, r in enumerate(reasons) if i not in (6, 21))


def test_thresholds_from_options():
    p = QCParams.from_options({"window": "31", "chi2_ratio": "4"})
    assert p.window == 31 and p.chi2_ratio == 4.0
    with pytest.raises(ConfigError, match="positive whole number"):
        QCParams.from_options({"window": "2.5"})


COUNTING_PLUGIN = '''
"""A plugin that records how many spectra its loader selection gives it."""
import json
from dataclasses import dataclass
from pathlib import Path

import xrfhub
from xrfhub.ml.loaders import select_rows
from xrfhub.ml.registry import RunSummary


@dataclass
class Config:
    pass


class Counter:
    name = "counter"
    description = "counts the spectra it would train on"
    stages = ("pretrain",)
    targets = ("*",)
    config = Config
    presets = {}

    def train(self, store, *, stage, out, config, target=None, init=None, holdout_cores=(), progress=True):
        n = len(select_rows(xrfhub.open(store, index=False), exclude_cores=holdout_cores))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "run.json").write_text(json.dumps({"plugin": "counter", "stage": stage, "n": n}))
        return RunSummary(Path(out), "counter", stage, target, {"n": n})

    def predict(self, store, run_dir, *, progress=True):
        raise NotImplementedError


counter = Counter()
'''


def test_training_leaves_flagged_spectra_out_by_default_and_records_what(qc_store_dir, tmp_path):
    from xrfhub.ml import training

    store, _root, _out = qc_store_dir
    path = tmp_path / "counter.py"
    path.write_text(COUNTING_PLUGIN)
    default = training.train("counter", store, stage="pretrain", out=tmp_path / "a", plugin_from=str(path),
                             progress=False)
    kept = training.train("counter", store, stage="pretrain", out=tmp_path / "b", plugin_from=str(path),
                          progress=False, keep_flagged=True)
    assert default.metrics["n"] == 2 * N - 5 and kept.metrics["n"] == 2 * N
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["qc"]["policy"] == "exclude" and run["qc"]["left_out_spectra"]["spectra/ch2048"]["n"] == 5
    assert run["qc"]["thresholds"] == QCParams().to_dict()
    assert run["qc"]["alignment"]["left_out"] == {"bad": 3, "suspect": 2}
    assert json.loads((tmp_path / "b" / "run.json").read_text())["qc"]["policy"] == "keep"


def test_points_added_after_qc_are_indeterminate_not_checked(qc_store_dir):
    from xrfhub.build import concat_spectra, load_records
    from xrfhub.store.generations import Store

    store, _root, _out = qc_store_dir
    records = load_records(Store(store).current())
    records["TQC-2"].processes = [p for p in records["TQC-2"].processes if p.name != "qc"]  # as if ingested later
    block = concat_spectra(records)[2048]
    flags, reasons, _ = qc_store.spectra_flags(records, block)
    later = block.coords["core"].to_numpy() == "TQC-2"
    assert set(flags[later]) == {"indeterminate"} and set(reasons[later]) == {"not_checked"}
    assert "ok" in set(flags[~later])
