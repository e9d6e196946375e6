"""The cost rules of the counter: one table of aten ops, each in exactly one class.

- compute: a handler in `MULT_ADD_HANDLERS` gives its mult-adds (convolution, mm, addmm, bmm...);
- free: a view / alias / allocation in `FREE_OPS`: 0 mult-adds and 0 MAC;
- zero mult-adds: in `ZERO_MULT_ADD_OPS` (element-wise, norm, pooling, cat, copies...): 0
  mult-adds but MAC by the rule below;
- unhandled: anything else; reported by name with its call count, MAC by the rule below.

MAC (ShuffleNet V2 sense) of a non-free op = elements read (every tensor input, weights included)
+ elements written (every non-empty tensor output); `mac_bytes` weights each tensor by its element
size. A user's rules (`count(..., rules={op: handler})`) add compute handlers for their own ops.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils._pytree import tree_flatten

from bench.core.errors import BenchError
from bench.measure.meta_shapes import META_SHAPE_RULES, empty_meta_like

aten = torch.ops.aten

MultAddHandler = Callable[[tuple, Any], int]


def _prod(values: Any) -> int:
    """Product of ints (1 for an empty sequence)."""
    return math.prod(int(v) for v in values)


def _conv_mult_adds(args: tuple, out: Any) -> int:
    """Convolution (any stride/padding/dilation/groups, transposed too): one MAC per weight use."""
    x, weight = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    per_element = _prod(weight.shape[1:])  # (C_in/g or C_out/g) * kernel volume
    return (x.numel() if transposed else out.numel()) * per_element


def _mm_mult_adds(args: tuple, out: Any) -> int:
    """mm(a, b): n*k*m."""
    a, b = args[0], args[1]
    return a.shape[0] * a.shape[1] * b.shape[1]


def _addmm_mult_adds(args: tuple, out: Any) -> int:
    """addmm(bias, a, b): the product's n*k*m (the bias add is not a mult-add)."""
    return _mm_mult_adds(args[1:], out)


def _bmm_mult_adds(args: tuple, out: Any) -> int:
    """bmm(a, b): batch*n*k*m."""
    a, b = args[0], args[1]
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]


def _baddbmm_mult_adds(args: tuple, out: Any) -> int:
    """baddbmm(bias, a, b): the batched product's mult-adds."""
    return _bmm_mult_adds(args[1:], out)


def _mv_mult_adds(args: tuple, out: Any) -> int:
    """mv(a, v) and dot(a, b): one mult-add per element of the first operand."""
    return args[0].numel()


def _addmv_mult_adds(args: tuple, out: Any) -> int:
    """addmv(bias, a, v): the matrix-vector product's mult-adds."""
    return args[1].numel()


def _addbmm_mult_adds(args: tuple, out: Any) -> int:
    """addbmm(bias, a, b): the batched product's mult-adds (summed over the batch)."""
    return _bmm_mult_adds(args[1:], out)


def _trilinear_mult_adds(args: tuple, out: Any) -> int:
    """_trilinear(i1, i2, i3, expand1, expand2, expand3, ...) (nn.Bilinear): one mult-add per
    point of the three inputs' broadcast shape (each unsqueezed at its expand dims)."""
    tensors, expands = args[:3], args[3:6]
    ndim = tensors[0].dim() + len(expands[0])
    sizes = [1] * ndim
    for tensor, expand in zip(tensors, expands, strict=True):
        shape = list(tensor.shape)
        for dim in sorted(expand):
            shape.insert(dim, 1)
        sizes = [max(a, b) for a, b in zip(sizes, shape, strict=True)]
    return _prod(sizes)


def _attention_mult_adds(args: tuple, out: Any) -> int:
    """Fused scaled-dot-product attention (q, k, v, ...): q @ k^T plus weights @ v per head."""
    q, k, v = args[0], args[1], args[2]
    *batch, length, depth = q.shape
    return _prod(batch) * length * k.shape[-2] * (depth + v.shape[-1])


FUSED_ATTENTION_OPS = (  # outputs beyond the first (log-sum-exp, seeds) are for backward
    aten._scaled_dot_product_flash_attention_for_cpu,
    aten._scaled_dot_product_flash_attention,
    aten._scaled_dot_product_efficient_attention,
    aten._scaled_dot_product_cudnn_attention,
)

MULT_ADD_HANDLERS: dict[Any, MultAddHandler] = {
    aten.convolution: _conv_mult_adds,
    aten._convolution: _conv_mult_adds,
    aten.mm: _mm_mult_adds,
    aten.addmm: _addmm_mult_adds,
    aten.bmm: _bmm_mult_adds,
    aten.baddbmm: _baddbmm_mult_adds,
    aten.mv: _mv_mult_adds,
    aten.dot: _mv_mult_adds,
    aten.addmv: _addmv_mult_adds,
    aten.addbmm: _addbmm_mult_adds,
    aten._trilinear: _trilinear_mult_adds,
    **dict.fromkeys(FUSED_ATTENTION_OPS, _attention_mult_adds),
}

FREE_OPS = frozenset(
    {
        *(aten.view, aten._unsafe_view, aten._reshape_alias, aten.alias, aten.as_strided),
        *(aten.transpose, aten.transpose_, aten.permute, aten.t, aten.t_, aten.expand),
        *(aten.slice, aten.select, aten.narrow, aten.diagonal, aten.unfold),
        *(aten.squeeze, aten.squeeze_, aten.unsqueeze, aten.unsqueeze_),
        *(aten.split, aten.split_with_sizes, aten.chunk, aten.unbind),
        *(aten.detach, aten.detach_, aten.lift_fresh, aten.view_as_real, aten.view_as_complex),
        *(aten.empty, aten.empty_like, aten.empty_strided, aten.new_empty),
        *(aten.new_empty_strided, aten.as_strided_, aten.expand_as, aten.view_as),
    }
)

ZERO_MULT_ADD_OPS = frozenset(
    {
        *(aten.add, aten.add_, aten.sub, aten.sub_, aten.mul, aten.mul_, aten.div, aten.div_),
        *(aten.neg, aten.exp, aten.log, aten.sqrt, aten.rsqrt, aten.pow, aten.abs, aten.tanh),
        *(aten.maximum, aten.minimum, aten.where, aten.addcmul, aten.addcdiv),
        *(aten.relu, aten.relu_, aten.hardtanh, aten.hardtanh_, aten.clamp, aten.clamp_),
        *(aten.clamp_min, aten.clamp_min_, aten.leaky_relu, aten.leaky_relu_, aten.elu),
        *(aten.sigmoid, aten.sigmoid_, aten.silu, aten.silu_, aten.gelu),
        *(aten.hardswish, aten.hardswish_, aten.hardsigmoid, aten.hardsigmoid_),
        *(aten.native_batch_norm, aten._native_batch_norm_legit_no_training),
        *(aten._native_batch_norm_legit, aten.native_layer_norm, aten.native_group_norm),
        *(aten.max_pool2d, aten.max_pool2d_with_indices, aten.max_pool3d_with_indices),
        *(aten.avg_pool2d, aten.avg_pool3d, aten.adaptive_avg_pool2d, aten._adaptive_avg_pool2d),
        *(aten.adaptive_max_pool2d, aten.mean, aten.sum, aten.amax, aten.amin),
        *(aten.cat, aten.stack, aten.clone, aten.copy_, aten._to_copy),
        *(aten.channel_shuffle, aten.native_channel_shuffle),
        *(aten.pixel_shuffle, aten.pixel_unshuffle, aten.constant_pad_nd),
        *(aten.upsample_nearest2d, aten.upsample_bilinear2d),
        *(aten._softmax, aten._log_softmax, aten.softmax, aten.log_softmax),
        *(aten.fill_, aten.zero_, aten.zeros, aten.ones, aten.full),
        *(aten.zeros_like, aten.ones_like, aten.full_like),
        *(aten.new_zeros, aten.new_ones, aten.new_full, aten.scalar_tensor, aten.arange),
        *(aten._safe_softmax, aten.mish, aten.mish_, aten.softplus, aten._prelu_kernel),
        *(aten.masked_fill, aten.masked_fill_, aten.roll, aten.repeat, aten.im2col),
        *(aten.index, aten.index_select, aten.gather, aten.flip, aten.linalg_vector_norm),
        *(aten.eq, aten.ne, aten.lt, aten.le, aten.gt, aten.ge, aten.logical_not),
        *(aten.logical_and, aten.logical_or, aten.upsample_bicubic2d, aten.upsample_nearest3d),
        *(aten.upsample_trilinear3d, aten.adaptive_avg_pool3d, aten._adaptive_avg_pool3d),
        *(aten.gelu_, aten.elu_, aten.erf, aten.reciprocal, aten.square, aten.sign),
        *(aten.exp_, aten.sqrt_, aten.tanh_, aten.floor, aten.ceil, aten.round, aten.var_mean),
        *(aten.std, aten.var, aten.max, aten.min, aten.argmax, aten.topk, aten.sort),
        *(aten.prod, aten.norm, aten.native_dropout, aten.bernoulli_, aten.cumsum),
        *(aten.sin, aten.cos, aten.bitwise_not, aten.bitwise_and, aten.bitwise_or),
    }
)

# Extra outputs that inference does not produce: saved batch-norm statistics (kept for backward),
# max-pooling indices and fused attention's log-sum-exp. Only the first output of these ops is
# counted as written.
FIRST_OUTPUT_ONLY = frozenset(
    {
        *(aten.native_batch_norm, aten._native_batch_norm_legit_no_training),
        *(aten._native_batch_norm_legit, aten.native_layer_norm, aten.native_group_norm),
        *(aten.max_pool2d_with_indices, aten.max_pool3d_with_indices, aten.adaptive_max_pool2d),
        *FUSED_ATTENTION_OPS,
    }
)


def _batch_norm_shapes(args: tuple, kwargs: dict) -> tuple[torch.Tensor, ...]:
    """Meta outputs of a batch norm: the normalised map and two empty saved statistics."""
    x = args[0]
    saved = torch.empty((0,), dtype=x.dtype, device=x.device)  # x.new_empty is a Python ref
    return empty_meta_like(x), saved, saved.clone()


# Shape rules for meta ops whose own meta kernel is a slow Python decomposition (batch norm's
# takes ~4 ms per call); outputs have the shapes and dtypes the real op returns in inference.
FAST_META: dict[Any, Callable[[tuple, dict], Any]] = {
    aten.native_batch_norm: _batch_norm_shapes,
    aten._native_batch_norm_legit_no_training: _batch_norm_shapes,
    **META_SHAPE_RULES,  # may decline (NotImplemented): then the op's own kernel runs
}


def op_kind(packet: Any, handlers: Mapping[Any, MultAddHandler] = MULT_ADD_HANDLERS) -> str:
    """The class of an aten op packet: compute, free, zero or unhandled."""
    if packet in handlers:
        return "compute"
    if packet in FREE_OPS:
        return "free"
    if packet in ZERO_MULT_ADD_OPS:
        return "zero"
    return "unhandled"


def tensors_in(tree: Any) -> list[torch.Tensor]:
    """The tensors among the leaves of a nested structure of args or outputs."""
    leaves, _ = tree_flatten(tree)
    return [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]


def _traffic(tensors: list[torch.Tensor]) -> tuple[int, int]:
    """(elements, bytes) of a list of tensors."""
    elements = sum(t.numel() for t in tensors)
    return elements, sum(t.numel() * t.element_size() for t in tensors)


def op_traffic(packet: Any, args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """MAC (elements, bytes) of one op: inputs read + non-empty outputs written; views free."""
    if packet in FREE_OPS:
        return 0, 0
    reads = tensors_in((args, {k: v for k, v in kwargs.items() if k != "out"}))
    outputs = tensors_in(out)
    if packet in FIRST_OUTPUT_ONLY:
        outputs = outputs[:1]
    read_elements, read_bytes = _traffic(reads)
    write_elements, write_bytes = _traffic([t for t in outputs if t.numel() > 0])
    return read_elements + write_elements, read_bytes + write_bytes


def resolve_rules(rules: Mapping[Any, MultAddHandler] | None) -> dict[Any, MultAddHandler]:
    """The handler table with a user's rules added; keys are op packets, overloads or names.

    A name is `namespace::op` (or `namespace.op`), e.g. `mylib::fused_conv` or `aten::mish`.
    """
    table = dict(MULT_ADD_HANDLERS)
    for key, handler in (rules or {}).items():
        if not callable(handler):
            raise BenchError(f"cost rule for {key!r}: expected a callable (args, out) -> mult-adds")
        table[_op_packet(key)] = handler
    return table


def _op_packet(key: Any) -> Any:
    """The overload packet an op key names (BenchError when it names no registered op)."""
    if isinstance(key, torch._ops.OpOverload):
        return key.overloadpacket
    if isinstance(key, torch._ops.OpOverloadPacket):
        return key
    namespace, sep, name = str(key).replace("::", ".").partition(".")
    try:
        if not sep:
            raise AttributeError(key)
        return getattr(getattr(torch.ops, namespace), name)
    except (AttributeError, RuntimeError):
        raise BenchError(f"cost rule for {key!r}: no such op (write namespace::name)") from None
