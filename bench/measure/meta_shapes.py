"""Outputs of the commonest CNN ops on the meta device, without torch's Python meta kernels.

torch serves the meta kernels of add, relu, cat, mean and addmm from Python references
(`torch._refs`) wrapped in `torch._disable_dynamo`, whose first call imports torch._dynamo:
seconds of every `bench count`, for tensors whose values are never computed anyway. Each rule
here returns what the real meta kernel returns (shape, dtype, strides) in the plain cases a CNN
meets, and declines with NotImplemented for anything else (broadcasting, mixed dtypes, odd
layouts, extra arguments): then the real kernel runs. `tests/test_meta_shapes.py` compares every
rule with the real kernel.
"""

from __future__ import annotations

from typing import Any

import torch

_aten = torch.ops.aten


def _dense(x: torch.Tensor) -> bool:
    """Contiguous in the default or the channels_last layout (no gaps, no overlap)."""
    if x.is_contiguous():
        return True
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


def _alike(a: Any, b: Any) -> bool:
    """Two tensors of one shape, dtype and layout."""
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return False
    return a.shape == b.shape and a.dtype == b.dtype and a.stride() == b.stride()


def in_place_elementwise(args: tuple, kwargs: dict) -> Any:
    """`x.add_(y)`, `x.relu_()`: x itself, when every other tensor is alike and no dtype changes."""
    self, others = args[0], args[1:]
    if set(kwargs) - {"alpha"} or not isinstance(self, torch.Tensor):
        return NotImplemented
    if any(isinstance(o, torch.Tensor) and not _alike(self, o) for o in others):
        return NotImplemented
    if not self.is_floating_point():
        return NotImplemented
    return self


def unary_elementwise(args: tuple, kwargs: dict) -> Any:
    """`relu(x)`: a new tensor like a dense floating-point x."""
    x = args[0]
    if kwargs or len(args) != 1 or not _dense(x) or not x.is_floating_point():
        return NotImplemented
    return torch.empty_like(x)


def binary_elementwise(args: tuple, kwargs: dict) -> Any:
    """`a + b` of two alike dense floating-point tensors: a new tensor like them."""
    if set(kwargs) - {"alpha"} or len(args) != 2 or not _alike(*args):
        return NotImplemented
    a = args[0]
    if not _dense(a) or not a.is_floating_point():
        return NotImplemented
    return torch.empty_like(a)


def concatenated(args: tuple, kwargs: dict) -> Any:
    """`cat(tensors, dim)` of dense tensors of one dtype and layout, alike but along dim."""
    tensors, dim = args[0], (args[1] if len(args) > 1 else kwargs.get("dim", 0))
    if set(kwargs) - {"dim"} or not tensors or not isinstance(dim, int):
        return NotImplemented
    first = tensors[0]
    layout, dim = _layout(first), dim % max(first.dim(), 1)
    if layout is None or not first.is_floating_point():
        return NotImplemented
    for t in tensors:
        same = t.dim() == first.dim() and t.dtype == first.dtype and _layout(t) == layout
        others = [s for i, s in enumerate(t.shape) if i != dim]
        if not same or others != [s for i, s in enumerate(first.shape) if i != dim]:
            return NotImplemented
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return torch.empty(shape, dtype=first.dtype, device="meta", memory_format=layout)


def _layout(x: torch.Tensor) -> torch.memory_format | None:
    """The memory format of a dense tensor of more than one element (None: neither or ambiguous)."""
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return None if x.is_contiguous() else torch.channels_last
    return torch.contiguous_format if x.is_contiguous() else None


def spatial_mean(args: tuple, kwargs: dict) -> Any:
    """`x.mean((2, 3), keepdim)` of a contiguous N x C x H x W float map (global average pool)."""
    x, dims = args[0], args[1] if len(args) > 1 else None
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if set(kwargs) - {"keepdim"} or len(args) > 3 or x.dim() != 4 or not x.is_contiguous():
        return NotImplemented
    if not x.is_floating_point() or dims is None or sorted(d % 4 for d in dims) != [2, 3]:
        return NotImplemented
    shape = (*x.shape[:2], 1, 1) if keepdim else tuple(x.shape[:2])
    return torch.empty(shape, dtype=x.dtype, device="meta")


def matrix_product_plus_bias(args: tuple, kwargs: dict) -> Any:
    """`addmm(bias, a, b)` of float matrices of one dtype (nn.Linear): an m x n matrix."""
    if kwargs or len(args) != 3:
        return NotImplemented
    bias, a, b = args
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0] or bias.shape != (b.shape[1],):
        return NotImplemented
    if not (a.dtype == b.dtype == bias.dtype) or not a.is_floating_point():
        return NotImplemented
    return torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device="meta")


META_SHAPE_RULES = {
    _aten.add_: in_place_elementwise,
    _aten.relu_: in_place_elementwise,
    _aten.relu: unary_elementwise,
    _aten.add: binary_elementwise,
    _aten.cat: concatenated,
    _aten.mean: spatial_mean,
    _aten.addmm: matrix_product_plus_bias,
}
