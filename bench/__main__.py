"""`python -m bench` (used by torchrun) runs the same CLI as the `bench` script."""

from bench.cli import main

main()
