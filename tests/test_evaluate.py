"""``xrfhub evaluate``: splits that never leak a core, repeatable numbers, the quick report end to end."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score

import xrfhub
from xrfhub.errors import ConfigError
from xrfhub.ml.evaluation import ALL, EvalConfig, evaluate
from xrfhub.ml.evaluation.protocol import amounts_for, check_no_leak, make_splits
from xrfhub.ml.evaluation.report import bootstrap_mean_r2, r2

from conftest import run_cli


# ---------------------------------------------------------------------------- the protocol's splits


@pytest.mark.parametrize("seed", range(20))
def test_splits_never_put_a_held_out_core_in_training_or_validation(seed):
    rng = np.random.default_rng(seed)
    names = [f"C{i}" for i in range(int(rng.integers(3, 12)))]
    cores = rng.choice(names, size=int(rng.integers(40, 400)))
    holdout = list(rng.choice(names, size=int(rng.integers(1, len(names) - 1)), replace=False))
    config = EvalConfig()
    s = make_splits(cores, holdout, seed, config)
    check_no_leak(cores, s, holdout)  # raises on a leak
    seen = np.concatenate([s.train, s.val])
    assert not set(cores[seen]) & set(holdout)
    assert set(cores[s.test]) <= set(holdout) and len(s.test) == int(np.isin(cores, holdout).sum())
    assert len(seen) + len(s.test) == len(cores) and len(np.unique(seen)) == len(seen)
    # nested data amounts, and the few-shot test part is the same for every run seed
    assert set(s.amount(10)) <= set(s.amount(50)) <= set(s.amount(ALL))
    other = make_splits(cores, holdout, seed + 1, config)
    assert np.array_equal(s.fewshot_test, other.fewshot_test)
    assert not set(s.fewshot(ALL, seed)) & set(s.fewshot_test)
    assert set(s.fewshot_test) | set(s.fewshot_pool) == set(s.test)


def test_the_leak_check_catches_a_leak():
    cores = np.array(["A"] * 10 + ["B"] * 10)
    s = make_splits(cores, ["B"], 0, EvalConfig())
    s.train = np.append(s.train, 15)  # a pair of held-out core B
    with pytest.raises(AssertionError, match="B"):
        check_no_leak(cores, s, ["B"])


def test_splits_depend_on_the_seed_only():
    cores = np.repeat(["A", "B", "C", "D"], 30)
    a, b = make_splits(cores, ["D"], 4, EvalConfig()), make_splits(cores, ["D"], 4, EvalConfig())
    c = make_splits(cores, ["D"], 5, EvalConfig())
    assert np.array_equal(a.train, b.train) and np.array_equal(a.val, b.val)
    assert not np.array_equal(a.train, c.train)


def test_amounts_and_epochs_follow_the_budget():
    assert amounts_for((10, 50, 100, ALL), 60) == [10, 50, ALL]
    assert amounts_for((10, 50), 5) == [ALL]
    config = EvalConfig(finetune_budget=1500, min_epochs=2, max_epochs=20)
    assert [config.epochs_for(n) for n in (10, 100, 500, 2000)] == [20, 15, 3, 2]


def test_settings_take_set_strings_and_refuse_unknown_keys():
    c = EvalConfig().replace(amounts="10,all", seeds="0,1,2,3", finetune_lrs="1e-4", baseline="false",
                             model_sets="width=64,depth=2")
    assert c.amounts == (10, ALL) and c.seeds == (0, 1, 2, 3) and c.finetune_lrs == (1e-4,)
    assert c.baseline is False and c.model_sets == (("width", "64"), ("depth", "2"))
    with pytest.raises(ConfigError, match="unknown evaluation setting"):
        EvalConfig().replace(epochz="3")


def test_bootstrap_interval_brackets_the_r2_and_narrows_with_more_pairs():
    rng = np.random.default_rng(0)
    widths = []
    for n in (30, 600):
        y = rng.normal(size=n)
        pred = y + rng.normal(scale=0.5, size=n)
        low, high = bootstrap_mean_r2(y, [pred], 500, seed=1)
        assert low < r2(y, pred) < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


# ---------------------------------------------------------------------------- on a real store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from xrfhub.synth import generate_corpus

    root = tmp_path_factory.mktemp("evaluate")
    generate_corpus(root / "corpus", size="tiny", seed=5)
    xrfhub.ingest([root / "corpus" / "scans", *sorted((root / "corpus" / "lab").iterdir())], root / "hub")
    cores = xrfhub.open(root / "hub", "spectra", index=False)["core"].values.astype(str)
    return root / "hub", sorted(set(cores))


def test_the_same_seed_gives_the_same_numbers(store, tmp_path):
    from xrfhub.ml.evaluation.run import Evaluation

    hub, cores = store
    config = EvalConfig.quick().replace(seeds="0", amounts="all", fewshot_amounts="10", mask_ratios="0.5",
                                        transforms="instance", sweep_seeds="0", baseline="false")
    runs = []
    for name in ("a", "b"):
        evaluation = Evaluation(hub, cores[:1], tmp_path / name, config, progress=False)
        runs.append({r["cell"]: r for r in evaluation.run()})
    assert runs[0].keys() == runs[1].keys()
    for key, first in runs[0].items():
        if "pred" in first:
            np.testing.assert_array_equal(first["pred"], runs[1][key]["pred"], err_msg=key)
    assert runs[0]["amount/max/CaCO3/nall/s0"]["test"] == runs[1]["amount/max/CaCO3/nall/s0"]["test"]


def test_quick_evaluation_end_to_end_and_resume(store, tmp_path):
    hub, cores = store
    out = tmp_path / "report"
    result = run_cli("evaluate", "--store", hub, "--holdout-cores", cores[0], "--out", out, "--quick")
    assert "report:" in result.stdout
    for name in ("data_amount.csv", "fewshot.csv", "mask_sweep.csv", "data_amount.png", "fewshot.png",
                 "mask_sweep.png", "summary.md"):
        assert (out / name).stat().st_size > 0, name
    amount = pd.read_csv(out / "data_amount.csv")
    assert set(amount["model"]) == {"max", "scratch", "baseline", "logratio", "mean"}
    assert set(amount["amount"].astype(str)) == {"10", "all"}
    assert (amount["runs"] == 2).all() and np.isfinite(amount["r2_mean"]).all()
    assert (amount["r2_ci_low"] <= amount["r2_ci_high"]).all()
    runs = pd.read_csv(out / "data_amount_runs.csv")
    held = set(cores[:1])
    for cell in runs["cell"]:
        result_file = json.loads((out / "cells" / cell / "result.json").read_text())
        assert result_file["test"]["n"] == len(result_file["y"]) > 0
    few = pd.read_csv(out / "fewshot.csv")
    assert "0" in set(few["amount"].astype(str))  # zero-shot beside the few-shot runs
    summary = (out / "summary.md").read_text()
    assert "whether it holds here" in summary and held.pop() in summary
    assert summary.count("| CaCO3") >= 3
    assert "model beside model" in summary and "| logratio |" in summary  # the log-ratio column
    assert "the mean of MAX and log-ratio beats the baseline" in summary
    # the mean is the per-pair mean of the two models' cells on the same split, scored like them
    for seed in (0, 1):
        parts = [json.loads((out / "cells" / "amount" / m / "CaCO3" / "nall" / f"s{seed}" / "result.json").read_text())
                 for m in ("max", "logratio", "mean")]
        np.testing.assert_allclose(parts[2]["pred"], (np.asarray(parts[0]["pred"]) + parts[1]["pred"]) / 2)
        assert parts[2]["test"]["r2"] == pytest.approx(r2_score(parts[2]["y"], parts[2]["pred"]))
        assert parts[2]["val"]["n"] == parts[0]["val"]["n"] > 0

    # an interrupted evaluation: one finished run lost; the next call redoes only it, identically
    victim = out / "cells" / "amount" / "scratch" / "CaCO3" / "n10" / "s1" / "result.json"
    before = json.loads(victim.read_text())
    victim.unlink()
    stamp = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("result.json")}
    run_cli("evaluate", "--store", hub, "--holdout-cores", cores[0], "--out", out, "--quick")
    after = json.loads(victim.read_text())
    assert after["pred"] == before["pred"]
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())  # nothing else was redone


def test_evaluate_refuses_bad_requests_clearly(store, tmp_path):
    hub, cores = store
    bad = run_cli("evaluate", "--store", hub, "--holdout-cores", "NOPE-1", "--out", tmp_path / "r", "--quick",
                  check=False)
    assert bad.returncode != 0 and "NOPE-1 not in the store" in bad.stderr
    bad = run_cli("evaluate", "--store", hub, "--holdout-cores", cores[0], "--out", tmp_path / "r", "--quick",
                  "--set", "targets=Foo", check=False)
    assert bad.returncode != 0 and "Foo" in bad.stderr
    with pytest.raises(ConfigError, match="drop --set folds"):  # cross-fitting is a train option
        evaluate(hub, cores[:1], tmp_path / "f", quick=True, sets={"model_sets": "folds=4"}, progress=False)
    assert not (tmp_path / "f").exists()
    evaluate(hub, cores[:1], tmp_path / "s", quick=True, sets={"seeds": "0", "amounts": "all", "fewshot_amounts": "5",
                                                               "mask_ratios": "0.5", "transforms": "instance",
                                                               "baseline": "false"}, progress=False)
    with pytest.raises(ConfigError, match="other settings"):
        evaluate(hub, cores[:1], tmp_path / "s", quick=True, progress=False)


def test_auto_tests_on_the_cores_train_draws(store, tmp_path):
    from xrfhub.ml.training import draw_holdout_cores

    hub, _ = store
    summary = evaluate(hub, ["auto"], tmp_path / "a", quick=True, progress=False,
                       sets={"seeds": "0", "amounts": "all", "fewshot_amounts": "5", "mask_ratios": "0.5",
                             "transforms": "instance", "baseline": "false"})
    drawn = draw_holdout_cores(hub, 0)
    assert json.loads((tmp_path / "a" / "evaluation.json").read_text())["holdout_cores"] == list(drawn)
    assert drawn[0] in summary.read_text()


def test_interval_cells_are_planned_for_the_models_of_the_curves(store, tmp_path):
    """`--interval 0.9` calibrates every model the evaluation fits: the log-ratio calibration
    without the baseline too, and never a model switched off; the mean of MAX and log-ratio too."""
    from xrfhub.ml.evaluation.run import Evaluation

    hub, cores = store
    for sets, expected in (({"baseline": "false"}, {"max", "scratch", "logratio"}),
                           ({"baseline": "false", "logratio": "false"}, {"max", "scratch"})):
        config = EvalConfig.quick().replace(seeds="0", interval="0.9", **sets)
        evaluation = Evaluation(hub, cores[:1], tmp_path / "-".join(sets), config, progress=False)
        planned = {c.meta["model"] for c in evaluation.cells() if c.meta.get("kind") == "interval"}
        assert expected == set(evaluation.models())
        # and the mean of MAX and log-ratio, only where both are fitted
        assert planned == expected | ({"mean"} if "logratio" in expected else set())


def test_the_mean_of_max_and_logratio_gets_an_interval_calibrated_on_the_same_cores(tmp_path):
    """`--interval` also scores the mean `predict --run A --run B` gives: calibrated on the mean
    of the two models' predictions of the same calibration cores, tested on the same held-out cores."""
    from xrfhub.ml import ensemble, intervals
    from xrfhub.ml.evaluation.run import Evaluation

    from conftest import write_corpus

    cores = ["PS75-056-1", "SO264-09-2", "PS75-057-1", "SO264-10-2", "GeoB1309-1", "M77-49-1"]
    written = write_corpus(tmp_path / "corpus", cores=cores, kv30_core=None)
    hub = tmp_path / "hub"
    xrfhub.ingest([written.scans, written.files["pangaea"]], hub, progress=False)
    sets = {"seeds": "0", "amounts": "all", "fewshot_amounts": "5", "mask_ratios": "0.5", "transforms": "instance",
            "baseline": "false", "interval": "0.8", "interval_method": "split-conformal-cores",
            "calibration_fraction": "0.5"}
    config = EvalConfig.quick().replace(**sets)
    out = tmp_path / "e"
    results = {r["cell"]: r for r in Evaluation(hub, cores[:1], out, config, progress=False).run()}
    mx, lr, mn = (results[f"interval/{m}/CaCO3/s0"] for m in ("max", "logratio", "mean"))
    assert mn["calibration_cores"] == mx["calibration_cores"] == lr["calibration_cores"]
    assert not set(mn["calibration_cores"]) & set(cores[:1])
    np.testing.assert_allclose(mn["pred"], (np.asarray(mx["pred"]) + lr["pred"]) / 2)
    # the interval again, by hand, from the two models' calibration-core predictions
    cal = mx["calibration_pairs"]
    again = ensemble.calibrate_pairs(cal["y"], [np.asarray(mx["calibration_pairs"]["pred"]),
                                                np.asarray(lr["calibration_pairs"]["pred"])],
                                     cal["cores"], "CaCO3", intervals.METHOD_CORES, level=0.8)
    lower, upper = again.interval([np.asarray(mx["pred"]), np.asarray(lr["pred"])], 0.8)
    inside = (np.asarray(mn["y"]) >= lower) & (np.asarray(mn["y"]) <= upper)
    assert mn["interval"]["coverage"] == pytest.approx(inside.mean())
    assert mn["interval"]["score"] == again.calibration.score and mn["interval"]["method"] == "split-conformal-cores"
    assert len(mn["calibration_cores"]) == 2  # so the level was raised leaving one core out
    summary = evaluate(hub, cores[:1], out, quick=True, progress=False, sets=sets).read_text()
    assert "| CaCO3 | mean | 0.8 |" in summary
    table = pd.read_csv(out / "intervals.csv")
    assert set(table["model"]) == {"max", "scratch", "logratio", "mean"}

    # a part finished by an older xrfhub (no calibration pairs): the mean says how to redo it
    part = out / "cells" / "interval" / "max" / "CaCO3" / "s0" / "result.json"
    old = json.loads(part.read_text())
    del old["calibration_pairs"]
    part.write_text(json.dumps(old))
    (out / "cells" / "interval" / "mean" / "CaCO3" / "s0" / "result.json").unlink()
    with pytest.raises(ConfigError, match="--restart"):
        Evaluation(hub, cores[:1], out, config, progress=False).run()
