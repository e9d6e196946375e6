"""The meta shape rules give what torch's own meta kernels give, or decline; counts unchanged."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from bench.measure import counting
from bench.measure.meta_shapes import META_SHAPE_RULES
from bench.measure.rules import FAST_META

aten = torch.ops.aten
CL = torch.channels_last


def meta(*shape: int, layout: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """An uninitialised float meta tensor in a memory format."""
    return torch.empty(shape, device="meta", memory_format=layout)


def assert_like_real(op, args: tuple, kwargs: dict | None = None) -> None:
    """The rule's output(s) have the shapes, dtypes and strides of the real meta kernel's."""
    kwargs = kwargs or {}
    fast = META_SHAPE_RULES[op.overloadpacket](args, kwargs)
    real = op(*args, **kwargs)
    assert fast is not NotImplemented, op
    fast, real = (v if isinstance(v, tuple) else (v,) for v in (fast, real))
    described = [[(t.shape, t.dtype, t.stride(), t.device) for t in v] for v in (fast, real)]
    assert described[0] == described[1]


def declines(packet, args: tuple, kwargs: dict | None = None) -> bool:
    """Whether the rule leaves these arguments to the real kernel."""
    return META_SHAPE_RULES[packet](args, kwargs or {}) is NotImplemented


x, x_cl = meta(2, 8, 5, 5), meta(2, 8, 5, 5, layout=CL)


@pytest.mark.parametrize("t", [x, x_cl], ids=["nchw", "channels_last"])
def test_elementwise_rules_match_the_real_kernels(t: torch.Tensor) -> None:
    assert_like_real(aten.relu.default, (t,))
    assert_like_real(aten.add.Tensor, (t, torch.empty_like(t)))
    assert_like_real(aten.add.Tensor, (t, torch.empty_like(t)), {"alpha": 2})
    other = torch.empty_like(t)
    assert META_SHAPE_RULES[aten.add_]((t, other), {}) is t
    assert META_SHAPE_RULES[aten.relu_]((t,), {}) is t


def test_elementwise_rules_decline_broadcasts_scalars_mixed_dtypes_and_gaps() -> None:
    assert declines(aten.add, (x, meta(1, 8, 1, 1)))
    assert declines(aten.add, (x, 2.0))
    assert declines(aten.add, (x, x_cl))  # alike shape, other layout
    assert declines(aten.add_, (x, meta(1, 8, 1, 1)))
    assert declines(aten.add_, (x, x.to(torch.float16)))
    assert declines(aten.relu, (x[:, :, ::2],))
    assert declines(aten.relu_, (torch.empty(3, dtype=torch.int64, device="meta"),))


@pytest.mark.parametrize("layout", [torch.contiguous_format, CL], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("dim", [1, -3, 0, 3])
def test_cat_matches_the_real_kernel(layout: torch.memory_format, dim: int) -> None:
    sizes = [3, 4]
    parts = []
    for size in sizes:
        shape = [2, 8, 5, 5]
        shape[dim] = size
        parts.append(meta(*shape, layout=layout))
    assert_like_real(aten.cat.default, (parts, dim))


def test_cat_declines_mixed_layouts_and_mismatched_sizes() -> None:
    assert declines(aten.cat, ([x, x_cl], 1))
    assert declines(aten.cat, ([x, meta(2, 8, 4, 5)], 1))
    assert declines(aten.cat, ([meta(2, 8, 1, 1)], 1))  # both layouts at once: ambiguous


@pytest.mark.parametrize("dims", [[2, 3], [-1, -2], (3, 2)])
@pytest.mark.parametrize("keepdim", [True, False])
def test_spatial_mean_matches_the_real_kernel(dims, keepdim: bool) -> None:
    assert_like_real(aten.mean.dim, (x, dims, keepdim))
    assert_like_real(aten.mean.dim, (x, dims), {"keepdim": keepdim})


def test_spatial_mean_declines_other_reductions() -> None:
    assert declines(aten.mean, (x,))
    assert declines(aten.mean, (x, [1]))
    assert declines(aten.mean, (x_cl, [2, 3], True))
    assert declines(aten.mean, (x, [2, 3], False), {"dtype": torch.float64})


def test_addmm_matches_the_real_kernel_or_declines() -> None:
    bias, a, w = meta(10), meta(4, 16), meta(10, 16).t()
    assert_like_real(aten.addmm.default, (bias, a, w))
    assert declines(aten.addmm, (meta(1, 10), a, w))  # a broadcast bias
    assert declines(aten.addmm, (bias, a, w), {"beta": 0.5})


@pytest.mark.parametrize(
    "spec",
    [
        "resnet18",
        "shufflenet_v2_x0_5",
        "shufflenet_v1_g3_x0_5",
        "g1:c1=32,c2=64",
        "g3:c=32,fragments=4,layout=parallel",
        "g4:c=32",
    ],
)
def test_counts_are_the_same_with_and_without_the_rules(spec: str, monkeypatch) -> None:
    fast = counting.count(spec)
    plain = {k: v for k, v in FAST_META.items() if k not in META_SHAPE_RULES}
    monkeypatch.setattr(counting, "FAST_META", plain)
    slow = counting.count(spec)
    keys = ("params", "mult_adds", "mac_elements", "mac_bytes", "activation_peak_bytes")
    assert {k: getattr(fast, k) for k in keys} == {k: getattr(slow, k) for k in keys}
    assert fast.per_layer.equals(slow.per_layer)


@pytest.mark.slow
def test_counting_the_common_networks_imports_neither_dynamo_nor_sympy() -> None:
    code = (
        "import sys\nfrom bench.core.models import build_model\n"
        "from bench.measure.counting import count\n"
        "for spec in ('resnet50', 'resnext50_32x4d', 'shufflenet_v2_x1_0',\n"
        "             'shufflenet_v1_g3_x1_0'):\n"
        "    model = build_model(spec)\n"
        "    count(model), count(model.to('meta'))  # CPU weights, then meta ones\n"
        "heavy = ('torch._dynamo', 'torch.fx.experimental.symbolic_shapes')\n"
        "print(*(name in sys.modules for name in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "dilation", "groups"),
    [(56, 3, 1, 1, 1, 1), (224, 7, 2, 3, 1, 1), (15, 3, 2, 1, 1, 8), (9, 1, 1, 0, 1, 4),
     (28, 3, 1, 2, 2, 1), (7, 3, [2, 1], [1, 0], 1, 2)],
)  # fmt: skip
def test_convolution_matches_the_real_kernel(size, kernel, stride, padding, dilation, groups):
    x, w = meta(2, 8, size, size + 1), meta(16, 8 // groups, kernel, kernel)
    s, p, d = (v if isinstance(v, list) else [v, v] for v in (stride, padding, dilation))
    for bias in (None, meta(16)):
        assert_like_real(aten.convolution.default, (x, w, bias, s, p, d, False, [0, 0], groups))


def test_convolution_declines_transposed_channels_last_and_mismatched_groups() -> None:
    w = meta(16, 8, 3, 3)
    plain = (x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
    assert not declines(aten.convolution, plain)
    assert declines(aten.convolution, (*plain[:6], True, *plain[7:]))
    assert declines(aten.convolution, (x_cl, *plain[1:]))
    assert declines(aten.convolution, (*plain[:8], 2))
    assert declines(aten.convolution, (meta(2, 8, 5), meta(16, 8, 3), *plain[2:]))  # 1-d


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "ceil"),
    [([3, 3], [2, 2], [1, 1], False), ([2, 2], [2, 2], [0, 0], True), ([3], [], [0], True),
     ([3, 3], [1, 1], [1, 1], False), ([5, 3], [2, 3], [2, 1], True)],
)  # fmt: skip
def test_pooling_matches_the_real_kernels(kernel, stride, padding, ceil) -> None:
    for t in (meta(2, 8, 15, 15), meta(1, 4, 28, 27)):
        args = (t, kernel, stride, padding, [1, 1], ceil)
        assert_like_real(aten.max_pool2d_with_indices.default, args)
        assert_like_real(aten.avg_pool2d.default, (t, kernel, stride, padding, ceil))
    assert_like_real(aten.max_pool2d_with_indices.default, (meta(1, 2, 9, 9), [3, 3]))
    assert_like_real(aten.avg_pool2d.default, (meta(1, 2, 9, 9), [3, 3], [], [1], True, False))


def test_pooling_declines_over_half_window_padding_and_other_layouts() -> None:
    assert declines(aten.max_pool2d_with_indices, (x, [3, 3], [2, 2], [2, 2]))
    assert declines(aten.avg_pool2d, (x_cl, [2, 2]))
    assert declines(aten.max_pool2d_with_indices, (x, [3, 3]), {"ceil_mode": True})


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_channel_shuffle_matches_the_real_kernel(groups: int) -> None:
    assert_like_real(aten.channel_shuffle.default, (meta(2, 8, 5, 5), groups))
    assert declines(aten.channel_shuffle, (meta(2, 8, 5, 5), 3))
