from xrfhub_cli.main import cli

cli(prog_name="xrfhub")
