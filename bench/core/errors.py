"""The one error type users see, and the one way an exception becomes a line of text."""

from __future__ import annotations

MAX_ERROR_CHARS = 400


class BenchError(ValueError):
    """Bad input or an impossible request; the CLI prints the message and exits with code 2."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type name when it has none."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def one_line(exc: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """The whole message on one line (type name first unless a BenchError), at most `limit`."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, BenchError):
        text = f"{type(exc).__name__}: {text}"
    return text[:limit]


def clipped(text: str, limit: int) -> str:
    """`text` on one line, its middle cut out (saying how much) when longer than `limit`."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    keep = (limit - 30) // 2
    return f"{text[:keep]} ...({len(text) - 2 * keep} characters cut)... {text[-keep:]}"


def unpickling_detail(exc: BaseException) -> str:
    """What a refused pickle held, without torch's advice to load it unsafely."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [
        line
        for line in lines
        if "weights_only" not in line
        and not line.startswith(("Weights only load failed", "Check the documentation"))
    ]
    return useful[0] if useful else "it is not plain tensors and data"
