"""The demo end to end on the tiny corpus: what a new user runs first."""
from __future__ import annotations

import numpy as np

import xrfhub
from xrfhub.demo import run_demo


def test_demo_runs_end_to_end_and_draws_its_pictures(tmp_path):
    lines = []
    result = run_demo(tmp_path, size="tiny", seed=2, echo=lines.append)
    text = "\n".join(map(str, lines))
    assert "6/6 diffraction" in text and "demo finished" in text
    assert [p.name for p in result["pictures"]] == ["spectra.png", "profile.png", "ramp.png"]
    assert all(p.stat().st_size > 10_000 for p in result["pictures"])
    pat = xrfhub.open(result["store"], "diffraction")
    assert pat.sizes == {"pattern": 60, "two_theta": 4023}
    labels = pat["label"].values.astype(str)
    assert list(labels[:32]) == ["low"] * 32 and set(labels[32:]) == {"high"}
    np.testing.assert_array_equal(pat["pressure_step"].values, np.arange(60))
    assert xrfhub.open(result["store"], "spectra").sizes["spectrum"] > 100  # the spectra are still there
