"""Arguments checked before the heavy modules load, so a mistake is answered at once.

A bad spec, option or `--input` is rejected after importing torch and netdefs only: the spec is
built on the meta device (`build_model(meta=True)`: no memory, weight initialisation skipped),
the shape parsed as text. Counting (pandas), timing and the runners load afterwards, for
arguments that are valid.
"""

from __future__ import annotations


def check_model_arguments(spec: str, input: str | None) -> tuple[int, int, int] | None:
    """The parsed `--input` (None: the model's own); BenchError for a bad spec or shape."""
    from bench.core.models import build_model
    from bench.core.options import parse_input_shape

    shape = parse_input_shape(input) if input else None
    build_model(spec, meta=True)
    return shape
