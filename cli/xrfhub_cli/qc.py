"""``xrfhub qc STORE``: per-point quality flags (a new generation), optionally a picture."""
from __future__ import annotations

import sys

import click


@click.command("qc")
@click.argument("store", type=click.Path(exists=True))
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Also draw the checks per core into this PNG.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="Override a threshold (repeatable), e.g. --set throughput_bad_ratio=0.4.")
@click.option("--alignment", type=click.Choice(["exclude", "strict", "keep"]), default=None,
              help="Which flagged spectra depth alignment leaves out (default: as before, exclude = bad and suspect).")
@click.option("--wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another writer.")
def qc(store, out, sets, alignment, wait):
    """Flag every spectrum and element point ok, suspect, bad or indeterminate, with reason codes."""
    from xrfhub.errors import XrfhubError
    from xrfhub.qc.params import QCParams
    from xrfhub.qc.command import run

    from .common import key_values as _key_values

    try:
        params = QCParams.from_options(_key_values(sets))
        result = run(store, params, progress=True, wait=wait, alignment=alignment)
    except XrfhubError as exc:  # one clear line, non-zero exit (as every command)
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    from xrfhub.qc.store import format_counts

    click.echo("\n".join(format_counts(result.counts())))
    click.echo(f"store generation: {result.generation}")
    if out:
        from xrfhub.qc.figure import plot

        click.echo(f"picture: {plot(result, out)}")
