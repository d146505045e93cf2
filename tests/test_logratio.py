"""The log-ratio calibration plugin: known relationships recovered, held-out cores never seen,
CLI train/predict on spectra stores and on the real ITRAX core with its ICP table."""
import json

import numpy as np
import pandas as pd
import pytest

import xrfhub
from conftest import SHARED, run_cli, write_corpus
from xrfhub.errors import ConfigError

from xrfhub_logratio.features import PeakAreas, replace_zeros, zero_floors  # noqa: E402
from xrfhub_logratio.model import LogRatioModel, folds  # noqa: E402

LINES = ["Si-Ka", "K-Ka", "Ca-Ka", "Ti-Ka", "Fe-Ka"]
ITRAX = SHARED / "fixtures" / "xrf" / "itrax_CD166_19_S1_Results.txt"
ICP = SHARED / "fixtures" / "real" / "itraxBook_CD166_19_(2020)" / "calibration_samples" / "calibration_data.csv"


def _known(rng, cores, per_core=20, a=0.5, b=1.3):
    """Intensities with a per-point geometry factor common to all lines (what log-ratios cancel) and
    a property with ln(y) = a + b ln(I_Ca / I_Fe) exactly (before counting noise)."""
    comp = rng.lognormal(mean=[5.0, 4.0, 6.0, 3.5, 5.5], sigma=0.4, size=(len(cores) * per_core, 5))
    geometry = rng.lognormal(0.0, 0.5, size=(len(comp), 1)) * np.repeat(rng.lognormal(0, 0.7, len(cores)), per_core)[:, None]
    y = np.exp(a + b * np.log(comp[:, 2] / comp[:, 4]))
    measured = comp * geometry * rng.lognormal(0, 0.01, size=comp.shape)  # 1% counting noise
    return measured, y, np.repeat(np.asarray(cores), per_core)


def test_alr_form_recovers_the_known_log_ratio_and_its_slope():
    rng = np.random.default_rng(0)
    x, y, groups = _known(rng, ["A", "B", "C", "D", "E"])
    model = LogRatioModel(LINES, form="alr", transform="log", target="CaCO3", max_denominators=5).fit(x, y, groups)
    pair = (model.used[model.numerator], model.used[model.denominator])
    assert set(pair) == {"Ca-Ka", "Fe-Ka"}  # ln(Ca/Fe) and ln(Fe/Ca) are one model with opposite slopes
    slope = model.coef[0] / model.std[0]
    assert slope == pytest.approx(1.3 if pair[0] == "Ca-Ka" else -1.3, abs=0.03)
    assert f"ln({pair[0]}/{pair[1]})" in model.equation() and model.equation().startswith("ln(y) = 0.5")
    tx, ty, _ = _known(np.random.default_rng(1), ["F", "G"])  # new cores, new geometry
    pred = model.predict(tx)
    assert np.max(np.abs(np.log(pred / ty))) < 0.05


def test_mlc_form_predicts_new_cores_and_puts_the_weight_on_the_true_ratio():
    rng = np.random.default_rng(2)
    x, y, groups = _known(rng, ["A", "B", "C", "D", "E", "F"])
    model = LogRatioModel(LINES, form="mlc", transform="log", target="CaCO3", denominators=("Fe",)).fit(x, y, groups)
    slopes = dict(zip([u for u in model.used if u != "Fe-Ka"], model.coef / model.std))
    assert slopes["Ca-Ka"] == pytest.approx(1.3, abs=0.05)
    assert max(abs(slopes[k]) for k in ("Si-Ka", "K-Ka", "Ti-Ka")) < 0.05
    tx, ty, _ = _known(np.random.default_rng(3), ["G", "H"])
    from sklearn.metrics import r2_score

    assert r2_score(ty, model.predict(tx)) > 0.99
    # unregularised ALR regressions are the same model whatever the denominator: predictions agree
    other = LogRatioModel(LINES, form="mlc", transform="log", target="CaCO3", denominators=("Si",), alphas=(0.0,)).fit(x, y, groups)
    same = LogRatioModel(LINES, form="mlc", transform="log", target="CaCO3", denominators=("Fe",), alphas=(0.0,)).fit(x, y, groups)
    np.testing.assert_allclose(other.predict(tx), same.predict(tx), rtol=1e-6)


def test_a_target_element_is_its_own_numerator_and_never_the_denominator():
    rng = np.random.default_rng(4)
    x, y, groups = _known(rng, ["A", "B", "C", "D"])
    model = LogRatioModel(LINES, form="alr", target="Ca").fit(x, y, groups)
    assert model.used[model.numerator] == "Ca-Ka"
    assert all(row["denominator"] != "Ca-Ka" for row in model.info["cv_best"])


def test_folds_never_split_a_core_and_say_when_there_is_one_core():
    groups = np.array(["A"] * 7 + ["B"] * 3 + ["C"] * 5 + ["D"] * 4)
    pairs, how = folds(groups, 3)
    assert "whole cores" in how and len(pairs) == 3
    for train, test in pairs:
        assert not set(groups[train]) & set(groups[test])
    pairs, how = folds(np.array(["A"] * 10), 5)
    assert "one training core" in how and "contiguous" in how
    assert all(np.all(np.diff(test) == 1) for _, test in pairs)


def test_zeros_are_replaced_by_half_the_smallest_positive_value_and_counted():
    a = np.array([[0.0, 4.0], [2.0, np.nan], [6.0, 8.0]])
    floors = zero_floors(a)
    np.testing.assert_array_equal(floors, [1.0, 2.0])
    out, n = replace_zeros(a, floors)
    assert n == 2 and out[0, 0] == 1.0 and out[1, 1] == 2.0


def test_peak_areas_find_a_peak_at_its_xraylib_energy_and_ignore_a_flat_background():
    energy = np.arange(2048) * 0.02
    flat = np.full((1, 2048), 50.0)
    peak = flat + 1000 * np.exp(-0.5 * ((energy - 3.6917) / 0.06) ** 2)[None, :]
    areas = PeakAreas(energy, ("Ca", "Fe"))
    got = areas(np.vstack([flat, peak]))
    assert got[0].tolist() == [0.0, 0.0]  # a flat background has no net peak
    assert got[1, 0] > 0.9 * 1000 * 0.06 * np.sqrt(2 * np.pi) / 0.02 * 0.95 and got[1, 1] == 0.0
    assert areas.lines == ["Ca-Ka", "Fe-Ka"]
    with pytest.raises(ConfigError, match="beyond"):
        PeakAreas(energy[:300], ("Fe",))


def test_bad_settings_are_refused_with_the_key():
    with pytest.raises(ConfigError, match="form"):
        LogRatioModel(LINES, form="pls")
    from xrfhub.ml import registry

    plugin = registry.load("logratio")
    with pytest.raises(ConfigError, match="min_detected"):
        registry.build_config(plugin, None, {"min_detected": "0"})
    with pytest.raises(ConfigError, match="source"):
        registry.build_config(plugin, None, {"source": "guess"})


# ---------------------------------------------------------------------------- through the store and the CLI

CORES = ("PS75-056-1", "SO264-09-2", "PS97-065-2", "M77-117-1")


@pytest.fixture(scope="module")
def spectra_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("lrstore")
    corpus = write_corpus(root / "corpus", cores=CORES, kv30_core=None)
    xrfhub.ingest([corpus.scans, corpus.lab], root / "hub", progress=False)
    return root, corpus


def test_cli_trains_and_predicts_on_spectra_and_writes_a_prediction_run(spectra_store, tmp_path):
    root, _ = spectra_store
    store = tmp_path / "hub"
    import shutil

    shutil.copytree(root / "hub", store)
    out = tmp_path / "run"
    trained = run_cli("train", "logratio", "--store", store, "--target", "CaCO3", "--holdout-cores", CORES[-1],
                      "--out", out, "--set", "form=alr")
    run = json.loads((out / "run.json").read_text())
    held = run["metrics"]["held_out"]
    # after the metrics, the lines a person reads: the test set's scores and the picture
    assert f"held-out CaCO3: R2 {held['r2']:.3f}, RMSE {held['rmse']:.3g} over 4 pairs" in trained.stdout
    # fitted on the spectra's peak areas, it scores them as any plugin does: the picture of the test set
    assert f"picture: {out / 'fit.png'}" in trained.stdout and (out / "fit.png").stat().st_size > 1000
    m = run["metrics"]
    assert run["plugin"] == "logratio" and run["holdout_cores"] == [CORES[-1]] and m["source"] == "spectra"
    assert "Ca-Ka" in (m["model"]["numerator"], m["model"]["denominator"])  # the generator's CaCO3 is the Ca peak
    assert m["held_out"]["n"] == 4 and m["held_out"]["r2"] > 0.8
    assert not [p for p in out.iterdir() if p.suffix in (".pkl", ".pickle", ".joblib")]
    result = run_cli("predict", "--store", store, "--run", out)
    assert "wrote prediction run logratio-CaCO3" in result.stdout
    pred = xrfhub.open(store, "predictions")
    spectra = xrfhub.open(store, "spectra", index=False)
    values = pred["CaCO3"].values
    assert np.isfinite(values).sum() == int((spectra["tube_kv"].values == 10).sum())
    depth = pred["depth_mm"].values
    truth = 20 + 10 * np.sin(depth / 50)  # write_corpus's CaCO3 at every scanned depth
    ok = np.isfinite(values)
    assert np.corrcoef(values[ok], truth[ok])[0, 1] > 0.9
    runs = xrfhub.predictions.list_runs(store)
    assert runs[-1]["plugin"] == "logratio" and runs[-1]["n_predicted"] == ok.sum()


def test_cross_conformal_intervals_for_a_spectra_run_reach_predict(spectra_store, tmp_path):
    """Item 1 of issue 16 for this plugin: every regression plugin gets calibrated intervals. Each of
    the three training cores is predicted by a calibration fitted without it; predict stores the band."""
    root, _ = spectra_store
    store = tmp_path / "hub"
    import shutil

    shutil.copytree(root / "hub", store)
    out = tmp_path / "run"
    trained = run_cli("train", "logratio", "--store", store, "--target", "CaCO3", "--holdout-cores", CORES[-1],
                      "--out", out, "--set", "form=alr", "--interval-method", "cross-conformal-cores")
    run = json.loads((out / "run.json").read_text())
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["method"] == "cross-conformal-cores" and sorted(cal["cores"]) == sorted(CORES[:-1])
    assert sorted(c for f in run["metrics"]["calibration"]["folds"] for c in f) == sorted(CORES[:-1])
    iv = run["metrics"]["held_out"]["interval_90"]
    assert iv["n"] == 4 and 0 < iv["mean_width"] < 20
    assert "0.9 interval: covers" in trained.stdout and (out / "fit.png").is_file()
    # each training core scored by the fold calibration that never saw it: a training-side figure
    by_core = run["metrics"]["out_of_fold_by_core"]
    assert sorted(by_core) == sorted(CORES[:-1]) and all(by_core[c]["n"] == 4 for c in by_core)
    inside = [r["r2"] for r in by_core.values() if r.get("inside_training_range")]
    assert run["metrics"]["interpolation_r2"] == (pytest.approx(np.mean(inside)) if inside else None)
    assert "training cores out of fold, R2 (bias): " in trained.stdout
    run_cli("predict", "--store", store, "--run", out, "--interval", "0.9")
    pred = xrfhub.open(store, "predictions")
    value, lower, upper = (pred[k].values for k in ("CaCO3", "CaCO3_lower", "CaCO3_upper"))
    ok = np.isfinite(value)
    assert ok.sum() > 0 and np.array_equal(ok, np.isfinite(lower)) and np.array_equal(ok, np.isfinite(upper))
    assert np.all(lower[ok] <= value[ok]) and np.all(value[ok] <= upper[ok]) and np.any(upper[ok] > lower[ok])


def _with_lab_values(corpus, factor_for_core: dict) -> None:
    """Rewrite the PANGAEA table's CaCO3 of some cores (the held-out ones) by a factor."""
    path = corpus.files["pangaea"]
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        cells = line.split("\t")
        core = cells[0].replace("/", "-", 1)
        if len(cells) == 4 and core in factor_for_core and cells[2][:1].isdigit():
            cells[2] = f"{float(cells[2]) * factor_for_core[core]:.2f}"
        out.append("\t".join(cells))
    path.write_text("\n".join(out) + "\n")


def test_denominator_choice_never_uses_the_held_out_cores(tmp_path):
    """Two stores that differ only in the lab values of the held-out core give the same model."""
    models = []
    for i, factor in enumerate((1.0, 0.2)):
        corpus = write_corpus(tmp_path / f"c{i}", cores=CORES, kv30_core=None)
        _with_lab_values(corpus, {CORES[0]: factor})
        xrfhub.ingest([corpus.scans, corpus.lab], tmp_path / f"h{i}", progress=False)
        from xrfhub.ml import training

        summary = training.train("logratio", tmp_path / f"h{i}", stage="train", out=tmp_path / f"r{i}",
                                 target="CaCO3", holdout_cores=[CORES[0]], progress=False)
        models.append((json.loads((tmp_path / f"r{i}" / "model.json").read_text()), summary.metrics))
    (a, ma), (b, mb) = models
    assert a["denominator"] == b["denominator"] and a["cv_best"] == b["cv_best"]
    assert a["arrays_sha256"] == b["arrays_sha256"]
    assert ma["held_out"]["rmse"] != mb["held_out"]["rmse"]  # the held-out values did differ, and were scored


@pytest.mark.slow  # ~30 s; test_evaluate's quick end-to-end run covers the logratio column by default
def test_evaluate_runs_logratio_cells_beside_the_baseline_on_the_protocol_splits(tmp_path):
    from xrfhub.ml.evaluation.protocol import EvalConfig
    from xrfhub.ml.evaluation.run import Evaluation, run_cells
    from xrfhub.synth import generate_corpus

    generate_corpus(tmp_path / "corpus", size="tiny", seed=5)
    xrfhub.ingest([tmp_path / "corpus" / "scans", *sorted((tmp_path / "corpus" / "lab").iterdir())],
                  tmp_path / "hub", progress=False)
    cores = sorted(set(xrfhub.open(tmp_path / "hub", "spectra", index=False)["core"].values.astype(str)))
    config = EvalConfig.quick().replace(seeds="0", amounts="10,all", targets="CaCO3")
    ev = Evaluation(tmp_path / "hub", cores[:1], tmp_path / "ev", config, progress=False)
    assert "logratio" in ev.models()
    cells = [c for c in ev.cells() if c.meta.get("model") == "logratio"]
    assert [c.key for c in cells] == ["amount/logratio/CaCO3/n10/s0", "amount/logratio/CaCO3/nall/s0"]
    results = run_cells(cells, tmp_path / "ev", progress=False)
    pairs = ev.pairs["CaCO3"]
    for r in results:
        assert np.isin(pairs.cores[r["test_index"]], cores[:1]).all()  # scored on the held-out core only
        assert r["test"]["n"] == len(r["y"]) > 0 and np.isfinite(r["test"]["rmse"])
        model = json.loads((tmp_path / "ev" / "cells" / r["cell"] / "model.json").read_text())
        assert "folds" in model["cv"] or "one training core" in model["cv"]
    off = EvalConfig.quick().replace(logratio="false")
    assert "logratio" not in Evaluation(tmp_path / "hub", cores[:1], tmp_path / "ev2", off, progress=False).models()


# ---------------------------------------------------------------------------- the real ITRAX core


def _icp_table(path) -> pd.DataFrame:
    """calibration_data.csv as a plain lab table: sample rows only (the BLANK / MESS-4 QC rows have no
    depth), core id from the folder's core CD166_19, depths in mm as the book uses them."""
    icp = pd.read_csv(ICP, encoding="utf-8-sig")
    icp = icp[pd.to_numeric(icp["top"], errors="coerce").notna()]
    table = pd.DataFrame({"core": "CD166_19", "top_mm": icp["top"].astype(float), "bottom_mm": icp["bot"].astype(float)})
    for element in ("Ca", "Fe", "Ti", "K", "Sr"):
        table[element] = icp[element].astype(float)
    table.to_csv(path, index=False)
    return table


def test_real_itrax_core_calibrates_icp_values_through_the_cli(tmp_path):
    if not ITRAX.is_file() or not ICP.is_file():
        pytest.skip(f"real ITRAX fixtures not found under {SHARED / 'fixtures'}")
    table = _icp_table(tmp_path / "icp.csv")
    store = tmp_path / "hub"
    xrfhub.ingest([ITRAX], store)
    # the ICP file states no unit: this test assumes mg/kg (ppm), said here rather than stored as a guess
    xrfhub.ingest([tmp_path / "icp.csv"], store, format="lab-csv", units="ppm")
    out = tmp_path / "ca"
    run_cli("train", "logratio", "--store", store, "--target", "Ca", "--out", out, "--set", "form=alr")
    m = json.loads((out / "metrics.json").read_text())
    paired = int((table["top_mm"] < 1314).sum())  # the S1 table reaches 1314 mm
    assert m["source"] == "elements" and m["features"]["n_paired"] == paired
    assert m["model"]["numerator"] == "Ca-Ka" and "one training core" in m["model"]["cv"]
    assert m["training"]["r2"] > 0.5
    run_cli("predict", "--store", store, "--run", out)
    pred = xrfhub.open(store, "predictions")
    el = xrfhub.open(store, "elements", index=False)
    assert pred.sizes["point"] == el.sizes["point"]
    values = pred["Ca"].values
    assert np.array_equal(np.isfinite(values), el["valid"].values.astype(bool))  # invalid points stay empty
    lo, hi = table["Ca"].min() / 1e4, table["Ca"].max() / 1e4  # stored in wt%: mg/kg / 10^4
    assert lo / 3 < np.nanmedian(values) < hi * 3
    # element-table areas are not in a spectrum: no predictor of spectra, and a message saying what to do
    from xrfhub_logratio.plugin import plugin

    with pytest.raises(ConfigError, match="fitted on the store's element tables.*--set source=spectra"):
        plugin.predictor(out)
    # the MLC form on every line also trains on this core
    from xrfhub.ml import training

    fe = training.train("logratio", store, stage="train", out=tmp_path / "fe", target="Fe", progress=False)
    assert fe.metrics["model"]["form"] == "mlc" and fe.metrics["model"]["denominator"] != "Fe-Ka"


# ---------------------------------------------------------------------------- drift across a head change


def _rescan(corpus, core: str, run: int, sections, ca_gain: float, seed: int) -> None:
    """(Re)write ``core``'s 10 kV spectra as measured with detector head 2, whose Ca response is
    ``ca_gain`` times head 1's (the same sediment: CaCO3 from write_corpus's depth law)."""
    import shutil

    from conftest import spe_stem, spe_text, synthetic_counts

    rng = np.random.default_rng(seed)
    folder = corpus.scans / core / f"Run {run} at  10kV"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for section in sections:
        for i, pos in enumerate(np.arange(5.0, 100.0, 10.0)):
            caco3 = 20 + 10 * np.sin((int(section) * 10 + pos) / 50)
            text = spe_text(core, section, pos, run=run, minute=i + 20 * run,
                            counts=synthetic_counts(rng, caco3 * ca_gain)).replace("head 1", "head 2")
            (folder / f"{spe_stem(core, section, pos, run=run)}.spe").write_text(text)


def test_drift_correction_is_fitted_on_replicate_scans_and_fixes_a_head_change(tmp_path):
    """Core A scanned with head 1 and again (one section) with head 2; core C only with head 2,
    held out. The Ca factor of head 2 is measured on A's replicate and undoes C's bias."""
    from xrfhub.ml import training
    from xrfhub_logratio import drift

    a, b, c = "PS75-056-1", "SO264-09-2", "PS97-065-2"
    corpus = write_corpus(tmp_path / "corpus", cores=(a, b, c), kv30_core=None)
    _rescan(corpus, c, 1, ("0000", "0010"), 1.5, seed=7)
    _rescan(corpus, a, 3, ("0000",), 1.5, seed=8)
    store = tmp_path / "hub"
    xrfhub.ingest([corpus.scans, corpus.lab], store, progress=False)
    plain = training.train("logratio", store, stage="train", out=tmp_path / "plain", target="CaCO3",
                           holdout_cores=[c], sets={"form": "alr", "denominators": "Fe"}, progress=False)
    fixed = training.train("logratio", store, stage="train", out=tmp_path / "drift", target="CaCO3",
                           holdout_cores=[c], sets={"form": "alr", "denominators": "Fe", "drift": "true"},
                           progress=False)
    correction = drift.load(tmp_path / "drift")
    assert "detector" in correction["state_columns"] and "head 1" in correction["reference"]
    (state, logs), = correction["log_factors"].items()
    assert "head 2" in state and correction["pairs_per_state"][state] == 10  # A's rescanned section only
    factor = dict(zip(correction["lines"], np.exp(logs)))
    assert factor["Ca-Ka"] == pytest.approx(1.5, rel=0.05) and factor["Fe-Ka"] == pytest.approx(1.0, abs=0.05)
    run = json.loads((tmp_path / "drift" / "run.json").read_text())
    assert run["config"]["drift"] is True and run["metrics"]["features"]["drift"]["reference"] == correction["reference"]
    assert fixed.metrics["held_out"]["rmse"] < 0.5 * plain.metrics["held_out"]["rmse"]
    # applied at load time for prediction too, and recorded with the predictions
    training.predict(store, tmp_path / "drift", progress=False)
    pred = xrfhub.open(store, "predictions")
    held = (pred["core"].values.astype(str) == c) & np.isfinite(pred["CaCO3"].values)
    truth = 20 + 10 * np.sin(pred["depth_mm"].values[held] / 50)
    assert np.sqrt(np.mean((pred["CaCO3"].values[held] - truth) ** 2)) < 2.0
    assert json.loads(pred.attrs["provenance"])["drift"]["corrected_states"] == [state]
    # the correction needs each spectrum's instrument state: no predictor of bare spectra
    from xrfhub_logratio.plugin import plugin

    with pytest.raises(ConfigError, match="drift-corrected intensities"):
        plugin.predictor(tmp_path / "drift")
    assert training.train("logratio", store, stage="train", out=tmp_path / "plain-again", target="CaCO3",
                          holdout_cores=[c], sets={"form": "alr", "denominators": "Fe"}, progress=False)
    assert (tmp_path / "plain-again" / "fit.png").is_file()  # while a plain spectra run draws its test set


def test_auto_transform_picks_the_part_to_rest_log_ratio_for_a_percentage_by_cross_validation():
    """A wt% component whose logit (its ALR against the rest of the sample) is linear in ln(Ca/Fe):
    auto tries logit and log on the training folds and keeps logit; values above 100 only allow log."""
    rng = np.random.default_rng(5)
    x, _, groups = _known(rng, ["A", "B", "C", "D", "E"])
    z = -0.5 + 1.2 * np.log(x[:, 2] / x[:, 4])
    y = 100 / (1 + np.exp(-z))
    model = LogRatioModel(LINES, form="alr", target="CaCO3").fit(x, y, groups)
    assert model.transform == "logit" and model.info["transform_asked"] == "auto"
    assert {row["transform"] for row in model.info["cv_best"]} <= {"logit", "log"}
    big = LogRatioModel(LINES, form="alr", target="Ca").fit(x, y * 10, groups)
    assert big.transform == "log"


def test_the_evaluation_summary_sets_logratio_beside_max_and_the_baseline():
    from xrfhub.ml.evaluation.summary import claims, side_by_side

    rows = [dict(target="CaCO3", model=m, amount=a, n_train=n, r2_mean=r2, r2_ci_low=r2 - 0.05, r2_ci_high=r2 + 0.05,
                 rmse_mean=1.0, val_r2_mean=0.9)
            for m, r2 in (("max", 0.90), ("scratch", 0.8), ("baseline", 0.95), ("logratio", 0.97))
            for a, n in (("10", 10), ("all", 40))]
    amount = pd.DataFrame(rows)
    table = "\n".join(side_by_side(amount))
    assert "| target | max | scratch | baseline | logratio |" in table and "R2 0.970 [0.920, 1.020]" in table
    sweep = pd.DataFrame(dict(mask_ratio=[0.5], transform=["instance"], r2_mean=[0.5], r2_ci_low=[0.4],
                              r2_ci_high=[0.6]))
    found = {c[0]: c[2] for c in claims(amount, pd.DataFrame(columns=["target", "amount"]), sweep)}
    assert found["CaCO3: MAX beats log-ratio calibration (MLC, Weltje et al. 2015) with all pairs"] == "does not hold"
