"""The ``xrfhub`` command line: parses options and calls the library, nothing more."""
from __future__ import annotations

import json
import os
import sys

import click

import xrfhub

from xrfhub.errors import InputError

from .common import friendly, key_values
from .export import export_ as _export_command
from .qc import qc as _qc_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(xrfhub.__version__, prog_name="xrfhub")
def cli():
    """xrfhub: XRF core-scanner spectra and lab data in a FAIR store (NeXus + Zarr)."""


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--store", required=True, type=click.Path(), help="Store folder (created if missing).")
@click.option("--init", is_flag=True, help="Create the store in an existing folder that holds other files.")
@click.option("--sections", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Section tops: CSV core,section,top depth with its unit (e.g. IODP 'Top depth CSF-A (m)').")
@click.option("--calibration", "calibration_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="bAXIL model (.axml) whose energy calibration applies to every spectrum.")
@click.option("--format", "format_", default=None, help="Reader to use instead of recognising content.")
@click.option("--core-map", type=click.Path(exists=True, dir_okay=False), help="CSV lab_core,scan_core.")
@click.option("--skip-bad", is_flag=True, help="Ingest the good files and list the bad ones.")
@click.option("--replace", is_flag=True, help="Store new versions of changed files (old kept in history).")
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another writer.")
@click.option("--core", default=None, help="Core id for files that carry none.")
@click.option("--section-top", type=float, default=None, help="Section top in mm for files that carry none.")
@click.option("--gain", type=float, default=None, help="Energy calibration (keV/channel) overriding the files.")
@click.option("--offset", type=float, default=0.0, show_default=True, help="Energy offset (keV) with --gain.")
@click.option("--align", "align_method", type=click.Choice(["window", "interval", "nearest"]), default="window",
              show_default=True, help="How lab samples are paired with spectra.")
@click.option("--window", type=float, default=5.0, show_default=True, help="Half window (mm) for --align window.")
@click.option("--tolerance", type=float, default=5.0, show_default=True, help="Tolerance (mm) for --align nearest.")
@click.option("--align-kv", type=float, default=10.0, show_default=True, help="Tube voltage paired with lab samples.")
@click.option("--composite", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Affine table core,offset_mm[,scale] giving composite depths.")
@click.option("--scheduler", default=None, help="dask.distributed scheduler address for parallel parsing.")
@click.option("--wavelength", type=float, default=None,
              help="Diffraction: wavelength in angstrom for files that carry none (default Cu K-alpha1, recorded).")
@click.option("--scan-coord", default=None, help="Diffraction: name of the scan coordinate numbered in file names.")
@click.option("--labels", "labels", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Diffraction: a labels table (pattern id -> class or phases); repeatable.")
@click.option("--depth", "depth_mm", type=float, default=None,
              help="Single-point spectra (.mca/.spe) that carry no depth: their core depth in mm.")
@click.option("--depth-unit", type=click.Choice(["m", "cm", "mm"]), default=None,
              help="Lab tables: unit of depth columns whose header gives none.")
@click.option("--units", default=None,
              help="Lab tables: unit of element/oxide columns without one: 'ppm', or per column 'Ca=ppm,Fe=wt%'.")
@friendly
def ingest(inputs, store, init, sections, calibration_file, format_, core_map, skip_bad, replace, wait, core, section_top,
           gain, offset, align_method, window, tolerance, align_kv, composite, scheduler, wavelength, scan_coord, labels,
           depth_mm, depth_unit, units):
    """Read scanner files and lab tables (files or folders) into STORE."""
    from xrfhub.build import AlignParams
    from xrfhub.records import Calibration

    client = None
    if gain is not None and calibration_file:
        raise click.UsageError("give --gain or --calibration, not both")
    if scheduler:
        from xrfhub.ml.cluster import connect

        client, _ = connect(scheduler)  # an unreachable scheduler: one clear line, not a traceback
    try:
        report = xrfhub.ingest(
            [*inputs, *labels], store, format=format_, core_map=core_map, skip_bad=skip_bad, replace=replace, wait=wait,
            core=core, section_top_mm=section_top,
            calibration=Calibration(gain, offset, "option") if gain is not None else calibration_file,
            sections=sections, init=init,
            align=AlignParams(align_method, window, tolerance, align_kv), composite_table=composite, client=client,
            wavelength=wavelength, scan_coord=scan_coord, depth_mm=depth_mm, depth_unit=depth_unit, units=units,
            progress=True)
    except InputError as exc:
        # one bad file refuses the whole ingest (nothing half-stored): say how to store the rest
        missing_input = exc.path in {str(p) for p in (*inputs, *labels)} and not os.path.exists(exc.path)
        if not skip_bad and not missing_input:
            shown = [f"error: {other}" for other in exc.others[:9]]
            if len(exc.others) > 9:
                shown.append(f"... and {len(exc.others) - 9} more")
            which = f"these {len(exc.others) + 1} files" if exc.others else "that file"
            exc.hint = "\n".join([*shown, f"nothing was stored: fix {which}, or add --skip-bad to store the other "
                                            "files and list the bad ones"])
        raise
    click.echo(report.summary())


@cli.command()
@click.argument("store", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly
def info(store, as_json):
    """Kinds, cores, spectra, depth ranges, scan settings, lab samples, matches, warnings."""
    from xrfhub.summary import format_info

    summary = xrfhub.info(store)
    click.echo(json.dumps(summary, indent=1, default=str) if as_json else format_info(summary))


@cli.command()
@click.argument("store", type=click.Path(exists=True))
@friendly
def validate(store):
    """Check NeXus files against our application definition and the hub against them."""
    report = xrfhub.validate(store)
    click.echo(report.text())
    if not report.ok:
        sys.exit(5)


@cli.command()
@click.argument("store", type=click.Path())
@click.option("--kind", default="spectra", show_default=True)
@click.option("--core", multiple=True, help="Core id (repeatable).")
@click.option("--depth", default=None, help="Depth range START:STOP in mm, inclusive.")
@click.option("--section", default=None, help="Section (as stored), e.g. for section-relative depths.")
@click.option("--counts", is_flag=True, help="Include the counts of every channel.")
@click.option("--out", required=True, type=click.Path(), help="Output .csv, .parquet or .nc")
@click.option("--units-as", "units", type=click.Choice(["suffix", "row", "none"]), default="suffix",
              show_default=True, help="Units in CSV/Parquet: in column names (CaCO3_wt%), a row under the "
                                      "header (CSV), or none. NetCDF keeps them as attributes.")
@friendly
def query(store, kind, core, depth, section, counts, out, units):
    """Write the selected spectra (or samples) with their coordinates, one row each."""
    cores = list(core) if len(core) > 1 else (core[0] if core else None)
    n = xrfhub.query(store, out, kind=kind, core=cores, depth=depth, counts=counts, section=section, units=units)
    click.echo(f"wrote {n} rows to {out}")


@cli.command()
@click.argument("store", type=click.Path(exists=True))
@friendly
def rebuild(store):
    """Regenerate the Zarr hub from the store's NeXus files (the source of truth)."""
    gen = xrfhub.rebuild(store, progress=True)
    click.echo(f"rebuilt the hub from NeXus: generation {gen.name}")


@cli.command("plugins")
@friendly
def plugins_():
    """Registered model plugins: their stages, targets and config keys."""
    from xrfhub.ml import registry

    broken: dict[str, str] = {}
    for plugin in registry.installed(errors=broken).values():
        click.echo(registry.describe(plugin))
    for message in broken.values():
        click.echo(f"warning: {message}", err=True)


@cli.command()
@click.argument("model")
@click.option("--store", required=True, type=click.Path(exists=True))
@click.option("--stage", default=None, help="Training stage (default: the plugin's first).")
@click.option("--out", required=True, type=click.Path(), help="Run folder (checkpoints, metrics, pictures).")
@click.option("--plugin", "plugin_from", default=None, help="Where MODEL comes from: plugin name, module or FILE.py.")
@click.option("--config", default=None, help="A preset (tiny, base, ...) or a YAML file.")
@click.option("--set", "sets", multiple=True, help="Override one config key: key=value (repeatable).")
@click.option("--epochs", type=int, default=None)
@click.option("--holdout-cores", default=None,
              help="Comma-separated cores kept out of training (the test set), or 'auto': a seeded fifth of "
                   "the labelled cores, drawn so that the training cores keep the lab values' range.")
@click.option("--target", default=None, help="Lab property to predict (fine-tuning).")
@click.option("--init", type=click.Path(exists=True), default=None,
              help="Run folder to start from (inherits its config and held-out cores); for max also the "
                   "published weights: a .pth file or a Hugging Face cache folder (read offline).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out from its last checkpoint.")
@click.option("--keep-flagged", is_flag=True, help="Train on spectra QC flagged bad or suspect too (run.json says).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder --out.")
@click.option("--calibration-cores", default=None,
              help="Whole cores kept out of training to calibrate prediction intervals: 'auto' or names.")
@click.option("--interval-method", type=click.Choice(["split-conformal", "split-conformal-cores",
                                                      "cross-conformal-cores"]), default=None,
              help="How intervals are calibrated: split-conformal (default with --calibration-cores: pooled "
                   "absolute residual), split-conformal-cores (score and weighting chosen leaving one calibration "
                   "core out), cross-conformal-cores (no --calibration-cores: 5 extra trainings on folds of whole "
                   "cores score every training core out of fold).")
@friendly
def train(model, store, stage, out, plugin_from, config, sets, epochs, holdout_cores, target, init, resume,
          keep_flagged, overwrite, calibration_cores, interval_method):
    """Train MODEL from the store."""
    from xrfhub.ml import registry, training

    stage = stage or registry.load(model, plugin_from).stages[0]
    cores = [c.strip() for c in holdout_cores.split(",") if c.strip()] if holdout_cores is not None else None
    cal = [c.strip() for c in calibration_cores.split(",") if c.strip()] if calibration_cores else None
    summary = training.train(model, store, stage=stage, out=out, plugin_from=plugin_from, config=config,
                             sets=key_values(sets), epochs=epochs, holdout_cores=cores, target=target, init=init,
                             resume=resume, keep_flagged=keep_flagged, overwrite=overwrite, calibration_cores=cal,
                             interval_method=interval_method)
    from xrfhub.ml.ddp import is_writer

    if not is_writer():  # under torchrun: rank 0 reports
        return
    click.echo(f"trained {summary.plugin} ({summary.stage}{', ' + summary.target if summary.target else ''}) "
               f"in {summary.run_dir}")
    if summary.holdout_cores:
        click.echo(f"held out (the test set): {', '.join(summary.holdout_cores)}")
    click.echo(json.dumps(summary.metrics, indent=1, default=str))
    for line in summary.headline():
        click.echo(line)
    for note in getattr(summary, "warnings", []):
        click.echo(f"warning: {note}", err=True)


@cli.command()
@click.option("--store", required=True, type=click.Path(exists=True))
@click.option("--run", "run_dirs", required=True, multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A training run folder; name two or more to store their per-spectrum mean as one run.")
@click.option("--wait", type=float, default=0.0, show_default=True)
@click.option("--interval", type=float, default=None,
              help="Add lower/upper bounds at this coverage (e.g. 0.9), conformal on the run's calibration cores "
                   "(several runs: on their out-of-fold predictions).")
@click.option("--scheduler", default=None,
              help="dask.distributed scheduler address: its workers compute the model, this process writes the run.")
@friendly
def predict(store, run_dirs, wait, interval, scheduler):
    """Predict every spectrum of the store with a trained run; writes a versioned prediction run.

    With several --run, their mean (equal weights), calibrated on their out-of-fold predictions."""
    from xrfhub.ml import training

    if len(run_dirs) > 1:
        from xrfhub.ml import ensemble

        if scheduler:
            raise click.UsageError("--scheduler predicts one run: predict the mean of several runs without it")
        run_id = ensemble.predict(store, run_dirs, wait=wait, interval=interval)
    else:
        run_id = training.predict(store, run_dirs[0], wait=wait, interval=interval, client=scheduler)
    click.echo(f"wrote prediction run {run_id} into {store}")
    side = ensemble.training_side(store, run_id) if len(run_dirs) > 1 else ""
    if side:
        click.echo(side)
    from xrfhub.ml.voltage import prediction_coverage  # which voltages the run covers, and which not

    coverage = prediction_coverage(store, run_id) if "," not in run_id else ""
    if coverage:
        click.echo(coverage)
    from xrfhub.ml.domain import prediction_note

    extrapolated = prediction_note(store, run_id) if "," not in run_id else ""
    for line in extrapolated.splitlines():
        click.echo(f"warning: {line}", err=True)


@cli.command()
@click.argument("store", type=click.Path(exists=True))
@friendly
def runs(store):
    """Prediction runs held in the store."""
    from xrfhub.predictions import list_runs

    found = list_runs(store)
    if not found:
        click.echo("no prediction runs")
    for r in found:
        click.echo(f"{r['run']}  {r['created']}  plugin {r['plugin']}  targets {','.join(r['targets'])}  "
                   f"{r['n_predicted']} {'patterns' if r.get('kind') == 'diffraction' else 'spectra'}  from {r['run_dir']}")


@cli.command()
@click.argument("store", type=click.Path(exists=True))
@click.argument("run_a")
@click.argument("run_b")
@click.option("--target", default=None, help="Property to compare (default: the one both runs predict).")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="Also draw the table as bars.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, help="Also write the table.")
@friendly
def compare(store, run_a, run_b, target, png, csv_path):
    """Two prediction runs (ids from `xrfhub runs`, or training run folders) core by core, largest
    disagreement first: where two models disagree, one of them is off; sample those cores first."""
    from xrfhub.compare import compare_runs, write_png

    table = compare_runs(store, run_a, run_b, target=target)
    name, run_a, run_b = table.attrs["target"], table.attrs["run_a"], table.attrs["run_b"]
    click.echo(f"{name}, A = {run_a}, B = {run_b}; per core, over the spectra both predicted:")
    click.echo(f"{'core':<16} {'spectra':>7} {'median A':>9} {'median B':>9} {'A - B':>7} {'|A-B| p90':>9} "
               f"{'apart':>6} {'lab values':>10}")
    for r in table.itertuples():
        apart = "-" if r.intervals_apart != r.intervals_apart else f"{r.intervals_apart:.2f}"
        click.echo(f"{r.core:<16} {r.n_spectra:>7} {r.median_a:>9.2f} {r.median_b:>9.2f} {r.median_difference:>+7.2f} "
                   f"{r.p90_abs_difference:>9.2f} {apart:>6} {r.lab_samples:>10}")
    figures = {k: table.attrs[f"interpolation_r2_{k.lower()}"] for k in ("A", "B")}
    if any(v is not None for v in figures.values()):  # the training-side figure to choose a model on
        click.echo("training cores out of fold, mean R2 inside their fold model's range: "
                   + ", ".join(f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in figures.items()))
    if csv_path:
        table.to_csv(csv_path, index=False, float_format="%.4g")
        click.echo(f"table: {csv_path}")
    if png:
        click.echo(f"picture: {write_png(table, png)}")


@cli.command()
@click.option("--store", required=True, type=click.Path(exists=True))
@click.option("--run", "run_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(), help="PNG to write (a CSV of the data goes beside it).")
@click.option("--core", multiple=True, help="Restrict to these cores (repeatable).")
@friendly
def saliency(store, run_dir, out, core):
    """Which energies drive a model: |dMSE/dinput| per channel, with element lines marked."""
    from xrfhub.ml import training

    result = training.saliency(store, run_dir, out, cores=list(core) or None)
    click.echo(f"saliency over {result['n_spectra']} spectra: {result['png']} and {result['csv']}")
    # a peak is named only within the detector resolution of a line; otherwise its energy is its name
    click.echo("salient peaks: " + ", ".join(f"{name} ({e:.2f} keV)" if name else f"{e:.2f} keV"
                                             for e, name in result["peaks"]))


@cli.command()
@click.option("--store", required=True, type=click.Path(exists=True))
@click.option("--holdout-cores", required=True,
              help="Comma-separated cores (diffraction: series): the test set, never trained on; for spectra "
                   "'auto' draws them as `train --holdout-cores auto` does (seed 0).")
@click.option("--out", required=True, type=click.Path(), help="Report folder (CSV, PNG, summary.md; resumable).")
@click.option("--target", type=click.Choice(["spectra", "phase", "phases"]), default="spectra", show_default=True,
              help="spectra: the MAX paper's CaCO3/TOC protocol; phase or phases: diffraction classifiers "
                   "(one class, or a set of phases, per pattern).")
@click.option("--quick", is_flag=True, help="A reduced protocol that runs in a few minutes.")
@click.option("--set", "sets", multiple=True, help="Override one protocol setting: key=value (repeatable).")
@click.option("--reference", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder with the paper's CSV tables to set beside ours (spectra).")
@click.option("--restart", is_flag=True, help="Forget finished runs in --out and start over.")
@click.option("--keep-flagged", is_flag=True, help="Keep spectra QC flagged bad or suspect (spectra; see qc.json).")
@click.option("--interval", type=float, default=None,
              help="Also report coverage and width of calibrated intervals at this level (e.g. 0.9), per model.")
@friendly
def evaluate(store, holdout_cores, out, target, quick, sets, reference, restart, keep_flagged, interval):
    """Evaluate models on held-out cores: the MAX paper's protocol for spectra, or diffraction
    classifiers compared (accuracy, F1 per class/phase, confusion, ramp confidence and boundary)."""
    cores = [c.strip() for c in holdout_cores.split(",") if c.strip()]
    sets = key_values(sets)
    if interval is not None:
        from xrfhub.ml.intervals import check_level

        check_level(interval)
        sets["interval"] = str(interval)
    if target == "spectra":
        from xrfhub.ml.evaluation import evaluate as run_evaluation

        summary = run_evaluation(store, cores, out, quick=quick, sets=sets, reference=reference,
                                 restart=restart, keep_flagged=keep_flagged)
    else:
        from xrfhub.ml.evaluation.classification import evaluate as run_classification

        summary = run_classification(store, cores, out, quick=quick, target=target, sets=sets,
                                     restart=restart)
    click.echo(f"report: {summary}")


@cli.command()
@click.option("--out", default="demo-output", show_default=True, type=click.Path(), help="Work folder.")
@click.option("--size", default="demo", show_default=True, help="Corpus size: tiny, demo or benchmark.")
@click.option("--seed", default=0, show_default=True, type=int)
@friendly
def demo(out, size, seed):
    """Generate a synthetic corpus, ingest it, show info, a query and pictures."""
    from xrfhub.demo import run_demo

    run_demo(out, size=size, seed=seed, echo=click.echo)


cli.add_command(_qc_command)  # commands kept in their own modules
cli.add_command(_export_command)


def main():  # pragma: no cover - console entry point
    cli()
