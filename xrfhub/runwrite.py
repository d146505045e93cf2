"""The one writer of prediction runs: a generation that is its parent plus one run file and one group.

``predictions.write_run`` (spectra), ``predictions_diffraction.write_run`` (patterns) and
``predictions_elements.write_run`` (element-table points) build
the run (``store.nxrun.RunFile``) and its hub dataset; ``commit_run`` hard-links the parent
generation (core files, index, other runs, every hub chunk), writes the two new things, a manifest
naming the run, and commits. Nothing else is read or written, so the cost is the run's.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from . import __version__, identifiers
from .errors import StoreError
from .store import layout


def new_run_id(plugin: str, targets) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")[:-3]
    name = f"{plugin}-{'-'.join(targets)}-{stamp}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def hub_digest(summary: dict, n_ch: int) -> str:
    """The sha256 of a core's inputs to a run: of its scans' counts digests, in scan order."""
    import hashlib

    parts = [f"{name}:{s['counts_sha256']}" for name, s in sorted(summary.get("scans", {}).items())
             if int(s["channels"]) == n_ch]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def commit_run(store, current, run, make_dataset, total: int, linked=None) -> None:
    """A generation that is the parent plus one run file and one hub group, committed.

    ``linked`` = (group, coordinate names) the run's group shares with the group it predicted
    (``store.rows.link_coordinates``).
    """
    from .store.files import link_tree
    from .store.nxrun import run_entry
    from .store import rows
    from .store.generations import now_iso, write_json_atomic
    from .store.nxrun import write

    from .store import catalog, hub

    manifest = catalog.Catalog(current.path).manifest
    if "index" not in manifest:
        raise StoreError(f"{store.root}: written by an older xrfhub; run `xrfhub rebuild {store.root}` "
                         "once to migrate it, then predict again")
    if run.run_id in manifest.get("runs", {}):
        raise StoreError(f"{store.root}: the store already holds a run {run.run_id!r}; runs are never replaced")
    gen = store.new_generation()
    for part in (layout.NEXUS_DIR, layout.INDEX_DIR, layout.RUNS_DIR, layout.HUB):
        if (current.path / part).exists():
            link_tree(current.path / part, gen.path / part)
    write(gen.path / layout.run_file(run.run_id), run, identifiers.run_uuid(run.run_id))
    group = layout.predictions_group(run.run_id)
    rows.write_group(None, gen.hub_path, group, 0, total, lambda _s, _n=None: make_dataset(), row_dim=_row_dim(run),
                     chunked={}, default_rows=layout.COORD_CHUNK_ROWS, attrs={}, linked=linked)
    hub.finalize(gen.hub_path)  # the run's UUID, consolidated metadata (the cores' UUIDs are the parent's)
    manifest = {**manifest, "generation": gen.name, "parent": current.name, "created": now_iso(),
                "xrfhub_version": __version__, "kinds": hub.groups(gen.hub_path),
                "runs": {**manifest.get("runs", {}), run.run_id: run_entry(run)}}
    write_json_atomic(gen.path / layout.MANIFEST, manifest)
    store.commit(gen)
    store.log({"action": "predict", "run": run.run_id, "plugin": run.program, "generation": gen.name,
               "xrfhub_version": __version__, "date": manifest["created"]})


def _row_dim(run) -> str:
    return {"diffraction": layout.PATTERN, "elements": layout.POINT}.get(run.parameters.get("kind"), layout.SPECTRUM)
