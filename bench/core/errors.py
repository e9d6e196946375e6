"""The one error type users see: a clear one-line message, never a traceback."""


class BenchError(ValueError):
    """Bad input or an impossible request; the CLI prints the message and exits with code 2."""
