"""Training, prediction and saliency through model plugins: what ``xrfhub train/predict/...`` call.

The library side of the CLI: it resolves the plugin, assembles its configuration (defaults <-
the ``--init`` run's config <- a preset or YAML file <- ``--set``), enforces the protocol rules
that must not depend on a plugin (a fine-tune keeps the held-out cores of its pre-training),
and writes predictions into the store. Torch is imported by plugins only.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import predictions as pred_store
from . import ddp, registry
from ..errors import ConfigError, StoreError, XrfhubError

RUN_FILE = "run.json"


def _read_run(run_dir) -> dict:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a training run folder (no {RUN_FILE}); train one with `xrfhub train`")
    return json.loads(path.read_text())


DIFFRACTION_TARGETS = {"phase", "phases"}  # their plugins hold out series and check them themselves
_RUN_MARKERS = (RUN_FILE, "checkpoint.safetensors", "model.safetensors", "best.safetensors", "model.npz",
                "metrics.jsonl", "config.json")


def known_cores(store) -> list[str]:
    """Cores the store holds spectra or lab samples of."""
    from .. import api

    found = set()
    for kind in ("spectra", "samples"):
        try:
            found |= set(np.unique(api.open(store, kind, index=False)["core"].values.astype(str)).tolist())
        except (KeyError, StoreError):
            continue
    return sorted(found)


def check_cores(store, names, option: str = "--holdout-cores") -> None:
    """Refuse core names the store lacks, listing its cores and the nearest spellings."""
    import difflib

    names = list(names or ())
    if not names:
        return
    known = known_cores(store)
    missing = [n for n in names if n not in known]
    if not missing:
        return
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
        hints.append(f"{name} (did you mean {' or '.join(close)}?)" if close else name)
    shown = ", ".join(known[:20]) + (f" ... ({len(known)} in all)" if len(known) > 20 else "")
    raise ConfigError(f"{option}: {'; '.join(hints)} not in the store {store}; its cores: {shown or 'none'}")


def claim_run_folder(out, *, resume: bool, overwrite: bool) -> bool:
    """Make sure ``out`` may be written; returns whether it existed before (so a refused run
    that created it can remove it again).

    An existing, non-empty folder is refused unless ``resume`` (continue it) or ``overwrite``
    (replace it: only a training run folder is ever deleted, never an unrelated one).
    """
    import shutil

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: a file, not a run folder")
    existed = out.is_dir()
    if not existed or not any(out.iterdir()) or resume:
        return existed
    if not overwrite:
        raise ConfigError(f"--out {out} already exists and is not empty; pass --resume to continue that run, "
                          "--overwrite to replace it, or choose another folder")
    if not any((out / m).exists() for m in _RUN_MARKERS):
        raise ConfigError(f"--out {out}: --overwrite replaces training run folders only, and this one holds no "
                          f"run ({', '.join(_RUN_MARKERS[:2])} ...); choose another folder")
    shutil.rmtree(out)
    return False


AUTO = "auto"
#: ``--holdout-cores auto`` tests on this share of the labelled cores (at least one).
HOLDOUT_FRACTION = 0.2


def draw_holdout_cores(store, seed: int) -> tuple[str, ...]:
    """A seeded draw of whole test cores (``--holdout-cores auto``) that leaves the training cores
    the range of every lab property (:func:`~xrfhub.ml.intervals.choose_cores`).

    Why the range: a calibration model is trusted between the lab values it learnt from; a test
    core beyond them measures extrapolation (issue 16: the demo store's only carbonate ooze held
    out gave every model a negative R2). The draw reads lab values only, never a model's numbers,
    and it uses every property, so that one seed draws the same cores for every plugin and stage.
    """
    from . import intervals

    try:
        pool = intervals.labelled_cores(store)
    except (KeyError, StoreError):
        pool = []
    if len(pool) < 3:
        raise ConfigError(f"--holdout-cores {AUTO} needs at least 3 cores with lab values (2 to train on, 1 to "
                          f"test); the store {store} has {len(pool)}: {', '.join(pool) or 'none'}; name the cores")
    return tuple(intervals.choose_cores(pool, seed=seed, fraction=HOLDOUT_FRACTION,
                                        values=intervals.core_values(store), stream=7))


def _calibration_cores(store, plugin, asked, inherited, holdout, *, target, seed, stage) -> tuple[str, ...]:
    """The calibration cores of a run: inherited from --init, named, or drawn (``auto``)."""
    from . import intervals

    if asked is None:
        return tuple(inherited or ())
    if list(asked) == ["auto"]:
        if inherited:
            return tuple(inherited)
        pool = [c for c in intervals.labelled_cores(store, target) if c not in set(holdout)]
        # the draw keeps the training cores' range of the lab values (of every property at pre-training)
        return tuple(intervals.choose_cores(pool, seed=seed, values=intervals.core_values(store, target)))
    asked = tuple(dict.fromkeys(asked))
    check_cores(store, asked, "--calibration-cores")
    both = sorted(set(asked) & set(holdout))
    if both:
        raise ConfigError(f"--calibration-cores {','.join(both)} are also held out: a core calibrates or tests, "
                          "never both")
    if inherited and set(asked) != set(inherited):
        raise ConfigError(f"--calibration-cores {','.join(asked)} differ from the ones the --init run kept out "
                          f"({','.join(inherited)}): its pre-training saw the others")
    return asked


def train(name: str, store, *, stage: str, out, plugin_from: str | None = None, config: str | None = None,
          sets: dict[str, str] | None = None, epochs: int | None = None, holdout_cores=None,
          target: str | None = None, init=None, progress: bool = True, resume: bool = False,
          keep_flagged: bool = False, overwrite: bool = False, calibration_cores=None,
          interval_method: str | None = None):
    """Train plugin ``name`` on ``store``; returns the plugin's :class:`~xrfhub.ml.registry.RunSummary`.

    Spectra that QC flagged bad or suspect are left out of the plugin's loaders unless
    ``keep_flagged``; ``run.json`` records the policy and what it left out (``qc``).
    ``calibration_cores`` (names, or ``["auto"]`` for a seeded quarter of the labelled cores) are
    kept out of training like held-out cores; a regression run then scores them and stores the
    conformal calibration that ``predict(interval=...)`` uses (see :mod:`xrfhub.ml.intervals`);
    ``interval_method`` picks how: ``split-conformal`` (default, the original), ``split-conformal-cores``,
    or ``cross-conformal-cores`` (no calibration cores: out-of-fold scores of every training core,
    :mod:`xrfhub.ml.crossconformal`).
    Everything is checked before ``out`` is created; a refused run leaves no folder behind.

    Under ``torchrun`` (WORLD_SIZE > 1) the ranks join one process group and train one model
    with DDP, if the plugin names a process-group backend (``distributed = torchddp``, see
    :mod:`xrfhub.ml.ddp`); rank 0 alone claims and writes ``out``. This module never imports torch.
    """
    plugin = registry.load(name, plugin_from)
    group = _process_group(name, plugin)
    started = group.start() if group is not None else False  # join the process group (gloo on CPU)
    try:
        return _train(name, plugin, group, store, stage=stage, out=out, plugin_from=plugin_from, config=config,
                      sets=sets, epochs=epochs, holdout_cores=holdout_cores, target=target, init=init,
                      progress=progress, resume=resume, keep_flagged=keep_flagged, overwrite=overwrite,
                      calibration_cores=calibration_cores, interval_method=interval_method)
    finally:
        if started:
            group.stop()


def _process_group(name: str, plugin):
    """The plugin's process-group backend when torchrun launched several ranks, else None; a
    plugin without one is refused under torchrun (on every rank, before any joins)."""
    if not ddp.launched():
        return None
    group = getattr(plugin, "distributed", None)
    if not all(callable(getattr(group, f, None)) for f in ("start", "stop", "barrier", "describe")):
        raise ConfigError(f"plugin {name!r} does not train on several processes (torchrun started "
                          f"{ddp.rank_world()[1]}); run `xrfhub train` without torchrun")
    return group


def _train(name, plugin, group, store, *, stage, out, plugin_from, config, sets, epochs, holdout_cores, target,
           init, progress, resume, keep_flagged, overwrite, calibration_cores, interval_method):
    import shutil

    if stage not in plugin.stages:
        raise ConfigError(f"plugin {name!r} has no stage {stage!r}; stages: {', '.join(plugin.stages)}")
    if target is not None and "*" not in plugin.targets and target not in plugin.targets:
        raise ConfigError(f"plugin {name!r} cannot predict {target!r}; targets: {', '.join(plugin.targets)}")
    spectra_plugin = not set(plugin.targets) <= DIFFRACTION_TARGETS
    base, inherited, inherited_cal = None, None, ()
    if init is not None and not (Path(init) / RUN_FILE).is_file() and hasattr(plugin, "import_config"):
        base = plugin.import_config(init)  # outside weights (e.g. the published MAX .pth): their shapes
    elif init is not None:
        parent = _read_run(init)
        if parent["plugin"] != name:
            raise ConfigError(f"--init {init} is a {parent['plugin']!r} run, not {name!r}")
        base, inherited = parent["config"], tuple(parent.get("holdout_cores", ()))
        inherited_cal = tuple(parent.get("calibration_cores", ()))
    overrides = dict(sets or {})
    if epochs is not None:
        overrides["epochs"] = str(epochs)
    cfg = registry.build_config(plugin, config, overrides, base=base)
    holdout = tuple(holdout_cores) if holdout_cores is not None else None
    if holdout == (AUTO,):
        if not spectra_plugin:
            raise ConfigError(f"--holdout-cores {AUTO}: plugin {name!r} holds out series itself; name them")
        holdout = inherited if inherited is not None else draw_holdout_cores(store, int(getattr(cfg, "seed", 0)))
    if inherited is not None and holdout is not None and set(holdout) != set(inherited):
        raise ConfigError(f"--holdout-cores {','.join(holdout)} conflicts with the cores held out by --init "
                          f"{init} ({','.join(inherited) or 'none'}): a fine-tune must not see cores its "
                          "pre-training held out, nor drop cores from the test set")
    holdout = inherited if holdout is None else holdout
    holdout = tuple(holdout or ())
    if spectra_plugin:
        check_cores(store, holdout)
    calibration: tuple[str, ...] = ()
    if spectra_plugin:
        calibration = _calibration_cores(store, plugin, calibration_cores, inherited_cal, holdout, target=target,
                                         seed=int(getattr(cfg, "seed", 0)), stage=stage)
    elif calibration_cores:
        raise ConfigError(f"--calibration-cores: plugin {name!r} is a classifier; intervals are for regression")
    cross = False
    if interval_method is not None:
        from .intervals import METHOD_CV, check_method

        check_method(interval_method)
        cross = interval_method == METHOD_CV
        if cross and (calibration_cores or inherited_cal):
            raise ConfigError(f"--interval-method {METHOD_CV} calibrates on every training core, out of fold: "
                              "drop --calibration-cores (and pre-train without them)")
        if cross and group is not None:  # the folds train one after another in this process alone
            raise ConfigError(f"--interval-method {METHOD_CV} trains its folds in one process: run it without torchrun")
        if cross and (not spectra_plugin or not target or stage == "pretrain"):
            raise ConfigError(f"--interval-method {METHOD_CV} is for a regression run with a --target")
        if not cross and not calibration:
            raise ConfigError("--interval-method: the run has no calibration cores; add --calibration-cores")
    # rank 0 alone claims the folder (and may replace it); the others wait until it has
    existed = claim_run_folder(out, resume=resume, overwrite=overwrite) if ddp.is_writer() else True
    if group is not None:
        group.barrier()
    extra = {"resume": True} if resume else {}  # a user's plugin need not know about resuming
    from .loaders import qc_policy
    from ..qc.command import training_record

    from .intervals import METHOD_CV

    policy = "keep" if keep_flagged else "exclude"
    try:
        with qc_policy(policy):
            summary = plugin.train(store, stage=stage, out=out, config=cfg, target=target, init=init,
                                   holdout_cores=holdout + calibration, progress=progress, **extra)
        if not ddp.is_writer():  # the run folder is rank 0's to finish
            return summary
        run = _read_run(out)
        notes = list(getattr(summary, "warnings", []) or [])
        out_of_fold = getattr(summary, "out_of_fold", None)
        from_folds = bool(out_of_fold and target and not calibration and interval_method in (None, METHOD_CV))
        calibrated = from_folds or cross or bool(calibration and target and stage != "pretrain")
        if from_folds:
            # the plugin cross-fitted: every labelled core already has out-of-fold predictions
            from .crossconformal import from_out_of_fold, save_out_of_fold

            cal = from_out_of_fold(out_of_fold, target)
            save_out_of_fold(out, target, out_of_fold, run["metrics"].get("fold_cores"))
            notes += _score_calibration(plugin, store, out, target, holdout, (), run, cal,
                                        {"folds": run["metrics"].get("fold_cores")},
                                        ("training cores, out of fold", out_of_fold))
        elif cross:
            from . import crossconformal

            with qc_policy(policy):
                cal, folds, oof = crossconformal.calibrate(plugin, store, out, stage=stage, config=cfg,
                                                           target=target, init=init, holdout=holdout,
                                                           seed=int(getattr(cfg, "seed", 0)))
            crossconformal.score_cores(run.setdefault("metrics", {}), oof, folds)
            crossconformal.save_out_of_fold(out, target, oof, folds)
            if init is not None:
                notes.append(f"cross-conformal: every fold fine-tuned from --init {init}, whose pre-training saw "
                             "the fold cores' spectra (not their lab values): coverage may be optimistic")
            notes += _score_calibration(plugin, store, out, target, holdout, (), run, cal, {"folds": folds},
                                        ("training cores, out of fold", oof))
        if calibration:
            run["holdout_cores"], run["calibration_cores"] = list(holdout), list(calibration)
            if target and stage != "pretrain":
                notes += _calibrate(plugin, store, out, target, holdout, calibration, run, init, inherited_cal,
                                    interval_method)
    except XrfhubError:
        if not existed and not resume:  # a refusal leaves nothing behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    if spectra_plugin and target and stage != "pretrain":
        from . import domain, fitplot, intervals
        from .metrics import by_core

        values = intervals.core_values(store, target)  # read once for the range and the test cores
        span = domain.training_range(values, holdout + calibration)
        if span is not None:  # what predict counts its extrapolations against
            run["training_range"] = {target: list(span)}
            if holdout:
                run["held_out_range"], far = domain.held_out_reach(values, target, holdout, span)
                notes += far
        if holdout and not calibrated:  # the calibration drew fit.png; without one, the test set alone
            held = fitplot.held_out_pairs(plugin, store, out, target, holdout)
            if held is not None:
                fitplot.write_fit_png(out, target, [("held-out cores", held)])
                run.setdefault("metrics", dict(summary.metrics or {}))  # a plugin may return metrics it did not write
                _add_metric(out, run, "held_out_by_core", by_core(held["y"], held["pred"], held["cores"]))
    if spectra_plugin and not holdout:
        notes.append("no held-out cores: every labelled core was trained, validated or calibrated on, so these "
                     "metrics say nothing about new cores; pass --holdout-cores for a test set")
    run["plugin_source"] = plugin_from
    run["qc"] = training_record(store, policy)
    if group is not None:  # how it was trained: N ranks, each a slice of every global batch
        run["distributed"] = group.describe()
    if notes:
        run["warnings"] = notes
        # a plugin whose run.json holds no metrics keeps the ones it returned, with the warnings beside
        run.setdefault("metrics", dict(summary.metrics or {}))["warnings"] = notes
    (Path(out) / RUN_FILE).write_text(json.dumps(run, indent=1, default=str))
    summary.metrics = run.get("metrics", summary.metrics)
    summary.warnings, summary.holdout_cores = notes, tuple(holdout)
    return summary


def _add_metric(out, run: dict, key: str, value) -> None:
    """Add one entry to a run's metrics, in ``run.json`` (written by the caller) and in the plugin's
    own ``metrics.json`` where it wrote one."""
    run["metrics"][key] = value
    path = Path(out) / "metrics.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        saved[key] = value
        path.write_text(json.dumps(saved, indent=1, default=str))


def _calibrate(plugin, store, out, target, holdout, calibration, run, init, inherited_cal,
               method=None) -> list[str]:
    """Score the calibration cores with the trained run; store the calibration; rescore held-out
    cores without them (the plugin saw both as cores it must not train on)."""
    from . import intervals
    from .loaders import labelled_samples
    from .metrics import regression_metrics

    if not hasattr(plugin, "predictor"):
        raise ConfigError(f"plugin {plugin.name!r} offers no predictor(run_dir); calibrated intervals need one")
    predictor = plugin.predictor(out)
    notes = []
    if init is not None and not inherited_cal:
        notes.append("the calibration cores' spectra (not their lab values) were seen by the pre-training of "
                     f"--init {init}: coverage may be optimistic; choose --calibration-cores at pre-training")
    cx, cy, ccores, _ = labelled_samples(store, target, cores=list(calibration))
    if len(cy) == 0:
        raise ConfigError(f"--calibration-cores {','.join(calibration)}: no labelled {target} pairs to calibrate on")
    cal = intervals.calibrate(predictor, cx, cy, ccores, target, notes, method=method or intervals.METHOD)
    _, ty, _, _ = labelled_samples(store, target, exclude_cores=list(holdout) + list(calibration))
    cpred = np.asarray(predictor(cx), dtype=np.float64)
    extra = regression_metrics(cy, cpred, float(np.mean(ty)))
    shown = ("calibration cores", {"y": cy, "pred": cpred, "cores": ccores})
    return _score_calibration(plugin, store, out, target, holdout, calibration, run, cal, extra, shown)


def _score_calibration(plugin, store, out, target, holdout, calibration, run, cal, extra,
                       shown=None) -> list[str]:
    """Store a run's calibration, record it in the metrics and score the held-out cores with it;
    draw ``fit.png`` with ``shown`` (title, pairs: the cores that calibrated) beside the held-out cores."""
    from . import intervals
    from .fitplot import write_fit_png
    from .loaders import labelled_samples
    from .metrics import by_core, regression_metrics

    notes = list(cal.notes)
    predictor = plugin.predictor(out)
    cal.save(out)
    _, ty, _, _ = labelled_samples(store, target, exclude_cores=list(holdout) + list(calibration))
    train_mean = float(np.mean(ty))
    metrics = run.setdefault("metrics", {})
    metrics["calibration"] = {**extra, "cores": list(cal.cores), "n": cal.n,
                              "method": cal.method, "score": cal.score, "weighting": cal.weighting,
                              "selection": cal.selection,
                              "half_width_90": cal.half_width(0.9) if cal.n >= intervals.min_pairs(0.9) else None}
    metrics.pop("held_out", None)
    metrics.pop("held_out_by_core", None)
    panels = [shown] if shown else []
    if holdout:
        hx, hy, hcores, _ = labelled_samples(store, target, cores=list(holdout))
        if len(hy):
            pred = np.asarray(predictor(hx), dtype=np.float64)
            metrics["held_out"] = regression_metrics(hy, pred, train_mean)
            held = {"y": hy, "pred": pred, "cores": hcores}
            if cal.n >= intervals.min_pairs(0.9):
                lower, upper = cal.interval(pred, 0.9)
                metrics["held_out"]["interval_90"] = intervals.coverage(hy, lower, upper)
                notes += intervals.exchangeability_notes(hy, lower, upper, hcores, 0.9)
                held.update(lower=lower, upper=upper)
            metrics["held_out_by_core"] = by_core(hy, pred, hcores, lower=held.get("lower"), upper=held.get("upper"))
            panels.append(("held-out cores" + (", 0.9 interval" if "lower" in held else ""), held))
    write_fit_png(out, target, panels)
    (Path(out) / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str))
    if len(cal.cores) < intervals.FEW_CORES:
        notes.append(f"only {len(cal.cores)} calibration core(s): the coverage on a new core varies widely with "
                     f"so few (docs/results.md); {intervals.FEW_CORES} or more are better")
    if cal.n < intervals.min_pairs(0.9):
        notes.append(f"only {cal.n} calibration pairs: a 0.9 interval needs {intervals.min_pairs(0.9)}")
    return notes


def predict(store, run_dir, *, progress: bool = True, wait: float = 0.0, interval: float | None = None,
            client=None) -> str:
    """Predict every spectrum of the store with a trained run; returns the new prediction run id
    (ids, comma-separated, when the plugin predicts several groups, e.g. every diffraction grid).

    ``interval`` (a coverage level such as 0.9) adds conformal lower/upper bounds per spectrum,
    from the calibration the run stored at training (see :mod:`xrfhub.ml.intervals`).
    ``client`` (a dask scheduler address, a ``distributed.Client`` or a ``LocalCluster``) computes
    the model on that cluster's workers; this process still writes the one run (:mod:`xrfhub.ml.cluster`).
    """
    if client is None:
        return _predict(store, run_dir, progress=progress, wait=wait, interval=interval)
    from . import cluster

    connected, owned = cluster.connect(client)  # an unreachable scheduler: refused before any work
    try:
        with cluster.predicting_on(connected) as session:
            return _predict(store, run_dir, progress=progress, wait=wait, interval=interval, session=session)
    finally:
        if owned:
            connected.close()


def _predict(store, run_dir, *, progress, wait, interval, session=None) -> str:
    run = _read_run(run_dir)
    plugin = registry.load(run["plugin"], run.get("plugin_source"))
    calibration = None
    if interval is not None:
        from . import intervals

        intervals.check_level(interval)
        calibration = intervals.Calibration.load(run_dir)
        calibration.half_width(interval)  # refuse an unreachable level before predicting anything
    result = plugin.predict(store, run_dir, progress=progress)
    results = result if isinstance(result, (list, tuple)) else [result]  # a plugin may predict several groups
    if session is not None and not session.used:
        import warnings

        warnings.warn(f"plugin {run['plugin']!r} predicted in this process, not on the dask cluster: it does not "
                      "apply its model through xrfhub.ml.loaders.predict_spectra", RuntimeWarning, stacklevel=3)
    from . import domain

    ids = []
    for r in results:
        bounds, provenance = None, r.provenance
        if calibration is not None:
            bounds, described = _bounds(plugin, run_dir, store, r, calibration, interval)
            provenance = {**provenance, "interval": described}
        reach = domain.beyond(r.values, run.get("training_range", {}))
        if reach:
            provenance = {**provenance, "training_range": reach}
        if session is not None and session.used:  # where the values were computed, not what they are
            provenance = {**provenance, "computed_on": {"dask_workers": len(session.workers),
                                                        "blocks": session.blocks}}
        ids.append(pred_store.write_run(store, r.values, group=r.group, plugin=run["plugin"], provenance=provenance,
                                        wait=wait, bounds=bounds))
    return ", ".join(ids)


def _bounds(plugin, run_dir, store, result, calibration, level):
    """Lower/upper per row of one prediction result, and the interval's description."""
    if calibration.target not in result.values:
        raise ConfigError(f"{run_dir}: calibrated for {calibration.target!r} but predicts "
                          f"{', '.join(result.values)}")
    scale = None
    if calibration.score == "normalised":
        from .loaders import predict_spectra

        fn = getattr(plugin.predictor(run_dir), "scale", None)
        if fn is None:
            raise ConfigError(f"{run_dir}: calibrated with a normalised score but its predictor gives no scale")
        tube_kv = _read_run(run_dir).get("config", {}).get("tube_kv")
        _, scale = predict_spectra(store, fn, tube_kv=tube_kv, progress=False)
    values = result.values[calibration.target]
    lower, upper = calibration.interval(values, level, scale)
    lower, upper = (np.where(np.isfinite(values), b, np.nan).astype(np.float32) for b in (lower, upper))
    return {calibration.target: (lower, upper)}, calibration.describe(level)


def saliency(store, run_dir, out, *, cores=None, top: int = 8) -> dict:
    """Per-channel saliency of a run as data (CSV next to ``out``) and a PNG with element lines;
    ``peaks`` are ``(keV, line name or None)``: named only within the detector resolution."""
    from .. import api
    from .saliency import write_saliency

    run = _read_run(run_dir)
    plugin = registry.load(run["plugin"], run.get("plugin_source"))
    if not hasattr(plugin, "saliency"):
        raise ConfigError(f"plugin {run['plugin']!r} does not provide saliency maps")
    values, n = plugin.saliency(store, run_dir, cores=cores)
    energy = api.open(store, "spectra", index=False)["energy"].values
    kv = run.get("config", {}).get("tube_kv")
    result = write_saliency(energy, values, out, top=top, max_kev=float(kv) if kv else None,
                            title=f"saliency of {run['plugin']} ({run.get('target') or run['stage']}), "
                                  f"{n} spectra{f', {float(kv):g} kV' if kv else ''}")
    return result | {"n_spectra": n}
