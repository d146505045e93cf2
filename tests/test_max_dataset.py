"""The MAX data set layout: sniffed as one folder source, read into spectra and lab tables."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

import xrfhub
from xrfhub.errors import ConfigError, InputError
from xrfhub.readers import max_dataset as M
from xrfhub.records import Calibration
from xrfhub.sources import find, parse_one

from max_layout import write_max_layout, write_tiny_layout


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return write_max_layout(tmp_path_factory.mktemp("max"), seed=1)


@pytest.fixture(scope="module")
def dataset(layout):
    return M.read_dir(layout.root, source="data")


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_layout(tmp_path)


# --------------------------------------------------------------------------- layout and sources


def test_layout_is_sniffed_at_every_level(layout):
    root = layout.root
    for folder in (root, root / "pretrain", root / "pretrain" / "train", root / "finetune",
                   root / "finetune" / "TOC%", root / "finetune" / "TOC%" / "test"):
        assert M.sniff_dir(folder), folder
    assert not M.sniff_dir(layout.corpus / "scans")
    assert not M.sniff_dir(root / "pretrain" / "train" / "spe")
    assert not M.sniff_dir(root / "pretrain" / "train" / "info.csv")
    splits = {(s.rel, s.role, s.split, s.target) for s in M.split_folders(root)}
    assert splits == {("pretrain/train", "pretrain", "train", ""), ("pretrain/test", "pretrain", "test", ""),
                      ("finetune/CaCO3%/train", "finetune", "train", "CaCO3%"),
                      ("finetune/CaCO3%/test", "finetune", "test", "CaCO3%"),
                      ("finetune/TOC%/train", "finetune", "train", "TOC%"),
                      ("finetune/TOC%/test", "finetune", "test", "TOC%")}
    # a single fine-tuning split takes its target from the folder above it
    (one,) = M.split_folders(root / "finetune" / "TOC%" / "test")
    assert (one.role, one.target, one.rel) == ("finetune", "TOC%", "")


def test_find_makes_one_candidate_per_data_set(layout, tmp_path):
    (cand,) = find([layout.root])
    assert (cand.name, cand.folder_format, cand.explicit) == ("data", "max-dataset", True)
    # met while walking: one candidate, not thousands of CSV files; other files stay files
    top = tmp_path / "mine"
    shutil.copytree(layout.root, top / "max" / "data")
    (top / "notes.txt").write_text("hello")
    cands = find([top])
    assert [(c.name, c.folder_format, c.explicit) for c in cands] == [
        ("mine/notes.txt", "", False), ("mine/max/data", "max-dataset", False)]
    # an Avaatech folder that happens to be called test/spe/ is not a MAX split
    (tmp_path / "cores" / "test" / "spe").mkdir(parents=True)
    shutil.copy(next((layout.corpus / "scans").rglob("*.spe")), tmp_path / "cores" / "test" / "spe" / "a.spe")
    assert [c.folder_format for c in find([tmp_path / "cores"])] == [""]
    # single-file behaviour is unchanged: a scan folder is still its .spe files
    scans = find([layout.corpus / "scans"])
    assert len(scans) == len(list((layout.corpus / "scans").rglob("*.spe")))
    assert all(c.folder_format == "" and c.name.endswith(".spe") for c in scans)


def test_fingerprint_covers_the_data_set_files_only(tiny, tmp_path):
    (cand,) = find([tiny])
    first = parse_one(cand)
    assert first.error is None and first.kind == "spectra+samples"
    files = M.dataset_files(tiny)
    assert len(files) == 3 + 2 + 3  # spe + info of pretrain, spe/target/info of finetune
    pairs = sorted((f.relative_to(tiny).as_posix(), hashlib.sha256(f.read_bytes()).hexdigest()) for f in files)
    expect = hashlib.sha256("".join(f"{r}\0{h}\n" for r, h in pairs).encode()).hexdigest()
    assert first.source.sha256 == expect
    assert first.source.size == sum(f.stat().st_size for f in files)
    assert first.source.format == "max-dataset" and first.source.name == "data"
    (tiny / "README.txt").write_text("not part of the data set")
    assert parse_one(cand).source.sha256 == expect
    spe = tiny / "pretrain" / "train" / "spe" / "0.csv"
    lines = spe.read_text().splitlines()
    lines[0] = str(int(lines[0]) + 1)
    spe.write_text("\n".join(lines) + "\n")
    assert parse_one(cand).source.sha256 != expect


# --------------------------------------------------------------------------- spectra


def test_counts_round_trip(layout, dataset):
    assert len(dataset.spectra) == len(layout.pretrain)
    by_source = {s.source: s for s in dataset.spectra}
    for i, row in layout.pretrain.iterrows():
        s = by_source[f"data/pretrain/{row.split}/spe/{row.dirname}"]
        assert s.counts.dtype == np.uint32 and s.n_channels == 2048
        np.testing.assert_array_equal(s.counts, layout.counts[i])
        assert s.core == row.core and s.depth_mm == row.composite_depth_mm
        assert s.position_mm == row.section_depth_mm
        assert s.section == row.section
        assert s.header.splitlines()[0].startswith("dirname,composite_id,cps,core")
        assert row.composite_id in s.header and row.filename in s.header
    assert dataset.test_cores == layout.test_cores
    assert dataset.splits["pretrain/test"] == "test"
    assert dataset.warnings == []


def test_depths_settings_and_assumptions(tiny):
    data = M.read_dir(tiny, source="max")
    counts = np.load(tiny.parent / "counts.npy")
    by = {s.source: s for s in data.spectra}
    assert sorted(by) == [f"max/pretrain/{p}" for p in ("test/spe/2.csv", "train/spe/0.csv", "train/spe/1.csv")]
    c, b, a = (by[f"max/pretrain/{p}"] for p in ("train/spe/0.csv", "train/spe/1.csv", "test/spe/2.csv"))
    np.testing.assert_array_equal(c.counts, counts[0])
    # composite depth is the depth; section_depth_mm the position; top = depth - position
    assert (c.depth_mm, c.position_mm, c.section_top_mm, c.section) == (1005.0, 5.0, 1000.0, "0100")
    assert (b.depth_mm, b.position_mm, b.section_top_mm) == (1015.0, 15.0, 1000.0)
    # the .spe name gives the tube settings; without one 10 kV is assumed, and said so
    assert (c.tube_kv, c.tube_ma, c.live_time_s, c.run, c.filter) == (10.0, 0.15, 10.0, "Run1", "No-Filter")
    assert c.warnings == ()
    assert a.tube_kv == 10.0 and "assumed 10 kV" in a.warnings[0]
    assert a.total_cps == 4900.0
    assert c.calibration == Calibration(0.02, 0.0, "default")
    assert data.test_cores == ["LV28-44-3"]
    own = Calibration(0.0199, -0.01, "option")
    assert all(s.calibration == own for s in M.read_dir(tiny, source="max", calibration=own).spectra)


# --------------------------------------------------------------------------- labels and paired means


def test_labels_one_table_per_split_with_every_target(layout, dataset):
    tables = {t.source: t for t in dataset.tables}
    assert sorted(tables) == ["data/finetune/test", "data/finetune/train"]
    for (folder, split), expect in layout.finetune.items():
        table = tables[f"data/finetune/{split}"]
        prop = folder.rstrip("%")
        assert sorted(table.properties) == ["CaCO3", "TOC"]
        assert table.units == {"CaCO3": "wt%", "TOC": "wt%"} and table.metadata["split"] == split
        s = table.samples.set_index("sample_id").loc[list(expect.dirname)]
        assert len(table.samples) == len(expect)  # each lab sample once, not once per target
        assert s.top_mm.isna().all() and s.bottom_mm.isna().all() and list(s.core) == list(expect.core)
        np.testing.assert_array_equal(s.mid_mm, expect.mid_depth_mm)
        np.testing.assert_array_equal(s[prop], expect.value)
        assert (table.flags[prop] == "").all()


def test_provided_means_kept_and_reproduced(layout, dataset):
    by_table = {p.table: p for p in dataset.paired}
    for (folder, split), means in layout.means.items():
        paired = by_table[f"data/finetune/{folder}/{split}/info.csv"]
        np.testing.assert_array_equal(paired.mean, means)
        # the data set's own spectra, windowed like the store does, give the same means
        derived = dataset.window_means(paired)
        assert np.nanmax(M.paired_difference(paired, derived)) < 1e-6
    assert dataset.check_paired() == []


def test_compare_paired_names_the_samples_that_differ(tiny):
    data = M.read_dir(tiny, source="max")
    (paired,) = data.paired
    derived = data.window_means(paired)
    assert M.compare_paired(paired, derived) == []
    shifted = derived * 1.05
    (warning,) = M.compare_paired(paired, shifted)
    assert "max/finetune/CaCO3%/train/info.csv" in warning and "7.csv" in warning and "1 of 1" in warning
    np.testing.assert_allclose(M.paired_difference(paired, shifted), 0.05, rtol=1e-9)
    (warning,) = M.compare_paired(paired, np.full_like(derived, np.nan))
    assert "no spectrum" in warning and "1010 mm" in warning
    with pytest.raises(ConfigError, match="one row per sample"):
        M.compare_paired(paired, derived[:, :100])
    # only one of the two spectra in the window: the data set's own check says so
    (tiny / "pretrain" / "train" / "info.csv").write_text(
        (tiny / "pretrain" / "train" / "info.csv").read_text().replace("1015.0,15.0", "1035.0,35.0"))
    (warning,) = M.read_dir(tiny, source="max").check_paired()
    assert "differs" in warning


def test_info_variants_of_older_scripts(tmp_path):
    lay = write_max_layout(tmp_path, seed=2, file_column="filename")
    split = lay.root / "pretrain" / "test"
    (split / "info.csv").rename(split / "info_test.csv")
    data = M.read_dir(lay.root)
    assert data.source == "data" and len(data.spectra) == len(lay.pretrain)
    # one row per lab sample: the same samples appear in every target folder
    assert sum(len(t.samples) for t in data.tables) == sum(len(f) for (t, _s), f in lay.finetune.items()
                                                          if t == "CaCO3%")
    (split / "spe" / "9999.csv").write_text("1\n")
    assert any("not listed in info.csv" in w and "9999.csv" in w for w in M.read_dir(lay.root).warnings)


# --------------------------------------------------------------------------- bad input


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _error(root) -> InputError:
    with pytest.raises(InputError) as info:
        M.read_dir(root, source="data")
    # through sources the same error comes back, not raised
    (cand,) = find([root])
    parsed = parse_one(cand)
    assert parsed.error is not None and str(parsed.error) == str(info.value)
    assert parsed.source.sha256  # fingerprinted all the same
    return info.value


def test_missing_info_csv(tiny):
    (tiny / "pretrain" / "train" / "info.csv").unlink()
    err = _error(tiny)
    assert err.path.endswith("pretrain/train/info.csv") and "missing" in err.reason


def test_non_integer_count_names_file_and_line(tiny):
    spe = tiny / "pretrain" / "train" / "spe" / "1.csv"
    lines = spe.read_text().splitlines()
    lines[40] = "12.5"
    spe.write_text("\n".join(lines) + "\n")
    err = _error(tiny)
    assert err.path.endswith("spe/1.csv") and err.line == 41 and "'12.5'" in err.reason
    lines[40] = "12.0"  # an integer written by a float column is an integer
    spe.write_text("\n".join(lines) + "\n")
    (s,) = [s for s in M.read_dir(tiny).spectra if s.source.endswith("train/spe/1.csv")]
    assert s.counts[40] == 12


def test_wrong_channel_count(tiny):
    spe = tiny / "pretrain" / "test" / "spe" / "2.csv"
    spe.write_text("\n".join(spe.read_text().splitlines()[:2047]) + "\n")
    err = _error(tiny)
    assert err.path.endswith("spe/2.csv") and "2047 channels, expected 2048" in err.reason


@pytest.mark.parametrize("text, line", [("12.5\n13.0\n", 2), ("twelve", 1), ("", None), ("1, 2", 1)])
def test_target_must_be_one_float(tiny, text, line):
    (tiny / "finetune" / "CaCO3%" / "train" / "target" / "7.csv").write_text(text)
    err = _error(tiny)
    assert err.path.endswith("target/7.csv") and err.line == line and "one number" in err.reason


def test_bad_mean_spectrum_value(tiny):
    spe = tiny / "finetune" / "CaCO3%" / "train" / "spe" / "7.csv"
    lines = spe.read_text().splitlines()
    lines[2] = "n/a"
    spe.write_text("\n".join(lines) + "\n")
    err = _error(tiny)
    assert err.path.endswith("CaCO3%/train/spe/7.csv") and err.line == 3


@pytest.mark.parametrize("info, old, new, field", [
    ("pretrain/train/info.csv", "\n1.csv,", "\n5.csv,", "dirname"),
    ("finetune/CaCO3%/train/info.csv", "7.csv,", "8.csv,", "dirname"),
])
def test_rows_pointing_at_missing_files(tiny, info, old, new, field):
    _edit(tiny / info, old, new)
    err = _error(tiny)
    assert err.path.endswith(info) and err.line == 2 + (info.startswith("pretrain")) and err.field == field
    assert "does not exist" in err.reason


def test_missing_target_file(tiny):
    (tiny / "finetune" / "CaCO3%" / "train" / "target" / "7.csv").unlink()
    err = _error(tiny)
    assert err.path.endswith("CaCO3%/train/info.csv") and "target/7.csv" in err.reason and err.line == 2


def test_duplicated_composite_ids(tiny):
    _edit(tiny / "pretrain" / "train" / "info.csv", "PS75-056-1_01015", "PS75-056-1_01005")
    err = _error(tiny)
    assert (err.line, err.field) == (3, "composite_id") and "PS75-056-1_01005" in err.reason


def test_duplicated_composite_ids_across_splits(tiny):
    _edit(tiny / "pretrain" / "test" / "info.csv", "LV28-44-3_00020", "PS75-056-1_01015")
    err = _error(tiny)
    assert err.field == "composite_id" and "pretrain/t" in err.reason


def test_missing_column_and_bad_depth(tiny):
    info = tiny / "pretrain" / "test" / "info.csv"
    _edit(info, "composite_depth_mm", "depth")
    err = _error(tiny)
    assert err.line == 1 and "composite_depth_mm" in err.reason
    _edit(info, "depth", "composite_depth_mm")
    _edit(info, ",20.0,", ",twenty,")
    err = _error(tiny)
    assert (err.line, err.field) == (2, "composite_depth_mm")


# --------------------------------------------------------------------------- end to end



def test_ingest_data_set_in_one_command(layout, tmp_path):
    store = tmp_path / "hub"
    report = xrfhub.ingest([layout.root], store)
    n_samples = sum(len(f) for (t, _s), f in layout.finetune.items() if t == "CaCO3%")  # once, not per target
    assert report.added == ["data"] and report.n_spectra == len(layout.pretrain)
    assert report.n_samples == n_samples
    spectra = xrfhub.open(store, index=False).load()
    assert spectra.sizes["spectrum"] == len(layout.pretrain)
    order = np.lexsort((spectra.depth_mm.values, spectra.core.values.astype(str)))
    expect = np.lexsort((layout.pretrain.composite_depth_mm.values, layout.pretrain.core.values.astype(str)))
    np.testing.assert_array_equal(spectra.counts.values[order], layout.counts[expect])
    samples = xrfhub.open(store, "samples", index=False).load()
    assert samples.sizes["sample"] == n_samples
    for folder, prop in (("CaCO3%", "CaCO3"), ("TOC%", "TOC")):
        got = samples.where(np.isfinite(samples[prop]), drop=True)
        rows = np.lexsort((got.mid_mm.values, got.core.values.astype(str)))
        want = [(c, m, v, k) for split in ("train", "test")
                for (c, m, v), k in zip(layout.finetune[(folder, split)][["core", "mid_depth_mm", "value"]]
                                        .itertuples(index=False), layout.means[(folder, split)])]
        want.sort(key=lambda w: (w[0], w[1]))
        np.testing.assert_array_equal(got[prop].values[rows], [w[2] for w in want])
        # the store re-derives the paired means from the raw spectra: the provided ones again
        np.testing.assert_allclose(got.mean_spectrum.values[rows], np.stack([w[3] for w in want]), rtol=1e-6)
    again = xrfhub.ingest([layout.root], store)
    assert again.unchanged == ["data"] and again.generation is None
