"""``fit.png``: predicted against measured, core by core, for every calibrated regression run."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import mean_squared_error, r2_score

from xrfhub.ml.fitplot import FILE, fit_figure, write_fit_png


def _pairs(seed, cores, n=15, bias=0.0):
    rng = np.random.default_rng(seed)
    c = np.repeat(cores, n)
    y = rng.uniform(0, 60, len(c))
    return {"y": y, "pred": y + bias + rng.normal(0, 3, len(c)), "cores": c}


def test_each_panel_shows_every_pair_by_core_with_its_scores():
    oof = _pairs(0, ["A", "B", "C"])
    held = _pairs(1, ["T"], bias=4.0)
    held.update(lower=held["pred"] - 5, upper=held["pred"] + 5)
    fig = fit_figure("CaCO3", [("training cores, out of fold", oof), ("held-out cores", held)])
    left, right = fig.axes
    # one scatter per core, every pair drawn once
    points = [c for c in left.collections if c.__class__.__name__ == "PathCollection"]
    assert [len(c.get_offsets()) for c in points] == [15, 15, 15]
    assert {t.get_text() for t in left.get_legend().get_texts()} >= {"A (15)", "B (15)", "C (15)", "1:1"}
    r2 = r2_score(held["y"], held["pred"])
    rmse = np.sqrt(mean_squared_error(held["y"], held["pred"]))
    assert f"R2 {r2:.3f}, RMSE {rmse:.2f}" in right.get_title()
    assert "out of fold" in left.get_title() and "held-out" in right.get_title()
    # the interval is drawn as bars around every held-out prediction (and nowhere else)
    bars = [c for c in right.collections if c.__class__.__name__ == "LineCollection"]
    assert len(bars) == 1 and len(bars[0].get_segments()) == 15
    assert not [c for c in left.collections if c.__class__.__name__ == "LineCollection"]


def test_a_png_is_written_only_when_there_is_something_to_show(tmp_path):
    assert write_fit_png(tmp_path, "CaCO3", [("held-out cores", None)]) is None
    assert not (tmp_path / FILE).exists()
    path = write_fit_png(tmp_path, "TOC", [("calibration cores", _pairs(2, ["A", "B"]))])
    assert path == tmp_path / FILE and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_empty_panel_is_left_out():
    empty = {"y": [], "pred": [], "cores": []}
    fig = fit_figure("CaCO3", [("calibration cores", empty), ("held-out cores", _pairs(3, ["T"]))])
    assert len(fig.axes) == 1 and "held-out" in fig.axes[0].get_title()


def test_an_interval_clipped_to_the_physical_range_is_drawn_from_bound_to_bound():
    held = _pairs(4, ["T"])
    held["pred"] = held["pred"] - 70.0  # a linear model may predict below 0 wt%
    held.update(lower=np.clip(held["pred"] - 5, 0, 100), upper=np.clip(held["pred"] + 5, 0, 100))
    fig = fit_figure("CaCO3", [("held-out cores", held)])
    (bars,) = [c for c in fig.axes[0].collections if c.__class__.__name__ == "LineCollection"]
    tops = np.array([seg[:, 1].max() for seg in bars.get_segments()])
    np.testing.assert_allclose(np.sort(tops), np.sort(held["upper"]))
