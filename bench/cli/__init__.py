"""The `bench` command line: the typer app (`bench.cli.app`) and one module per command area."""
