"""``xrfhub evaluate``: the MAX paper's evaluation, with its protocol flaws fixed (DESIGN section 6).

``evaluate(store, holdout_cores, out)`` trains every run of the protocol (pre-training variants,
data-amount curves for MAX, the same ViT from scratch and the baseline, zero-/few-shot on the
held-out cores, the mask-ratio and transform sweep), resuming where an earlier call stopped, and
writes CSV tables, PNG figures and ``summary.md`` into ``out``.
"""
from __future__ import annotations

import json
from pathlib import Path

from .protocol import ALL, EvalConfig, make_splits

__all__ = ["ALL", "EvalConfig", "evaluate", "make_splits"]

SETTINGS = "evaluation.json"


def evaluate(store, holdout_cores, out, *, config: EvalConfig | None = None, quick: bool = False,
             sets: dict[str, str] | None = None, reference=None, restart: bool = False,
             progress: bool = True) -> Path:
    """Run (or resume) the evaluation; returns the path of the Markdown summary.

    ``reference`` is a folder with the paper's CSV tables (set beside our numbers when given).
    A resumed evaluation must use the same settings: finished runs are reused as they are.
    """
    from ..errors import ConfigError
    from .report import write_report
    from .run import Evaluation, clear

    config = config or (EvalConfig.quick() if quick else EvalConfig())
    if sets:
        config = config.replace(**sets)
    out = Path(out)
    if restart:
        clear(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"store": str(store), "holdout_cores": list(holdout_cores), "config": config.to_dict()}
    saved = out / SETTINGS
    if saved.is_file() and not restart:
        before = json.loads(saved.read_text())
        if before != json.loads(json.dumps(settings)):
            raise ConfigError(f"{out} holds an evaluation with other settings ({saved}); give the same settings "
                              "to resume it, another --out, or --restart to start over")
    evaluation = Evaluation(store, holdout_cores, out, config, progress=progress)  # checks the request first
    saved.write_text(json.dumps(settings, indent=1))
    results = evaluation.run()
    return write_report(results, out, reference=reference, holdout=tuple(holdout_cores), config=config, store=store)
