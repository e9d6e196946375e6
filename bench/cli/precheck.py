"""Arguments checked before the heavy modules load, so a mistake is answered at once.

A bad spec, option or `--input` is rejected after importing torch and netdefs only: the spec is
built on the meta device (no memory, weight initialisation skipped), the shape parsed as text.
Counting (pandas), timing and the runners load afterwards, for arguments that are valid. A
builder that cannot run on the meta device at all (torchvision's RegNets read tensor values) is
not judged here: the real build decides.
"""

from __future__ import annotations


def check_model_arguments(spec: str, input: str | None) -> tuple[int, int, int] | None:
    """The parsed `--input` (None: the model's own); BenchError for a bad spec or shape."""
    from bench.core.errors import BenchError, first_line
    from bench.core.models import meta_device
    from bench.core.options import parse_input_shape
    from netdefs import get_model

    shape = parse_input_shape(input) if input else None
    try:
        with meta_device():
            get_model(spec)
    except ValueError as exc:  # netdefs' one-line messages: unknown name, option or value
        raise BenchError(first_line(exc)) from None
    except Exception:  # the real build reports what else goes wrong
        pass
    return shape
