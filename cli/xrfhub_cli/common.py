"""What every command module shares: error printing and ``--set key=value`` parsing.

Kept apart from ``main`` so that command modules (``qc``, ``export``) never import ``main``:
``main`` imports them and registers their commands, in one direction.
"""
from __future__ import annotations

import functools
import sys

import click

from xrfhub.errors import XrfhubError


def friendly(fn):
    """Print our own errors as one clear line and exit non-zero, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XrfhubError as exc:
            click.echo(f"error: {exc}", err=True)
            if getattr(exc, "hint", None):  # what to do next, when the command knows it
                click.echo(exc.hint, err=True)
            sys.exit(exc.exit_code)

    return wrapper


def key_values(pairs) -> dict[str, str]:
    """``["a=1", "b = x"]`` as ``{"a": "1", "b": "x"}``; a pair without ``=`` is a usage error."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--set")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out
