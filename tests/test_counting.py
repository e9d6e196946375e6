"""Counting: hand-computed mult-adds and MAC on tiny nets, paper formulas, torchvision parity."""

from __future__ import annotations

import json
import random

import pytest
import torch
import torchvision.models as tvm
from torch import nn
from torch.nn import functional as F
from typer.testing import CliRunner

from bench.cli.app import app
from bench.core.errors import BenchError
from bench.measure.counting import count
from bench.measure.rules import FREE_OPS, MULT_ADD_HANDLERS, ZERO_MULT_ADD_OPS

F32 = 4


class Lambda(nn.Module):
    """A module whose forward is a given function (for one-op test nets)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def conv1x1(c1: int, c2: int, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c1, c2, 1, groups=groups, bias=False)


def test_op_sets_are_disjoint() -> None:
    handled = set(MULT_ADD_HANDLERS)
    assert not handled & FREE_OPS
    assert not handled & ZERO_MULT_ADD_OPS
    assert not FREE_OPS & ZERO_MULT_ADD_OPS


def test_1x1_conv_matches_paper_mac() -> None:
    c1, c2, h, w = 12, 20, 7, 9
    result = count(conv1x1(c1, c2), (c1, h, w))
    assert result.mult_adds == h * w * c1 * c2
    assert result.flops == 2 * result.mult_adds
    assert result.mac_elements == h * w * (c1 + c2) + c1 * c2
    assert result.mac_bytes == F32 * result.mac_elements
    assert result.params == c1 * c2
    assert result.unhandled == {}


def test_group_conv_matches_paper_mac() -> None:
    c1, c2, g, h, w = 16, 24, 4, 5, 6
    result = count(conv1x1(c1, c2, g), (c1, h, w))
    assert result.mult_adds == h * w * c1 * c2 // g
    assert result.mac_elements == h * w * (c1 + c2) + c1 * c2 // g


def test_depthwise_strided_conv_with_bias() -> None:
    c, h = 8, 10
    conv = nn.Conv2d(c, c, 3, stride=2, padding=1, groups=c, bias=True)
    result = count(conv, (c, h, h), batch=2)
    out = 2 * c * 5 * 5
    assert result.mult_adds == out * 9
    assert result.mac_elements == 2 * c * h * h + c * 9 + c + out
    assert result.params == c * 9 + c


def test_dilated_and_transposed_conv() -> None:
    dilated = nn.Conv2d(3, 4, 3, dilation=2, bias=False)
    assert count(dilated, (3, 9, 9)).mult_adds == 4 * 5 * 5 * 3 * 9
    transposed = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, bias=False)
    result = count(transposed, (4, 5, 5))
    assert result.mult_adds == 4 * 5 * 5 * (6 // 2) * 9  # every input element, C_out/g x k x k
    assert result.mac_elements == 4 * 25 + 4 * 3 * 9 + 6 * 11 * 11


def test_linear_counts_product_and_bias_reads() -> None:
    batch, n_in, n_out = 3, 10, 7
    result = count(nn.Linear(n_in, n_out), (n_in,), batch=batch)
    assert result.mult_adds == batch * n_in * n_out
    assert result.mac_elements == batch * n_in + n_in * n_out + n_out + batch * n_out
    ops = set(result.per_op["op"])
    assert "aten.addmm" in ops and result.unhandled == {}


def test_batched_matmul_decomposes_into_counted_bmm() -> None:
    other = torch.empty(2, 5, 6, device="meta")
    result = count(Lambda(lambda x: torch.matmul(x, other)), (2, 4, 5), batch=3)
    assert result.mult_adds == 3 * 2 * 4 * 5 * 6
    assert result.unhandled == {}


@pytest.mark.parametrize(
    "shuffle",
    [
        lambda x: F.channel_shuffle(x, 3),
        lambda x: x.view(1, 3, 2, 4, 4).transpose(1, 2).contiguous().view(1, 6, 4, 4),
    ],
    ids=["native", "view-transpose-contiguous"],
)
def test_channel_shuffle_is_zero_mult_adds_but_costs_a_copy(shuffle) -> None:
    result = count(Lambda(shuffle), (6, 4, 4))
    n = 6 * 4 * 4
    assert result.mult_adds == 0
    assert result.mac_elements == 2 * n  # read everything once, write everything once
    assert result.unhandled == {}


@pytest.mark.parametrize(
    ("fn", "factor"),
    [
        (lambda x: x + x, 3),  # reads two operands, writes one
        (F.relu, 2),
        (lambda x: F.relu(x, inplace=True), 2),  # in place: reads and writes its operand
        (lambda x: torch.cat([x, x], dim=1), 4),  # a copy: reads 2n, writes 2n
        (lambda x: x.view(-1).t().reshape(2, -1).unsqueeze(0), 0),  # views are free
    ],
    ids=["add", "relu", "relu_inplace", "cat", "views"],
)
def test_elementwise_and_copy_ops(fn, factor: int) -> None:
    result = count(Lambda(fn), (4, 3, 3), batch=1)
    assert result.mult_adds == 0
    assert result.mac_elements == factor * 4 * 3 * 3


def test_eval_batch_norm_counts_input_params_stats_and_output_only() -> None:
    c, h = 5, 4
    result = count(nn.BatchNorm2d(c), (c, h, h))
    assert result.mult_adds == 0
    assert result.mac_elements == 2 * c * h * h + 4 * c  # no saved statistics in inference


def test_g1_and_g2_mac_formulas_on_random_widths() -> None:
    rng = random.Random(1807)
    for _ in range(3):
        c1, c2, h = rng.randint(1, 64), rng.randint(1, 64), rng.randint(1, 16)
        result = count(f"g1:c1={c1},c2={c2},blocks=1,size={h}")
        assert result.mult_adds == 2 * h * h * c1 * c2
        assert result.mac_elements == 2 * (h * h * (c1 + c2) + c1 * c2)
        g = rng.choice([1, 2, 4, 8])
        c = g * rng.randint(1, 16)
        result = count(f"g2:c={c},groups={g},layers=3,size={h}")
        assert result.mult_adds == 3 * h * h * c * c // g
        assert result.mac_elements == 3 * (h * h * 2 * c + c * c // g)


TWINS = {
    "resnet18": tvm.ResNet18_Weights,
    "resnet34": tvm.ResNet34_Weights,
    "resnet50": tvm.ResNet50_Weights,
    "resnet101": tvm.ResNet101_Weights,
    "resnet152": tvm.ResNet152_Weights,
    "resnext50_32x4d": tvm.ResNeXt50_32X4D_Weights,
    "resnext101_32x8d": tvm.ResNeXt101_32X8D_Weights,
    "resnext101_64x4d": tvm.ResNeXt101_64X4D_Weights,
    "shufflenet_v2_x0_5": tvm.ShuffleNet_V2_X0_5_Weights,
    "shufflenet_v2_x1_0": tvm.ShuffleNet_V2_X1_0_Weights,
    "shufflenet_v2_x1_5": tvm.ShuffleNet_V2_X1_5_Weights,
    "shufflenet_v2_x2_0": tvm.ShuffleNet_V2_X2_0_Weights,
}


@pytest.mark.parametrize("name", list(TWINS))
def test_torchvision_parity_of_its_own_models(name: str) -> None:
    meta = TWINS[name].IMAGENET1K_V1.meta
    result = count(f"torchvision:{name}")
    # `_ops` is G mult-adds rounded to 3 decimals: within 0.5%, or the rounding for tiny nets
    assert result.mult_adds == pytest.approx(meta["_ops"] * 1e9, rel=0.005, abs=0.5e6)
    assert round(result.mult_adds / 1e9, 3) == meta["_ops"]
    assert result.params == meta["num_params"]
    assert result.unhandled == {}


def test_unhandled_op_is_reported_and_still_costs_mac() -> None:
    result = count(Lambda(lambda x: torch.cumprod(x, dim=1) + 1), (2, 8))
    assert result.unhandled == {"aten.cumprod": 1}
    row = result.per_op.set_index("op").loc["aten.cumprod"]
    assert row["kind"] == "unhandled" and row["calls"] == 1
    assert row["mac_elements"] == 2 * 16


@torch.library.custom_op("benchtest::scaled_matvec", mutates_args=())
def scaled_matvec(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A user's own op: x @ w.T, scaled (one multiply-accumulate per weight use)."""
    return 2.0 * x @ w.t()


@scaled_matvec.register_fake
def _(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x.new_empty((x.shape[0], w.shape[0]))


def matvec_rule(args: tuple, out: torch.Tensor) -> int:
    """The user's cost rule: batch x out features x in features."""
    x, w = args
    return x.shape[0] * w.shape[0] * w.shape[1]


@pytest.mark.parametrize(
    "key",
    [torch.ops.benchtest.scaled_matvec, "benchtest::scaled_matvec", "benchtest.scaled_matvec"],
)
def test_a_user_rule_costs_a_custom_op(key: object) -> None:
    weight = torch.randn(6, 5)
    model = Lambda(lambda x: scaled_matvec(x, weight.to(x.device)))
    plain = count(model, (5,), batch=3)
    assert plain.unhandled == {"benchtest.scaled_matvec": 1} and plain.mult_adds == 0
    ruled = count(model, (5,), batch=3, rules={key: matvec_rule})
    assert ruled.unhandled == {} and ruled.mult_adds == 3 * 6 * 5
    assert ruled.mac_elements == plain.mac_elements  # MAC keeps the generic rule


def test_a_rule_for_an_unknown_op_is_one_line() -> None:
    with pytest.raises(BenchError, match="no such op"):
        count(conv1x1(4, 4), (4, 8, 8), rules={"nolib::nothing": matvec_rule})
    with pytest.raises(BenchError, match="expected a callable"):
        count(conv1x1(4, 4), (4, 8, 8), rules={torch.ops.aten.mish: 3})


class Nested(nn.Module):
    """Two named stages; the root adds their outputs itself."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv1x1(4, 8), nn.ReLU())
        self.head = conv1x1(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        return y + self.head(y)


def test_per_layer_attributes_ops_to_innermost_module() -> None:
    result = count(Nested(), (4, 3, 3))
    table = result.per_layer
    assert list(zip(table["module"], table["op"], strict=True)) == [
        ("stem.0", "aten.convolution"),
        ("stem.1", "aten.relu"),
        ("head", "aten.convolution"),
        ("", "aten.add"),
    ]
    assert table["output_shape"].iloc[0] == "1x8x3x3"
    assert table["mult_adds"].sum() == result.mult_adds
    assert table["mac_bytes"].sum() == result.mac_bytes
    assert table["mult_adds_share"].sum() == pytest.approx(1.0)
    assert table["mac_share"].sum() == pytest.approx(1.0)
    assert result.per_op["calls"].sum() >= len(table)


def test_activation_peak_follows_tensor_lifetimes() -> None:
    c, h = 4, 5
    n_bytes = c * h * h * F32
    for depth in (3, 5):
        chain = nn.Sequential(*(conv1x1(c, c) for _ in range(depth)))
        # the input (held by the caller), the layer's input and its output
        assert count(chain, (c, h, h)).activation_peak_bytes == 3 * n_bytes


class Tied(nn.Module):
    """Two linear layers sharing one weight."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def test_tied_weights_count_once_and_identity_costs_nothing() -> None:
    result = count(Tied(), (4,))
    assert (result.params, result.mult_adds, result.mac_elements) == (16, 32, 2 * (4 + 16 + 4))
    empty = count(nn.Identity(), (3, 2, 2))
    assert (empty.mult_adds, empty.mac_bytes, len(empty.per_layer)) == (0, 0, 0)


def test_batch_and_dtype_scale_counts() -> None:
    net = Nested()
    one = count(net, (4, 3, 3))
    four = count(net, (4, 3, 3), batch=4, dtype="bfloat16")
    assert four.mult_adds == 4 * one.mult_adds
    assert four.mac_bytes == 2 * four.mac_elements
    assert four.dtype == "bfloat16" and four.batch == 4 and four.input == "4x3x3"


def test_model_is_left_as_it_was() -> None:
    net = Nested().train()
    count(net, (4, 3, 3))
    assert net.training and all(m.training for m in net.modules())
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in net.parameters())


def test_to_dict_is_json_ready() -> None:
    data = count(Nested(), "4x3x3").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["mult_adds_fvcore"] is None and data["input"] == "4x3x3"


def test_fvcore_total_is_carried() -> None:
    result = count(nn.Sequential(conv1x1(4, 6), conv1x1(6, 4)), (4, 5, 5), fvcore=True)
    assert result.mult_adds_fvcore == result.mult_adds == 25 * 4 * 6 * 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": 0}, "batch 0"),
        ({"batch": -2}, "batch -2"),
        ({"input_shape": "3x22"}, "3x22"),
        ({"input_shape": (3, 0, 4)}, "positive ints"),
        ({"dtype": "int8"}, "int8"),
        ({"input_shape": (5, 8, 8)}, "cannot count input 5x8x8"),
    ],
)
def test_bad_input_raises_one_line_bench_error(kwargs: dict, message: str) -> None:
    with pytest.raises(BenchError, match=message) as info:
        count(conv1x1(4, 4), **{"input_shape": (4, 8, 8), **kwargs})
    assert "\n" not in str(info.value)


def test_unknown_spec_and_missing_shape() -> None:
    with pytest.raises(BenchError, match="unknown model"):
        count("no_such_net")
    with pytest.raises(BenchError, match="input_shape is required"):
        count(conv1x1(4, 4))


runner = CliRunner()


def test_cli_json_has_the_result_fields() -> None:
    out = runner.invoke(app, ["count", "g1:c1=8,c2=8,blocks=1,size=4", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["mult_adds"] == 2 * 16 * 64
    assert data["mac_elements"] == 2 * (16 * 16 + 64)
    assert data["spec"] == "g1:c1=8,c2=8,blocks=1,size=4"


def test_cli_table_and_per_layer() -> None:
    args = ["count", "g2:c=8,groups=2,layers=2,size=4", "--per-layer", "--batch", "2"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "mac_bytes" in out.stdout and "per layer" in out.stdout and "50.0%" in out.stdout


@pytest.mark.parametrize(
    "args",
    [["--batch", "0"], ["--input", "3x224"], ["--dtype", "float64"]],
)
def test_cli_bad_input_exits_2(args: list[str]) -> None:
    out = runner.invoke(app, ["count", "resnet18", *args])
    assert out.exit_code == 2
