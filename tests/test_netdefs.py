"""Architectures: torchvision parity, ShuffleNet V1 complexity, forward/backward for every name."""

from __future__ import annotations

import pytest
import torch
import torchvision.models as tvm
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from netdefs import get_model, list_models
from netdefs.layers import channel_shuffle, make_divisible
from netdefs.shufflenet_v1 import PAPER_MULT_ADDS_M, STAGE2_WIDTH_1X, V1Config

TWINS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "resnext101_32x8d", "resnext101_64x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
]  # fmt: skip
SMALL_BLOCK_SPECS = {
    "g1": "g1:c1=8,c2=16,blocks=2,size=8",
    "g2": "g2:c=16,groups=4,layers=2,size=8",
    "g3": "g3:c=16,fragments=4,layout=parallel,blocks=2,size=8",
    "g4": "g4:c=8,units=2,size=8",
}
V1_TOLERANCE = {"x1_0": 0.03, "x0_5": 0.06, "x0_25": 0.12}


def mult_adds(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Mult-adds of one forward pass on a meta tensor (FlopCounterMode counts 2 per MAC)."""
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, *shape, device="meta"))
    return counter.get_total_flops() // 2


def n_params(model: nn.Module) -> int:
    """Total parameter count."""
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", TWINS)
def test_torchvision_parity(name: str) -> None:
    torch.manual_seed(0)
    theirs = tvm.get_model(name, weights=None, num_classes=10).eval()
    ours = get_model(name, num_classes=10).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert n_params(ours) == n_params(theirs)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name", ["resnet50", "shufflenet_v2_x1_0"])
def test_parameter_count_matches_torchvision_metadata(name: str) -> None:
    expected = {"resnet50": 25_557_032, "shufflenet_v2_x1_0": 2_278_604}[name]
    with torch.device("meta"):
        assert n_params(get_model(name)) == expected


@pytest.mark.parametrize(("groups", "width"), sorted(PAPER_MULT_ADDS_M))
def test_shufflenet_v1_mult_adds_match_paper(groups: int, width: str) -> None:
    with torch.device("meta"):
        model = get_model(f"shufflenet_v1_g{groups}_{width}")
    measured = mult_adds(model, (3, 224, 224)) / 1e6
    paper = PAPER_MULT_ADDS_M[(groups, width)]
    assert abs(measured / paper - 1) <= V1_TOLERANCE[width], f"{measured:.1f} M vs {paper} M"


def test_shufflenet_v1_widths_follow_the_rounding_rule() -> None:
    for groups, stage2 in STAGE2_WIDTH_1X.items():
        assert V1Config(groups, 1.0).stages == (stage2, 2 * stage2, 4 * stage2)
        assert V1Config(groups, 1.0).stem == 24
        for scale in (0.25, 0.5, 0.75, 1.5, 2.0):
            config = V1Config(groups, scale)
            first, *_ = config.stages
            assert first % groups == 0 and config.stem % groups == 0
            assert config.bottleneck(first) % groups == 0 and config.stem >= 8
    assert V1Config(8, 0.25).stem == 8 and V1Config(3, 0.25).stem == 12
    assert make_divisible(34, 4) == 36 and make_divisible(1, 8) == 8


def test_shufflenet_v1_unit_structure() -> None:
    model = get_model("shufflenet_v1_g3_x1_0")
    first, second = model.stage2[0], model.stage3[0]
    assert first.pw1[0].groups == 1 and second.pw1[0].groups == 3
    assert len(first.dw) == 2 and first.dw[0].groups == first.dw[0].in_channels
    assert first.pw2[0].out_channels == 240 - 24 and first.pw2[0].groups == 3
    assert [len(model.stage2), len(model.stage3), len(model.stage4)] == [4, 8, 4]
    assert model.fc.in_features == 960


def test_channel_shuffle_matches_view_transpose() -> None:
    x = torch.randn(2, 12, 3, 3)
    reference = x.view(2, 3, 4, 3, 3).transpose(1, 2).reshape(2, 12, 3, 3)
    assert torch.equal(channel_shuffle(x, 3), reference)
    assert channel_shuffle(x, 3)[0, 1].equal(x[0, 4])


def _small_spec(name: str) -> str:
    """A spec for `name` that builds quickly (few classes; small blocks)."""
    return SMALL_BLOCK_SPECS.get(name, f"{name}:num_classes=3")


@pytest.mark.parametrize("name", list_models())
def test_forward_every_registered_name(name: str) -> None:
    model = get_model(_small_spec(name)).eval()
    c, h, w = model.input_shape
    size = 32 if model.input_shape == (3, 224, 224) else h
    with torch.no_grad():
        out = model(torch.randn(1, c, size, size))
    assert torch.isfinite(out).all()
    assert out.shape == ((1, 3) if c == 3 else (1, c, size, size))


@pytest.mark.parametrize(
    "spec",
    ["resnet:layers=1-1-1-1,block=bottleneck,groups=4,width_per_group=8", "shufflenet_v2_x0_5",
     "shufflenet_v1_g3_x0_25", "g3:c=8,fragments=2,layout=parallel,blocks=2,size=4",
     "g4:c=4,units=2,size=4"],
)  # fmt: skip
def test_backward(spec: str) -> None:
    model = get_model(spec).train()
    c, h, _ = model.input_shape
    size = 32 if c == 3 else h
    model(torch.randn(2, c, size, size)).square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize(
    ("name", "features"),
    [("resnet18", 512), ("resnet50", 2048), ("shufflenet_v2_x1_0", 1024),
     ("shufflenet_v1_g3_x1_0", 960)],
)  # fmt: skip
def test_include_top_false_returns_pooled_features(name: str, features: int) -> None:
    model = get_model(name, include_top=False).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, features) and model.num_features == features
    assert not any(k.startswith("fc.") for k in model.state_dict())


def test_zero_init_residual() -> None:
    model = get_model("resnet:layers=1-1-1-1,block=bottleneck", zero_init_residual=True)
    assert all(b.bn3.weight.abs().sum() == 0 for b in model.modules() if hasattr(b, "bn3"))
    plain = get_model("resnet18")
    assert plain.layer1[0].bn2.weight.abs().sum() > 0
    assert get_model("resnet18:zero_init_residual=true").layer1[0].bn2.weight.abs().sum() == 0


def test_generic_resnext_spec_equals_named_variant() -> None:
    with torch.device("meta"):
        generic = get_model("resnet:layers=3-4-6-3,block=bottleneck,groups=32,width_per_group=4")
        named = get_model("resnext50_32x4d")
    assert n_params(generic) == n_params(named)
    assert [k for k in generic.state_dict()] == [k for k in named.state_dict()]
