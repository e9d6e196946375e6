"""torchvision at its published configuration and native size, timm, and the rules they need."""

from __future__ import annotations

import json
import statistics
import time

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from bench.cli.app import app
from bench.core.errors import BenchError
from bench.core.models import build_model
from bench.measure.counting import count
from bench.measure.rules import FUSED_ATTENTION_OPS, MULT_ADD_HANDLERS
from bench.runs.suite import load_suite, resolve_suite_path
from netdefs import get_model, list_models, parse_spec
from netdefs.zoo import published_weights, torchvision_classification_names

MULT_ADD_TOLERANCE = 0.005  # the "or within 0.5%" beside the three published decimals


def published(name: str) -> dict:
    """The DEFAULT weights' metadata of a torchvision model (nothing downloaded)."""
    return published_weights(name).meta


def matches_published(mult_adds: int, ops: float) -> bool:
    """Mult-adds equal to the published GFLOPS at its three decimals, or within 0.5%."""
    giga = mult_adds / 1e9
    return round(giga, 3) == ops or abs(giga - ops) <= MULT_ADD_TOLERANCE * ops


@pytest.mark.slow
def test_every_torchvision_classification_model_counts_as_published() -> None:
    names = torchvision_classification_names()
    assert len(names) >= 80
    wrong, seconds = {}, []
    for name in names:
        meta = published(name)
        start = time.perf_counter()
        result = count(f"torchvision:{name}")
        seconds.append(time.perf_counter() - start)
        if (
            result.params != meta["num_params"]
            or not matches_published(result.mult_adds, meta["_ops"])
            or result.unhandled
        ):
            wrong[name] = (result.params, result.mult_adds, result.unhandled)
    assert wrong == {}
    print(f"zoo: {len(names)} models, median {statistics.median(seconds):.3f} s per count")


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("efficientnet_b7", (3, 600, 600)),
        ("inception_v3", (3, 299, 299)),
        ("vit_h_14", (3, 518, 518)),
        ("efficientnet_v2_s", (3, 384, 384)),
        ("regnet_y_128gf", (3, 384, 384)),
        ("resnet50", (3, 224, 224)),
        ("r3d_18", (3, 16, 112, 112)),
    ],
)
def test_native_input_is_the_published_crop(name: str, shape: tuple[int, ...]) -> None:
    assert build_model(f"torchvision:{name}", meta=True).input_shape == shape


def test_googlenet_and_inception_take_the_published_configuration() -> None:
    googlenet = build_model("torchvision:googlenet", meta=True)
    assert googlenet.aux1 is None and googlenet.transform_input
    assert sum(p.numel() for p in googlenet.parameters()) == 6_624_904
    inception = build_model("torchvision:inception_v3", meta=True)
    assert inception.AuxLogits is not None and inception.transform_input
    with_aux = build_model("torchvision:googlenet:aux_logits=true", meta=True)
    assert with_aux.aux1 is not None  # any builder argument stays overridable


def test_published_counts_of_models_that_were_wrong_before() -> None:
    others = ("fcn_resnet50", "lraspp_mobilenet_v3_large", "r3d_18", "quantized_googlenet")
    for name in ("googlenet", "regnet_x_400mf", "vit_b_16", "swin_t", "efficientnet_b1", *others):
        meta, result = published(name), count(f"torchvision:{name}")
        assert result.params == meta["num_params"], name
        assert matches_published(result.mult_adds, meta["_ops"]), name
        assert result.unhandled == {}, name


def test_meta_build_falls_back_to_the_cpu_for_builders_reading_values() -> None:
    with pytest.raises(NotImplementedError), torch.device("meta"):
        get_model("torchvision:regnet_x_400mf")  # its builder calls .tolist()
    model = build_model("torchvision:regnet_x_400mf", meta=True)
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 5_495_976


def test_segmentation_builds_without_downloading_a_backbone() -> None:
    model = build_model("torchvision:fcn_resnet50", meta=True)
    assert model.input_shape == (3, 520, 520)
    assert build_model("torchvision:fcn_resnet50:weights_backbone=none", meta=True) is not None
    with pytest.raises(BenchError, match="backbone weights are not downloaded"):
        build_model("torchvision:fcn_resnet50:weights_backbone=DEFAULT", meta=True)
    with pytest.raises(BenchError, match="weights=none only"):
        build_model("torchvision:resnet18:weights=DEFAULT", meta=True)


def test_user_input_that_the_model_refuses_is_one_line() -> None:
    with pytest.raises(BenchError, match="cannot count input 3x160x160") as info:
        count("torchvision:vit_b_16", input_shape="3x160x160")
    assert "AssertionError" in str(info.value) and "\n" not in str(info.value)


def test_trilinear_and_addbmm_carry_mult_adds() -> None:
    bilinear = count(BilinearOfHalves(), (11,), batch=3)
    assert bilinear.mult_adds == 3 * 7 * 5 * 6 and bilinear.unhandled == {}
    addbmm = count(AddBmm(), (2, 3, 5), batch=1)
    assert addbmm.mult_adds == 2 * 3 * 5 * 4 and addbmm.unhandled == {}


def test_fused_attention_handler_counts_both_products() -> None:
    q = torch.empty(2, 4, 10, 8, device="meta")
    v = torch.empty(2, 4, 12, 6, device="meta")
    k = torch.empty(2, 4, 12, 8, device="meta")
    for op in FUSED_ATTENTION_OPS:
        assert MULT_ADD_HANDLERS[op]((q, k, v), None) == 2 * 4 * 10 * 12 * (8 + 6)


def test_attention_math_path_counts_like_its_matmuls() -> None:
    attention = nn.MultiheadAttention(16, 4, batch_first=True)
    result = count(SelfAttention(attention), (10, 16), batch=2)
    projections = 2 * 10 * 16 * 16 * 4  # q, k, v and out
    products = 2 * 4 * 10 * 10 * (16 // 4) * 2
    assert result.mult_adds == projections + products and result.unhandled == {}


class BilinearOfHalves(nn.Module):
    """nn.Bilinear(5, 6, 7) of the first 5 and the last 6 of 11 input features."""

    def __init__(self) -> None:
        super().__init__()
        self.bilinear = nn.Bilinear(5, 6, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """bilinear(x[:, :5], x[:, 5:])."""
        return self.bilinear(x[:, :5], x[:, 5:])


class AddBmm(nn.Module):
    """addbmm of the input with a fixed (2, 5, 4) batch of matrices."""

    def __init__(self) -> None:
        super().__init__()
        self.right = nn.Parameter(torch.zeros(2, 5, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over the batch of x[b] @ right[b], plus zeros."""
        return torch.addbmm(x.new_zeros(3, 4), x[0], self.right)


class SelfAttention(nn.Module):
    """Self-attention of a sequence (the module's output only)."""

    def __init__(self, attention: nn.MultiheadAttention) -> None:
        super().__init__()
        self.attention = attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """attention(x, x, x) without its weights."""
        return self.attention(x, x, x, need_weights=False)[0]


def test_timm_models_build_never_pretrained_at_their_config_size() -> None:
    model = build_model("timm:resnet18", meta=True)
    assert model.input_shape == (3, 224, 224)
    assert sum(p.numel() for p in model.parameters()) == 11_689_512
    assert build_model("timm:inception_v3", meta=True).input_shape == (3, 299, 299)
    assert build_model("timm:resnet18:num_classes=10", meta=True).fc.out_features == 10
    with pytest.raises(BenchError, match="pretrained=false only"):
        build_model("timm:resnet18:pretrained=true", meta=True)
    with pytest.raises(BenchError, match="unknown timm model.*closest"):
        build_model("timm:resnet18x", meta=True)


def test_timm_count_matches_torchvision_on_the_same_network() -> None:
    ours, theirs = count("timm:resnet50"), count("torchvision:resnet50")
    assert (ours.params, ours.mult_adds) == (theirs.params, theirs.mult_adds)
    assert ours.unhandled == {}


def test_zoo_names_list_with_their_prefix() -> None:
    timm_names = list_models("timm:resnet1*")
    assert "timm:resnet18" in timm_names and all(n.startswith("timm:") for n in timm_names)
    assert list_models("resnet1*", source="timm") == timm_names
    assert "torchvision:vit_h_14" in list_models(source="torchvision")
    assert list_models("vit_*", kind="block", source="torchvision") == []
    with pytest.raises(ValueError, match="unknown model source"):
        list_models(source="keras")


def test_zoo_specs_parse_with_options() -> None:
    assert parse_spec("timm:vit_tiny_patch16_224:img_size=160") == (
        "timm:vit_tiny_patch16_224",
        {"img_size": 160},
    )
    model = build_model("timm:vit_tiny_patch16_224:img_size=160", meta=True)
    assert model.input_shape == (3, 160, 160)
    assert model.spec == "timm:vit_tiny_patch16_224:img_size=160"


@pytest.mark.slow
def test_zoo_suite_holds_every_torchvision_classification_model_and_timm() -> None:
    suite = load_suite(resolve_suite_path("zoo"))
    models = [case.model for case in suite.cases]
    torchvision = {m.removeprefix("torchvision:") for m in models if m.startswith("torchvision:")}
    assert torchvision == set(torchvision_classification_names())
    assert sum(m.startswith("timm:") for m in models) >= 20
    for case in suite.cases:
        assert set(case.metrics) == {"count", "latency"} and case.batch == 1
        if case.model == "torchvision:efficientnet_b7":
            assert case.input == (3, 600, 600) and dict(case.ref)["params"] == 66_347_960


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (["count", "torchvision:vit_b_16", "--input", "3x160x160"], ["cannot count input"]),
        (["time", "torchvision:vit_b_16", "--input", "3x160x160"], ["cannot run", "160"]),
        (["count", "torchvision:fcn_resnet50:weights_backbone=DEFAULT"], ["not downloaded"]),
        (["count", "torchvision:resnet18:weights=DEFAULT"], ["not downloaded"]),
        (["count", "torchvision:resnet18:depth=3"], ["unexpected keyword", "depth"]),
        (["count", "timm:resnet18:pretrained=true"], ["pretrained=false only"]),
        (["count", "timm:no_such_net_13"], ["unknown timm model"]),
        (["list", "models", "--source", "keras"], ["--source", "keras", "timm"]),
    ],
)
def test_zoo_errors_are_one_line_exit_2(args: list[str], parts: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.stderr.split())
    assert text.startswith("error:") and text.count("error:") == 1 and "Traceback" not in text
    for part in parts:
        assert part in text, text


def test_regnet_and_detection_count_from_the_cli() -> None:
    regnet = CliRunner().invoke(app, ["count", "torchvision:regnet_y_400mf", "--json"])
    assert regnet.exit_code == 0, regnet.output
    assert json.loads(regnet.stdout)["params"] == published("regnet_y_400mf")["num_params"]
    model = build_model("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", meta=True)
    # built without downloading backbone weights; the published 19,386,354 params freeze the
    # backbone's batch norms (buffers, not params), which only a trained backbone gets
    assert sum(p.numel() for p in model.parameters()) == 19_410_754


def test_list_models_shows_family_input_and_params() -> None:
    args = ["list", "models", "--source", "torchvision", "--pattern", "vit_h*"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "vit_h_14" in line)
    assert "vision_transformer" in row and "3x518x518" in row and "633 M" in row
    assert "timm:<name>" in " ".join(result.stderr.split())
