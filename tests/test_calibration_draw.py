"""`--calibration-cores auto` keeps the training cores' range of lab values (issue 16, item 3).

On a store of a few cores a plain seeded draw could take the only core rich in a property out of
training (the demo store: the one carbonate-rich training core), and every model then
extrapolates. The draw now takes the first seeded draw that leaves the training cores most of
every property's range.
"""
import numpy as np
import pytest

from xrfhub.ml import intervals, training


def _values():
    # one rich core (R) holds the top of the range; the others overlap at the bottom
    return {"R": np.array([60.0, 95.0]), "A": np.array([0.0, 20.0]), "B": np.array([5.0, 30.0]),
            "C": np.array([1.0, 25.0]), "D": np.array([2.0, 18.0])}


def test_a_plain_draw_can_take_the_only_rich_core_and_the_range_draw_never_does():
    v = _values()
    pool = sorted(v)
    plain = {s: intervals.choose_cores(pool, seed=s) for s in range(40)}
    assert any("R" in cores for cores in plain.values())  # the failure the rule exists for
    for s in range(40):
        kept = intervals.choose_cores(pool, seed=s, values=v)
        assert "R" not in kept and len(kept) == len(plain[s])
        assert intervals.range_kept(v, pool, kept) >= intervals.KEEP_RANGE
        if "R" not in plain[s] and intervals.range_kept(v, pool, plain[s]) >= intervals.KEEP_RANGE:
            assert kept == plain[s]  # a draw that keeps the range is the plain draw
    assert intervals.choose_cores(pool, seed=3, values=v) == intervals.choose_cores(pool, seed=3, values=v)


def test_range_kept_is_per_property_and_ignores_missing_values():
    v = {"A": np.array([[0.0, np.nan], [10.0, 1.0]]), "B": np.array([[5.0, 9.0]]),
         "C": np.array([[2.0, 1.0]])}
    pool = sorted(v)
    assert intervals.range_kept(v, pool, ["C"]) == pytest.approx(1.0)
    # without B the second property spans 1..1 of 1..9: nothing of its range is left
    assert intervals.range_kept(v, pool, ["B"]) == pytest.approx(0.0)
    # a property without spread does not constrain
    assert intervals.range_kept({"A": np.ones(3), "B": np.ones(2), "C": np.ones(1)}, pool, ["A"]) == 1.0


def test_when_no_draw_keeps_the_range_the_best_one_is_taken():
    # every core holds an extreme of one of two properties: no calibration core leaves 90 %
    v = {"A": np.array([[0.0, 5.0]]), "B": np.array([[10.0, 5.0]]), "C": np.array([[5.0, 0.0]]),
         "D": np.array([[5.0, 10.0]]), "E": np.array([[5.0, 5.0]])}
    assert intervals.choose_cores(sorted(v), seed=0, values=v) == ["E"]


def test_auto_calibration_of_a_training_run_keeps_the_rich_core(tmp_path):
    """Through ``train``: on a 6-core store the drawn calibration core is never the core the
    training range needs (checked for every seed whose plain draw would take it)."""
    import xrfhub
    from xrfhub.synth import generate_corpus

    generate_corpus(tmp_path / "c", size="tiny", seed=0)
    hub = tmp_path / "hub"
    xrfhub.ingest([tmp_path / "c" / "scans", *sorted((tmp_path / "c" / "lab").iterdir())], hub)
    values = intervals.core_values(hub, "CaCO3")
    assert set(values) == set(intervals.labelled_cores(hub, "CaCO3"))
    both = intervals.core_values(hub)
    assert all(v.ndim == 2 and v.shape[1] >= 2 for v in both.values())  # CaCO3 and TOC at pre-training
    pool = sorted(values)
    for seed in range(5):
        cal = training._calibration_cores(hub, None, ["auto"], (), (), target="CaCO3", seed=seed, stage="train")
        assert intervals.range_kept(values, pool, cal) == pytest.approx(
            max(intervals.range_kept(values, pool, [c]) for c in pool)) or \
            intervals.range_kept(values, pool, cal) >= intervals.KEEP_RANGE
