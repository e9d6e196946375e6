"""Outputs of the commonest CNN ops on the meta device, without torch's Python meta kernels.

torch serves the meta kernels of convolution, pooling, add, relu, cat, mean, addmm and
channel_shuffle from Python: references (`torch._refs`) wrapped in `torch._disable_dynamo`,
whose first call imports torch._dynamo, and kernels calling `torch._check`, which imports
torch.fx's symbolic shapes (sympy), as `empty_like` of a meta tensor does: seconds of every
`bench count`, for tensors whose values are never computed anyway. Each rule here returns what
the real meta kernel returns (shape, dtype, strides) in the plain cases a CNN meets, and declines
with NotImplemented for anything else (broadcasting, mixed dtypes, other layouts, transposed
convolutions, extra arguments): then the real kernel runs. `tests/test_meta_shapes.py` compares
every rule with the real kernel.
"""

from __future__ import annotations

from typing import Any

import torch

_aten = torch.ops.aten


def empty_meta_like(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A meta tensor of x's shape and strides (`empty_like` of a meta tensor is a Python ref)."""
    return torch.empty_strided(x.shape, x.stride(), dtype=dtype or x.dtype, device="meta")


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
    return empty_meta_like(x)


def binary_elementwise(args: tuple, kwargs: dict) -> Any:
    """`a + b` of two alike dense floating-point tensors: a new tensor like them."""
    if set(kwargs) - {"alpha"} or len(args) != 2 or not _alike(*args):
        return NotImplemented
    a = args[0]
    if not _dense(a) or not a.is_floating_point():
        return NotImplemented
    return empty_meta_like(a)


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


def _pair(values: Any, default: list[int] | None = None) -> list[int] | None:
    """Two ints from a 1- or 2-item list (an empty list: the default); None when neither."""
    values = list(values) if isinstance(values, list | tuple) else [values]
    if not values and default is not None:
        return default
    if len(values) == 1:
        values = values * 2
    ok = len(values) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    return values if ok else None


def _pooled(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    """Output length of a pooling window (PyTorch's rule, ceil_mode included)."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil else 0)
    out = span // stride + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _plain_map(x: Any) -> bool:
    """A contiguous N x C x H x W floating-point meta tensor."""
    return (
        isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_contiguous() and x.is_floating_point()
    )


def convolution_2d(args: tuple, kwargs: dict) -> Any:
    """`convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups)`:
    a 2-d, non-transposed convolution of contiguous maps; its contiguous output map."""
    if kwargs or len(args) != 9:
        return NotImplemented
    x, weight, bias, stride, padding, dilation, transposed, _, groups = args
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    if transposed or None in (stride, padding, dilation) or not _plain_map(x):
        return NotImplemented
    if not _plain_map(weight) or weight.dtype != x.dtype or weight.shape[1] * groups != x.shape[1]:
        return NotImplemented
    if bias is not None and (bias.shape != (weight.shape[0],) or bias.dtype != x.dtype):
        return NotImplemented
    h, w = (
        _pooled(x.shape[2 + i], weight.shape[2 + i], stride[i], padding[i], dilation[i], False)
        for i in range(2)
    )
    if h <= 0 or w <= 0:
        return NotImplemented
    return torch.empty((x.shape[0], weight.shape[0], h, w), dtype=x.dtype, device="meta")


def _pool_shape(x: torch.Tensor, kernel: Any, stride: Any, pad: Any, dil: Any, ceil: Any) -> Any:
    """(N, C, H', W') of a 2-d pooling of x; None when the arguments are not plain."""
    kernel = _pair(kernel)
    stride, pad, dil = _pair(stride, kernel), _pair(pad), _pair(dil)
    if None in (kernel, stride, pad, dil) or not isinstance(ceil, bool):
        return None
    if any(p > k // 2 for p, k in zip(pad, kernel, strict=True)):
        return None  # PyTorch refuses padding over half the window: let it say so
    h, w = (_pooled(x.shape[2 + i], kernel[i], stride[i], pad[i], dil[i], ceil) for i in range(2))
    return (*x.shape[:2], h, w) if h > 0 and w > 0 else None


def max_pool_2d(args: tuple, kwargs: dict) -> Any:
    """`max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode)` of a contiguous
    map: the pooled map and its int64 indices."""
    if kwargs or not 2 <= len(args) <= 6 or not _plain_map(args[0]):
        return NotImplemented
    x, kernel, *given = args
    stride, pad, dil, ceil = (*given, *((), 0, 1, False)[len(given) :])
    shape = _pool_shape(x, kernel, stride, pad, dil, ceil)
    if shape is None:
        return NotImplemented
    indices = torch.empty(shape, dtype=torch.int64, device="meta")
    return torch.empty(shape, dtype=x.dtype, device="meta"), indices


def average_pool_2d(args: tuple, kwargs: dict) -> Any:
    """`avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor)` of a
    contiguous map: the pooled map."""
    if kwargs or not 2 <= len(args) <= 7 or not _plain_map(args[0]):
        return NotImplemented
    x, kernel, *given = args[:5]  # count_include_pad and the divisor leave the shape alone
    stride, pad, ceil = (*given, *((), 0, False)[len(given) :])
    shape = _pool_shape(x, kernel, stride, pad, 1, ceil)
    if shape is None:
        return NotImplemented
    return torch.empty(shape, dtype=x.dtype, device="meta")


def shuffled_channels(args: tuple, kwargs: dict) -> Any:
    """`channel_shuffle(x, groups)` of a contiguous map: a new map of its shape."""
    if kwargs or len(args) != 2 or not _plain_map(args[0]) or not isinstance(args[1], int):
        return NotImplemented
    x, groups = args
    if groups <= 0 or x.shape[1] % groups:
        return NotImplemented
    return torch.empty(x.shape, dtype=x.dtype, device="meta")


META_SHAPE_RULES = {
    _aten.add_: in_place_elementwise,
    _aten.relu_: in_place_elementwise,
    _aten.relu: unary_elementwise,
    _aten.add: binary_elementwise,
    _aten.cat: concatenated,
    _aten.mean: spatial_mean,
    _aten.addmm: matrix_product_plus_bias,
    _aten.convolution: convolution_2d,
    _aten.max_pool2d_with_indices: max_pool_2d,
    _aten.avg_pool2d: average_pool_2d,
    _aten.channel_shuffle: shuffled_channels,
}
