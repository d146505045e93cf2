"""The first hour of a new user: pictures that can be read, and messages that say everything."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner

import xrfhub
from xrfhub import plots
from xrfhub.errors import InputError
from xrfhub.store.generations import Store

from conftest import write_corpus


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("firsthour")
    corpus = write_corpus(root)
    xrfhub.ingest([corpus.scans, corpus.lab], root / "hub")
    return root / "hub"


def _boxes(fig, artists):
    renderer = fig.canvas.get_renderer()
    return [a.get_window_extent(renderer) for a in artists]


def test_spectra_line_names_never_overlap_each_other_nor_the_legend():
    energy = np.arange(2048) * 0.02
    counts = np.random.default_rng(0).poisson(1000, (3, 2048)).astype(float)
    fig = plots.spectra_figure(energy, counts, ["10 mm", "20 mm", "30 mm"], title="core X: 10 kV spectra",
                               max_kev=12.0, legend_title="depth")
    ax = fig.axes[0]
    texts = [t for t in ax.texts]
    names = {t.get_text() for t in texts}
    # close lines (Ba La 4.47 / Ti Ka 4.51 keV) and K-beta lines are all there
    assert {"Ba Lα", "Ti Kα", "Ca Kβ", "Fe Kβ", "Br Kα"} <= names
    boxes = _boxes(fig, texts)
    for (a, ta), (b, tb) in itertools.combinations(zip(boxes, texts), 2):
        assert not a.overlaps(b), f"{ta.get_text()!r} overlaps {tb.get_text()!r}"
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert not any(legend.overlaps(b) for b in boxes)
    assert ax.get_xlabel() == "energy (keV)" and "counts" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["10 mm", "20 mm", "30 mm"]  # the core is in the title, not on every line
    plots.pyplot().close(fig)


def test_profile_ticks_are_readable_and_units_said(tmp_path):
    assert plots._thousands_power(np.array([1.0, 9999.0])) == 0
    assert plots._thousands_power(np.array([200_000.0, 400_000.0])) == 3
    assert plots._thousands_power(np.array([3.2e7])) == 6
    depth = np.arange(100.0)
    path = plots.plot_profile(depth, {"Ca Kα": 2e5 + depth * 1e3}, None, {}, tmp_path / "p.png",
                              units={"Ca Kα": "counts"})
    assert path.stat().st_size > 1000


def test_loss_curve_whole_epochs_and_what_the_mse_is_on():
    pytest.importorskip("torch")
    from xrfhub_max.checkpoint import loss_figure

    rows = [{"epoch": e, "train_loss": 3.0 / e, "val_loss": 2.5 / e} for e in range(1, 4)]
    fig = loss_figure(rows, kind="regressor")
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert all(float(t).is_integer() for t in ticks)
    assert "standardised targets" in ax.get_ylabel()
    shown = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True) if t.get_text()]
    assert shown and not any("times" in s or "\\times" in s for s in shown)
    assert "reconstruction" in loss_figure(rows).axes[0].get_title()


def test_validate_names_what_it_checked(store):
    text = xrfhub.validate(store).text()
    assert "NeXus file of core PS75-056-1" in text and "hub group spectra/" in text


def test_query_carries_units_into_csv(store, tmp_path):
    out = tmp_path / "lab.csv"
    xrfhub.query(store, out, kind="samples")
    header = out.read_text().splitlines()[0].split(",")
    assert "CaCO3_wt%" in header and "depth_mm" in header and "CaCO3" not in header
    xrfhub.query(store, out, kind="samples", units="row")
    header, units = out.read_text().splitlines()[:2]
    assert "CaCO3" in header.split(",")
    assert units.split(",")[header.split(",").index("CaCO3")] == "wt%"
    with pytest.raises(InputError, match="only in CSV"):
        xrfhub.query(store, tmp_path / "lab.parquet", kind="samples", units="row")


def test_empty_depth_range_is_refused_with_the_ranges_held(store, tmp_path):
    out = tmp_path / "none.csv"
    with pytest.raises(InputError, match=r"PS75-056-1: 5-195 mm"):
        xrfhub.query(store, out, core="PS75-056-1", depth="5000:6000")
    assert not out.exists()


def test_info_reports_a_half_built_generation(store, tmp_path):
    import shutil

    copy = tmp_path / "hub"
    shutil.copytree(store, copy)
    gen = Store(copy).current()
    left = gen.path.parent / f"g{gen.number + 1:06d}"
    (left / "nexus").mkdir(parents=True)
    (left / "nexus" / "X.nxs").write_bytes(b"\0" * 5000)
    summary = xrfhub.info(copy)
    assert summary["interrupted_writes"] == [{"folder": str(left), "bytes": 5000}]
    from xrfhub.summary import format_info

    assert "half-built generation" in format_info(summary)
    assert json.loads(json.dumps(summary, default=str))  # still JSON-able


def test_plugins_show_what_each_preset_changes():
    from xrfhub_cli.main import cli

    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "tiny: width=128" in result.output


def test_info_shows_a_setting_measured_per_spectrum_as_its_range():
    import numpy as np

    from xrfhub.summary import _setting, _shown

    live = np.linspace(13.34, 13.51, 104)
    assert _shown(_setting(live)) == "13.34-13.51 (104 distinct values)"
    assert _setting(np.array([10.0, 30.0, 10.0])) == [10.0, 30.0]  # a few values stay a list
    assert _setting(np.array([np.nan, 6.0, 13.5])) == [6.0, 13.5, None]  # a spectrum without one
    assert _setting(np.array(["", "Pd-Thick"], dtype=object)) == ["", "Pd-Thick"]
