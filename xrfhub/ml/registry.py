"""Model plugins: how xrfhub finds them and what they declare.

A plugin is an object with a ``name``, ``description``, ``stages``, ``targets``, a ``config``
dataclass type with ``presets``, and ``train`` / ``predict`` methods (see :class:`Plugin`).
Installed distributions register plugins under the entry-point group ``xrfhub.plugins``;
``--plugin`` can also name an importable module or a ``.py`` file, so a user's own model trains
through the same command as the bundled ones. Nothing here imports torch: plugins do, lazily.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import typing
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigError

GROUP = "xrfhub.plugins"


@runtime_checkable
class Plugin(Protocol):
    """What a model plugin provides; bundled plugins live in ``plugins/``."""

    name: str
    description: str
    stages: tuple[str, ...]
    targets: tuple[str, ...]  # ("*",) accepts any lab property of the store
    config: type  # a dataclass; field defaults are the plugin's defaults
    presets: dict[str, dict]

    def train(self, store, *, stage: str, out, config, target: str | None = None, init=None,
              holdout_cores: tuple[str, ...] = (), progress: bool = True, resume: bool = False) -> "RunSummary": ...

    def predict(self, store, run_dir, *, progress: bool = True) -> "Predictions | list[Predictions]": ...  # several groups: one each

    # Optional, for calibrated intervals (``--calibration-cores``, ``predict --interval``): the trained
    # model of a run as a function of raw counts (spectra x channels) -> values; a ``scale``
    # attribute on it (counts -> positive values) makes the conformal score a normalised one.
    # def predictor(self, run_dir) -> Callable[[np.ndarray], np.ndarray]: ...

    # Optional, for ``xrfhub evaluate``: fit on arrays already split by the protocol.
    # def fit_pairs(self, x, y, x_val, y_val, *, target, config, out, init=None, progress=False,
    #               resume=False) -> FittedRegressor: ...


@dataclass
class RunSummary:
    """What a training run reports back (also written to ``run.json`` in the run folder)."""

    run_dir: Path
    plugin: str
    stage: str
    target: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what the user must know (no test set, no convergence)
    # a plugin that cross-fits (one model per fold of whole cores) reports each labelled pair's
    # prediction by the fold model that never trained on its core: {"y", "pred", "cores"}; training
    # calibrates the run's intervals on them, with no calibration cores held apart
    out_of_fold: dict | None = None
    # the test cores the run kept out (named, inherited from --init or drawn by --holdout-cores auto)
    holdout_cores: tuple[str, ...] = ()

    def headline(self) -> list[str]:
        """What a person reads first after training: the test set's scores and interval coverage,
        the training cores out of fold (worst first, with their bias), and where the picture is."""
        m, lines = self.metrics or {}, []
        held = m.get("held_out") or {}
        if "r2" in held:
            lines.append(f"held-out {self.target}: R2 {held['r2']:.3f}, RMSE {held['rmse']:.3g} over {held['n']} pairs")
            iv = held.get("interval_90")
            if iv and iv.get("n"):
                lines.append(f"  0.9 interval: covers {iv['coverage']:.2f} of them, mean width {iv['mean_width']:.3g}")
        held_cores = sorted((r.get("r2", float("nan")), c, r) for c, r in (m.get("held_out_by_core") or {}).items())
        if held_cores:  # a test set's score can hide one core the model gets wrong over its whole length
            text = ", ".join(f"{c} {r2:.2f} ({r['bias']:+.2g}"
                             + (f", covered {r['interval_coverage']:.2f}" if "interval_coverage" in r else "") + ")"
                             for r2, c, r in held_cores)
            lines.append(f"  by core, R2 (bias{', 0.9 coverage' if 'covered' in text else ''}): {text}")
        # a cross-fitted plugin's own folds, or the folds of a cross-conformal calibration
        per_core = m.get("validation_by_core") or m.get("out_of_fold_by_core") or {}
        rows = sorted((r["r2"], c, r) for c, r in per_core.items() if "r2" in r)
        if m.get("interpolation_r2") is not None:  # the training-side figure to compare models on
            lines.append(f"training cores out of fold, mean R2 of those inside their fold model's range: "
                         f"{m['interpolation_r2']:.3f}")
        if rows:
            text = ", ".join(f"{c} {r2:.2f} ({r['bias']:+.2g}){'' if r.get('inside_training_range', True) else '*'}"
                             for r2, c, r in rows)
            lines.append(f"training cores out of fold, R2 (bias): {text}"
                         + ("; * beyond the range its fold model trained on"
                            if any(not r.get("inside_training_range", True) for _, _, r in rows) else ""))
        from .fitplot import FILE

        picture = Path(self.run_dir) / FILE
        if picture.is_file():
            lines.append(f"picture: {picture}")
        return lines


@dataclass
class FittedRegressor:
    """What a plugin's optional ``fit_pairs`` returns: a model fitted on arrays, ready to score.

    ``predict`` maps raw counts (spectra x channels) to the target in its own units;
    ``train_mean`` is the mean target of the training pairs (for the training-mean R2);
    ``best_epoch`` is the epoch chosen on validation, where the model has epochs.
    """

    predict: Any
    train_mean: float
    best_epoch: int | None = None


@dataclass
class Predictions:
    """Per-spectrum (or per-pattern) predictions of one run, ready to write into the store."""

    group: str  # the store group the rows refer to, e.g. "spectra/ch2048"
    values: dict[str, Any]  # target -> array over the group's rows (NaN where not predicted)
    provenance: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- discovery


def installed(*, errors: dict[str, str] | None = None) -> dict[str, Any]:
    """Plugins registered through entry points, by name.

    A plugin that fails to import is left out rather than breaking every other one; its error
    goes into ``errors`` (when given) and is raised when that plugin is asked for by name.
    """
    found = {}
    for ep in entry_points(group=GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin must not break the CLI
            if errors is not None:
                errors[ep.name] = f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
    return found


def _plugins_in(module) -> dict[str, Any]:
    out = {}
    for value in vars(module).values():
        if isinstance(value, Plugin) and not isinstance(value, type):
            out[value.name] = value
    return out


def _import_file(path: Path):
    name = f"xrfhub_user_plugin_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    return module


def load(name: str, where: str | None = None):
    """The plugin called ``name``: from ``where`` (entry-point name, module or .py file) or installed."""
    broken: dict[str, str] = {}
    plugins = installed(errors=broken)
    if where is None or where in plugins or where in broken:
        key = where or name
        if key in broken:
            raise ConfigError(broken[key])
        if key not in plugins:
            raise ConfigError(f"unknown plugin {key!r}; installed: {', '.join(sorted(plugins)) or 'none'}. "
                              "Give --plugin MODULE or FILE.py for your own")
        plugin = plugins[key]
        if plugin.name != name and where is not None:
            raise ConfigError(f"plugin {where!r} provides {plugin.name!r}, not {name!r}")
        return plugin
    if where.endswith(".py") or Path(where).is_file():
        path = Path(where)
        if not path.is_file():
            raise ConfigError(f"{where}: no such plugin file")
        module = _import_file(path)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ConfigError(f"--plugin {where!r}: not an installed plugin, an importable module or a .py file "
                              f"({exc})") from exc
    plugins = _plugins_in(module)
    if name not in plugins:
        raise ConfigError(f"{where} defines no plugin named {name!r}; it defines: "
                          f"{', '.join(sorted(plugins)) or 'none'}")
    return plugins[name]


# ---------------------------------------------------------------------------- configuration


def config_fields(plugin) -> dict[str, tuple[type, Any]]:
    """Config keys of a plugin with their types and defaults."""
    hints = typing.get_type_hints(plugin.config)
    return {f.name: (hints[f.name], _default(f)) for f in dataclasses.fields(plugin.config)}


def _default(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def parse_value(key: str, text: str, kind):
    """Convert ``--set key=value`` text to the field's type, or say what was expected."""
    origin = typing.get_origin(kind)
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        if text.lower() in ("none", "null", ""):
            return None
        kind = args[0]
        origin = typing.get_origin(kind)
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind in (int, float, str):
            return kind(text)
        if origin in (tuple, list):
            inner = typing.get_args(kind)[0] if typing.get_args(kind) else str
            items = [parse_value(key, t.strip(), inner) for t in text.split(",") if t.strip()]
            return tuple(items) if origin is tuple else items
    except (TypeError, ValueError):
        raise ConfigError(f"config key {key!r}: expected {getattr(kind, '__name__', kind)}, got {text!r}") from None
    return text


def build_config(plugin, preset: str | None = None, overrides: dict[str, str] | None = None,
                 base: dict | None = None):
    """Defaults <- ``base`` (e.g. inherited from --init) <- preset or YAML file <- ``--set`` values."""
    fields = config_fields(plugin)
    values: dict[str, Any] = {}
    if base:
        values.update({k: v for k, v in base.items() if k in fields})
    if preset:
        values.update(_preset_values(plugin, preset, fields))
    for key, text in (overrides or {}).items():
        if key not in fields:
            raise ConfigError(f"unknown config key {key!r} for plugin {plugin.name!r}; keys: {', '.join(fields)}")
        values[key] = parse_value(key, text, fields[key][0]) if isinstance(text, str) else text
    try:
        config = plugin.config(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"plugin {plugin.name!r}: invalid configuration: {exc}") from exc
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config


def _preset_values(plugin, preset: str, fields) -> dict:
    if preset in plugin.presets:
        return dict(plugin.presets[preset])
    path = Path(preset)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise ConfigError(f"{preset}: no such config file")
        import yaml

        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{preset}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{preset}: expected a mapping of config keys to values")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{preset}: unknown config key(s) {', '.join(unknown)}; keys: {', '.join(fields)}")
        return {k: parse_value(k, str(v), fields[k][0]) if isinstance(v, str) else v for k, v in data.items()}
    raise ConfigError(f"unknown preset {preset!r} for plugin {plugin.name!r}; presets: "
                      f"{', '.join(plugin.presets) or 'none'} (or a YAML file)")


def _plain(value):
    """Lists and tuples compare equal (a preset read from YAML or JSON holds lists)."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def describe(plugin) -> str:
    lines = [f"{plugin.name}: {plugin.description}",
             f"  stages: {', '.join(plugin.stages)}",
             f"  targets: {', '.join(plugin.targets)}",
             f"  presets: {', '.join(plugin.presets) or '-'}"]
    fields = config_fields(plugin)
    for name, preset in plugin.presets.items():
        values = preset if isinstance(preset, dict) else dataclasses.asdict(preset)
        changed = {k: v for k, v in values.items() if k in fields and _plain(v) != _plain(fields[k][1])}
        lines.append(f"    {name}: " + (", ".join(f"{k}={v!r}" for k, v in changed.items()) or "the defaults"))
    lines.append("  config (defaults):")
    for key, (kind, default) in fields.items():
        lines.append(f"    {key} = {default!r} ({getattr(kind, '__name__', str(kind))})")
    return "\n".join(lines)
