"""The ``xrfhub`` command line: parses options and calls the library, nothing more."""
from __future__ import annotations

import functools
import json
import sys

import click

import xrfhub
from xrfhub.errors import XrfhubError


def _friendly(fn):
    """Print our own errors as one clear line and exit non-zero, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XrfhubError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(xrfhub.__version__, prog_name="xrfhub")
def cli():
    """xrfhub: XRF core-scanner spectra and lab data in a FAIR store (NeXus + Zarr)."""


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--store", required=True, type=click.Path(), help="Store folder (created if missing).")
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
@click.option("--scheduler", default=None, help="dask.distributed scheduler address for parallel parsing.")
@_friendly
def ingest(inputs, store, format_, core_map, skip_bad, replace, wait, core, section_top, gain, offset,
           align_method, window, tolerance, align_kv, scheduler):
    """Read scanner files and lab tables (files or folders) into STORE."""
    from xrfhub.build import AlignParams
    from xrfhub.records import Calibration

    client = None
    if scheduler:
        from dask.distributed import Client

        client = Client(scheduler)
    report = xrfhub.ingest(
        inputs, store, format=format_, core_map=core_map, skip_bad=skip_bad, replace=replace, wait=wait,
        core=core, section_top_mm=section_top,
        calibration=Calibration(gain, offset, "option") if gain is not None else None,
        align=AlignParams(align_method, window, tolerance, align_kv), client=client, progress=True)
    click.echo(report.summary())


@cli.command()
@click.argument("store", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_friendly
def info(store, as_json):
    """Kinds, cores, spectra, depth ranges, scan settings, lab samples, matches, warnings."""
    from xrfhub.summary import format_info

    summary = xrfhub.info(store)
    click.echo(json.dumps(summary, indent=1, default=str) if as_json else format_info(summary))


@cli.command()
@click.argument("store", type=click.Path(exists=True))
@_friendly
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
@click.option("--counts", is_flag=True, help="Include the counts of every channel.")
@click.option("--out", required=True, type=click.Path(), help="Output .csv, .parquet or .nc")
@_friendly
def query(store, kind, core, depth, counts, out):
    """Write the selected spectra (or samples) with their coordinates, one row each."""
    cores = list(core) if len(core) > 1 else (core[0] if core else None)
    n = xrfhub.query(store, out, kind=kind, core=cores, depth=depth, counts=counts)
    click.echo(f"wrote {n} rows to {out}")


@cli.command()
@click.argument("store", type=click.Path(exists=True))
@_friendly
def rebuild(store):
    """Regenerate the Zarr hub from the store's NeXus files (the source of truth)."""
    gen = xrfhub.rebuild(store, progress=True)
    click.echo(f"rebuilt the hub from NeXus: generation {gen.name}")


@cli.command()
@click.option("--out", default="demo-output", show_default=True, type=click.Path(), help="Work folder.")
@click.option("--size", default="demo", show_default=True, help="Corpus size: tiny, demo or benchmark.")
@click.option("--seed", default=0, show_default=True, type=int)
@_friendly
def demo(out, size, seed):
    """Generate a synthetic corpus, ingest it, show info, a query and pictures."""
    from xrfhub.demo import run_demo

    run_demo(out, size=size, seed=seed, echo=click.echo)


def main():  # pragma: no cover - console entry point
    cli()
