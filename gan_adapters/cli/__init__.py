"""The `gan-adapters` command line (typer + rich), one module per command family."""
