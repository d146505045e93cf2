"""`import xrfhub` and everything ingest and queries need stay free of torch."""
import subprocess
import sys


def test_the_library_without_plugins_does_not_import_torch():
    code = ("import sys, xrfhub, xrfhub.api, xrfhub.ingestion, xrfhub.build, xrfhub.ml.loaders, xrfhub.ml.registry, "
            "xrfhub.ml.training, xrfhub.summary, xrfhub.selection, xrfhub.validation, xrfhub.synth, xrfhub_cli.main; "
            "xrfhub.open; xrfhub.ingest; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
