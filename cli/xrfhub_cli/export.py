"""``xrfhub export``: hand a store on as a PANGAEA-ready table or an RO-Crate."""
from __future__ import annotations

import click

from .common import friendly


@click.command("export")
@click.argument("store", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "format_", type=click.Choice(["pangaea", "ro-crate"]), required=True)
@click.option("--out", required=True, type=click.Path(), help="FILE.tab (pangaea) or a folder (ro-crate).")
@click.option("--citation", default=None, help="How to cite the data (default: the lab tables' citation, if any).")
@click.option("--licence", "--license", "licence", default="", help="Licence, e.g. CC-BY-4.0 (default: the lab tables').")
@click.option("--author", "authors", multiple=True, help="Author 'Name <email>' or 'Name' (repeatable).")
@click.option("--identifiers", "identifiers_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV core,igsn,doi (a row 'dataset' gives the store's DOI).")
@friendly
def export_(store, format_, out, citation, licence, authors, identifiers_file):
    """Write STORE as a PANGAEA-ready table (--format pangaea) or an RO-Crate (--format ro-crate)."""
    if format_ == "pangaea":
        from xrfhub.export.pangaea import export

        path = export(store, out, citation=citation, licence=licence, identifiers_file=identifiers_file)
    else:
        from xrfhub.export.rocrate import export

        path = export(store, out, citation=citation, licence=licence, authors=authors,
                      identifiers_file=identifiers_file)
    click.echo(f"wrote {path}")
