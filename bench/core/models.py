"""The one path from a spec string to a model: built by netdefs, bad specs as one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from bench.core.errors import BenchError, first_line
from bench.core.options import parse_input_shape
from bench.core.values import human_bytes, human_count
from netdefs import get_model
from netdefs.registry import SpecValue
from netdefs.validate import shown

Shape = tuple[int, ...]
WEIGHTS_SEED = 0


def build_model(
    model_or_spec: nn.Module | str, *, meta: bool = False, **overrides: SpecValue
) -> nn.Module:
    """The module itself, or the spec built by netdefs (on the meta device when `meta`).

    A meta build skips weight initialisation (its values would be meaningless anyway; torch's
    `kaiming_normal_` alone imports torch._dynamo, seconds of start-up).

    Real builds draw their random weights from a fixed seed (the global RNG is left as it was),
    so every runtime and every run of a suite sees the same weights for the same spec, and an
    exported artefact can be reused. A real build is preceded by one on the meta device (no
    memory): a model whose parameters alone would not fit in the memory available is refused
    before anything is allocated.
    """
    if isinstance(model_or_spec, nn.Module):
        return model_or_spec
    if not meta:
        check_parameter_memory(model_or_spec, overrides)
    try:
        if meta:
            return _meta_build(model_or_spec, overrides)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(WEIGHTS_SEED)  # the same spec always gets the same weights
            return get_model(model_or_spec, **overrides)
    except ValueError as exc:  # netdefs' own one-line messages
        raise BenchError(first_line(exc)) from None
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise BenchError(
            f"out of memory building {shown(model_or_spec)}: {first_line(exc)}"
        ) from None
    except Exception as exc:  # a builder may raise anything for values it cannot take
        raise BenchError(f"cannot build {shown(model_or_spec)}: {first_line(exc)}") from None


@contextmanager
def meta_device() -> Iterator[None]:
    """Build on the meta device without paying for weight initialisation (shapes only)."""
    with torch.device("meta"), _SkipMetaInit():
        yield


class _SkipMetaInit(TorchFunctionMode):
    """In-place ops on meta tensors (weight initialisation) return at once: shapes are enough.

    With `parameters_too`, in-place ops on parameters of any device are skipped as well: a model
    built on the CPU only to be moved to the meta device keeps untouched (never read) memory.
    """

    def __init__(self, parameters_too: bool = False) -> None:
        super().__init__()
        self.parameters_too = parameters_too

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        """Skip `tensor.normal_(...)`-style calls on meta tensors; run everything else."""
        name = getattr(func, "__name__", "")
        in_place = name.endswith("_") and not name.endswith("__")
        # nn.init's functions come with their tensor as a keyword (`tensor=weight`)
        target = args[0] if args else next(iter((kwargs or {}).values()), None)
        skipped = isinstance(target, torch.Tensor) and (
            target.is_meta or (self.parameters_too and isinstance(target, nn.Parameter))
        )
        if in_place and skipped:
            return target
        return func(*args, **(kwargs or {}))


def _meta_build(spec: str, overrides: dict[str, SpecValue]) -> nn.Module:
    """The spec built on the meta device (initialisation skipped); a builder that reads tensor
    values there (regnet's `.tolist()`) is built on the CPU instead and moved to meta."""
    try:
        with meta_device():
            return get_model(spec, **overrides)
    except (NotImplementedError, RuntimeError) as exc:
        if "meta" not in str(exc).lower():
            raise
    with torch.random.fork_rng(devices=[]), _SkipMetaInit(parameters_too=True):
        return get_model(spec, **overrides).to("meta")


def check_parameter_memory(spec: str, overrides: dict[str, SpecValue]) -> None:
    """BenchError when the spec's parameters and buffers exceed the memory available here."""
    try:
        with meta_device():
            model = get_model(spec, **overrides)
    except Exception:  # the real build reports what is wrong with the spec
        return
    tensors = [*model.parameters(), *model.buffers()]
    needed = sum(t.numel() * t.element_size() for t in tensors)
    available = psutil.virtual_memory().available
    if needed > available:
        params = human_count(sum(p.numel() for p in model.parameters()))
        raise BenchError(
            f"model {shown(spec)} needs {human_bytes(needed)} for its {params} parameters "
            f"alone, more than the {human_bytes(available)} of memory available here"
        )


def settle_input_shape(model: nn.Module, input_shape: str | Shape | list[int] | None) -> Shape:
    """The per-sample input shape: given (CxHxW text or ints) or the model's `input_shape`."""
    if isinstance(input_shape, str):
        return parse_input_shape(input_shape)
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        name = getattr(model, "spec", type(model).__name__)
        raise BenchError(
            f"input_shape is required: model {shown(name)} has no input_shape attribute "
            "(give --input CxHxW, or input: in a suite)"
        )
    values = tuple(shape)
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)
    if not values or not ok:
        raise BenchError(
            f"input shape {shape!r} is not a sequence of positive ints (e.g. 3x224x224)"
        )
    return values


def model_and_shape(
    model_or_spec: nn.Module | str,
    input_shape: str | Shape | list[int] | None = None,
    *,
    meta: bool = False,
) -> tuple[nn.Module, Shape]:
    """Build the model (or take it) and settle its per-sample input shape."""
    model = build_model(model_or_spec, meta=meta)
    return model, settle_input_shape(model, input_shape)
