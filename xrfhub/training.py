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

from . import predictions as pred_store
from . import registry
from .errors import ConfigError

RUN_FILE = "run.json"


def _read_run(run_dir) -> dict:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a training run folder (no {RUN_FILE}); train one with `xrfhub train`")
    return json.loads(path.read_text())


def train(name: str, store, *, stage: str, out, plugin_from: str | None = None, config: str | None = None,
          sets: dict[str, str] | None = None, epochs: int | None = None, holdout_cores=None,
          target: str | None = None, init=None, progress: bool = True, resume: bool = False,
          keep_flagged: bool = False):
    """Train plugin ``name`` on ``store``; returns the plugin's :class:`~xrfhub.registry.RunSummary`.

    Spectra that QC flagged bad or suspect are left out of the plugin's loaders unless
    ``keep_flagged``; ``run.json`` records the policy and what it left out (``qc``).
    """
    plugin = registry.load(name, plugin_from)
    if stage not in plugin.stages:
        raise ConfigError(f"plugin {name!r} has no stage {stage!r}; stages: {', '.join(plugin.stages)}")
    if target is not None and "*" not in plugin.targets and target not in plugin.targets:
        raise ConfigError(f"plugin {name!r} cannot predict {target!r}; targets: {', '.join(plugin.targets)}")
    base, inherited = None, None
    if init is not None and not (Path(init) / RUN_FILE).is_file() and hasattr(plugin, "import_config"):
        base = plugin.import_config(init)  # outside weights (e.g. the published MAX .pth): their shapes
    elif init is not None:
        parent = _read_run(init)
        if parent["plugin"] != name:
            raise ConfigError(f"--init {init} is a {parent['plugin']!r} run, not {name!r}")
        base, inherited = parent["config"], tuple(parent.get("holdout_cores", ()))
    holdout = tuple(holdout_cores) if holdout_cores is not None else None
    if inherited is not None and holdout is not None and set(holdout) != set(inherited):
        raise ConfigError(f"--holdout-cores {','.join(holdout)} conflicts with the cores held out by --init "
                          f"{init} ({','.join(inherited) or 'none'}): a fine-tune must not see cores its "
                          "pre-training held out, nor drop cores from the test set")
    holdout = inherited if holdout is None else holdout
    overrides = dict(sets or {})
    if epochs is not None:
        overrides["epochs"] = str(epochs)
    cfg = registry.build_config(plugin, config, overrides, base=base)
    extra = {"resume": True} if resume else {}  # a user's plugin need not know about resuming
    from .loaders import qc_policy
    from .qc.store import training_record

    policy = "keep" if keep_flagged else "exclude"
    with qc_policy(policy):
        summary = plugin.train(store, stage=stage, out=out, config=cfg, target=target, init=init,
                               holdout_cores=holdout or (), progress=progress, **extra)
    run = _read_run(out)
    run["plugin_source"] = plugin_from
    run["qc"] = training_record(store, policy)
    (Path(out) / RUN_FILE).write_text(json.dumps(run, indent=1, default=str))
    return summary


def predict(store, run_dir, *, progress: bool = True, wait: float = 0.0) -> str:
    """Predict every spectrum of the store with a trained run; returns the new prediction run id
    (ids, comma-separated, when the plugin predicts several groups, e.g. every diffraction grid)."""
    run = _read_run(run_dir)
    plugin = registry.load(run["plugin"], run.get("plugin_source"))
    result = plugin.predict(store, run_dir, progress=progress)
    results = result if isinstance(result, (list, tuple)) else [result]  # a plugin may predict several groups
    ids = [pred_store.write_run(store, r.values, group=r.group, plugin=run["plugin"], provenance=r.provenance,
                                wait=wait) for r in results]
    return ", ".join(ids)


def saliency(store, run_dir, out, *, cores=None, top: int = 8) -> dict:
    """Per-channel saliency of a run as data (CSV next to ``out``) and a PNG with element lines;
    ``peaks`` are ``(keV, line name or None)``: named only within the detector resolution."""
    from . import api
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
