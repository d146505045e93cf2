"""Tube voltage as a first-class coordinate: ``ds.sel(core=..., tube_kv=10)`` through the index."""
from __future__ import annotations

import numpy as np
import pytest

from test_index import A, B, C, ROWS, make_dataset, rows_of
from xrfhub.errors import ConfigError
from xrfhub.index import CoreDepthIndex, NotInIndexError, drop_core_depth_index, with_core_depth_index


@pytest.fixture
def ds():
    return with_core_depth_index(make_dataset())


def expected(core=None, kv=None):
    return [i for i, (c, _d, v, _r) in enumerate(ROWS) if (core is None or c == core) and (kv is None or v == kv)]


def test_the_index_covers_the_voltage(ds):
    index = ds.xindexes["tube_kv"]
    assert isinstance(index, CoreDepthIndex) and index is ds.xindexes["core"]
    assert "tube_kv" in repr(index)


def test_core_and_voltage(ds):
    assert rows_of(ds.sel(core=A, tube_kv=10)) == expected(A, 10)
    assert rows_of(ds.sel(core=A, tube_kv=30)) == expected(A, 30) == [4, 5]
    assert rows_of(ds.sel(tube_kv=30)) == [4, 5]
    assert rows_of(ds.sel(core=[A, B], tube_kv=[10, 30])) == sorted(expected(A) + expected(B))


def test_a_voltage_never_mixes_in_another(ds):
    """Core A has 10 and 30 kV spectra at 1005 mm: the mean over a voltage uses that voltage only."""
    ten = ds.sel(core=A, tube_kv=10)
    assert set(ten.tube_kv.values.tolist()) == {10}
    mean = ten.counts.mean("spectrum").values
    assert np.allclose(mean, np.mean([make_dataset().counts.values[i] for i in expected(A, 10)], axis=0))


def test_depth_rules_apply_within_the_voltage(ds):
    # nearest 30 kV depth to 1010 in A is 1005 (tie -> shallower), never the 10 kV row at 1010
    assert rows_of(ds.sel(core=A, tube_kv=30, depth_mm=1010.0, method="nearest")) == [4]
    assert rows_of(ds.sel(core=A, tube_kv=10, depth_mm=1010.0)) == [2]
    assert rows_of(ds.sel(core=A, tube_kv=30, depth_mm=slice(1000, 1010))) == [4]
    with pytest.raises(NotInIndexError, match="1010 not found"):
        ds.sel(core=A, tube_kv=30, depth_mm=1010.0)


def test_a_core_without_that_voltage_gives_no_rows(ds):
    assert ds.sel(core=C, tube_kv=30).sizes["spectrum"] == 0
    assert rows_of(ds.sel(core=[A, C], tube_kv=30)) == [4, 5]


def test_unknown_voltage_and_core_are_refused(ds):
    with pytest.raises(NotInIndexError, match=r"tube_kv 50 not in this dataset; voltages: 10, 30"):
        ds.sel(core=A, tube_kv=50)
    with pytest.raises(NotInIndexError, match="Did you mean"):
        ds.sel(core="PS75-056-2", tube_kv=10)
    with pytest.raises(ConfigError, match="not a slice"):
        ds.sel(tube_kv=slice(10, 30))


def test_subsets_keep_the_voltage(ds):
    sub = ds.isel(spectrum=[0, 4, 5, 10])
    assert rows_of(sub.sel(tube_kv=30)) == [4, 5]
    assert rows_of(sub.sel(core=A, tube_kv=10)) == [0]
    plain = drop_core_depth_index(ds)
    assert "tube_kv" in plain.to_dataframe().reset_index().columns


def test_without_a_voltage_coordinate_the_index_is_two_dimensional():
    no_kv = with_core_depth_index(make_dataset().drop_vars("tube_kv"))
    assert no_kv.xindexes["core"].kv is None
    assert rows_of(no_kv.sel(core=C)) == [10]


def test_a_store_selects_by_voltage_and_info_shows_it(corpus, tmp_path):
    """A real ingest (core PS75-056-1 scanned at 10 and 30 kV): the opened store selects a voltage
    through the index, and ``xrfhub info`` counts each core's spectra per voltage."""
    import xrfhub
    from conftest import run_cli

    store = tmp_path / "hub"
    xrfhub.ingest([corpus.scans], store, progress=False)
    ds = xrfhub.open(store)
    both = ds.sel(core="PS75-056-1", depth_mm=15.0)
    assert sorted(both.tube_kv.values.tolist()) == [10, 30]  # same depth, two voltages
    ten = ds.sel(core="PS75-056-1", tube_kv=10)
    assert ten.sizes["spectrum"] == 20 and set(ten.tube_kv.values.tolist()) == {10}
    assert ds.sel(core="SO264-09-2", tube_kv=30).sizes["spectrum"] == 0
    info = xrfhub.info(store)
    assert info["cores"]["PS75-056-1"]["spectra_by_kv"] == {"10": 20, "30": 20}
    assert info["cores"]["SO264-09-2"]["spectra_by_kv"] == {"10": 20}
    text = run_cli("info", store).stdout
    assert "(20 at 10 kV, 20 at 30 kV)" in text and "tube_kv=10" in text


@pytest.fixture
def paired_store(corpus, tmp_path):
    import xrfhub

    store = tmp_path / "hub"
    xrfhub.ingest([corpus.scans, corpus.files["pangaea"]], store, progress=False)
    return store


@pytest.mark.slow
def test_a_model_predicts_its_voltage_and_says_which_spectra_it_left(paired_store, tmp_path):
    pytest.importorskip("torch")
    import xrfhub
    from conftest import run_cli
    from xrfhub.ml import training

    out = tmp_path / "ft"
    training.train("max", paired_store, stage="finetune", out=out, config="tiny", target="CaCO3", epochs=1,
                   sets={"batch": "8"}, progress=False)
    said = run_cli("predict", "--store", paired_store, "--run", out).stdout
    assert "predicted 40 at 10 kV; not predicted: 20 at 30 kV" in said and "--set tube_kv=KV" in said
    preds = xrfhub.open(paired_store, "predictions")
    assert np.isfinite(preds.sel(core="PS75-056-1", tube_kv=10)["CaCO3"].values).all()
    assert np.isnan(preds.sel(core="PS75-056-1", tube_kv=30)["CaCO3"].values).all()


def test_a_model_for_another_voltage_than_the_pairs_is_refused(paired_store, tmp_path):
    pytest.importorskip("torch")
    from xrfhub.ml import training

    with pytest.raises(ConfigError, match=r"paired with 10 kV spectra .* this run is for 30 kV.*--align-kv 30"):
        training.train("max", paired_store, stage="finetune", out=tmp_path / "ft30", config="tiny",
                       target="CaCO3", epochs=1, sets={"tube_kv": "30"}, progress=False)
