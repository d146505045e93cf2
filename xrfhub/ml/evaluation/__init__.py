"""``xrfhub evaluate``: the MAX paper's evaluation, with its protocol flaws fixed (DESIGN section 6).

``evaluate(store, holdout_cores, out)`` trains every run of the protocol (pre-training variants,
data-amount curves for MAX, the same ViT from scratch and the baseline, zero-/few-shot on the
held-out cores, the mask-ratio and transform sweep), resuming where an earlier call stopped, and
writes CSV tables, PNG figures and ``summary.md`` into ``out``.
"""
from __future__ import annotations

from pathlib import Path

from .protocol import ALL, EvalConfig, make_splits

__all__ = ["ALL", "EvalConfig", "evaluate", "make_splits"]


def evaluate(store, holdout_cores, out, *, config: EvalConfig | None = None, quick: bool = False,
             sets: dict[str, str] | None = None, reference=None, restart: bool = False,
             progress: bool = True, keep_flagged: bool = False) -> Path:
    """Run (or resume) the evaluation; returns the path of the Markdown summary.

    ``holdout_cores`` ``["auto"]`` tests on the cores ``xrfhub train --holdout-cores auto`` draws
    with seed 0 (same for every protocol seed, so runs stay comparable).
    ``reference`` is a folder with the paper's CSV tables (set beside our numbers when given).
    A resumed evaluation must use the same settings: finished runs are reused as they are.
    Spectra QC flagged bad or suspect are left out of every run unless ``keep_flagged``; what
    was left out is written to ``qc.json`` in ``out``.
    """
    from .report import write_report
    from .run import Evaluation, claim_folder

    config = config or (EvalConfig.quick() if quick else EvalConfig())
    if sets:
        config = config.replace(**sets)
    if list(holdout_cores) == ["auto"]:  # the test cores `xrfhub train --holdout-cores auto` draws (seed 0)
        from ..training import draw_holdout_cores

        holdout_cores = draw_holdout_cores(store, 0)
    evaluation = Evaluation(store, holdout_cores, out, config, progress=progress)  # checks the request first
    settings = {"store": str(store), "holdout_cores": list(holdout_cores), "config": config.to_dict()}
    out = claim_folder(out, settings, restart)
    from ..loaders import qc_policy
    from ...qc.command import write_record

    policy = "keep" if keep_flagged else "exclude"
    write_record(out / "qc.json", store, policy)
    with qc_policy(policy):
        results = evaluation.run()
    return write_report(results, out, reference=reference, holdout=tuple(holdout_cores), config=config, store=store)
