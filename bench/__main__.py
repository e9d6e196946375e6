"""`python -m bench` (used by torchrun) runs the same CLI as the `bench` script."""

from bench.cli.app import main

main()
