"""`python -m gan_adapters` runs the command line."""

from gan_adapters.cli.app import main

main()
