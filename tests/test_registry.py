"""The registry contract: names, wildcards, spec strings, torchvision: prefix and error messages."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import netdefs
from netdefs import format_spec, get_model, list_models, parse_spec, register_model, registry


def test_exact_names_are_registered() -> None:
    expected = {
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
        "resnext101_32x8d", "resnext101_64x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
        "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "g1", "g2", "g3", "g4",
    }  # fmt: skip
    assert expected <= set(list_models())


def test_wildcards_and_kind_filter() -> None:
    v1 = list_models("shufflenet_v1_*")
    assert len(v1) == 25 and v1 == sorted(v1)
    assert "shufflenet_v1_g3_x1_0" in v1 and "shufflenet_v1_g8_x0_25" in v1
    assert list_models("shufflenet_v2_x?_?") == [
        f"shufflenet_v2_x{w}" for w in ["0_5", "1_0", "1_5", "2_0"]
    ]
    assert list_models(kind="block") == ["g1", "g2", "g3", "g4"]
    assert "g1" not in list_models(kind="network")
    assert list_models("nothing*") == []


def test_duplicate_name_is_an_error() -> None:
    name = "test_registry_dummy"

    @register_model(name)
    def dummy() -> nn.Module:
        return nn.Identity()

    try:
        with pytest.raises(ValueError, match="already registered"):
            register_model(name)(dummy)
        assert get_model(name).input_shape == (3, 224, 224)
    finally:
        registry._REGISTRY.pop(name)


def test_unknown_name_lists_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'resnet5'.*closest:.*resnet50"):
        get_model("resnet5")


def test_unknown_option_names_field_and_allowed() -> None:
    with pytest.raises(ValueError, match=r"no option 'dropout'; allowed: .*num_classes.*"):
        get_model("resnet18:dropout=0.2")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("resnet18:num_classes=0", "num_classes"),
        ("resnet18:num_classes=ten", "num_classes"),
        ("shufflenet_v2_x0_5:include_top=maybe", "include_top"),
        ("resnet50:zero_init_residual=2", "zero_init_residual"),
        ("resnet:layers=3-4-6", "layers"),
        ("resnet:layers=3-x-6-3", "layers"),
        ("resnet:block=wide", "block"),
        ("resnet:groups=0,block=bottleneck", "groups"),
        ("resnet:groups=32,block=basic", "groups"),
        ("shufflenet_v1:groups=5", "groups"),
        ("shufflenet_v1:scale=-1", "scale"),
        ("g1:c1=0,c2=8", "c1"),
        ("g2:c=90,groups=8", "c=90"),
        ("g3:c=64,fragments=3", "fragments"),
        ("g3:c=64,layout=diagonal", "layout"),
        ("g4:c=32,relu=1", "relu"),
        ("g4:c=32,units=-2", "units"),
    ],
)
def test_invalid_values_name_the_field(spec: str, field: str) -> None:
    with pytest.raises(ValueError, match=rf"invalid {field}.*allowed"):
        get_model(spec)


def test_missing_required_option_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"g1.*c2"):
        get_model("g1:c1=8")


def test_spec_parsing_types() -> None:
    name, kwargs = parse_spec(" g4:c=32, relu=false,shortcut=True ")
    assert name == "g4" and kwargs == {"c": 32, "relu": False, "shortcut": True}
    assert parse_spec("shufflenet_v1:scale=0.75,groups=3")[1] == {"scale": 0.75, "groups": 3}
    assert parse_spec("g3:c=64,layout=parallel")[1]["layout"] == "parallel"
    assert parse_spec("resnet:layers=3-4-6-3")[1]["layers"] == "3-4-6-3"
    assert format_spec("g4", {"c": 32, "relu": False}) == "g4:c=32,relu=false"
    with pytest.raises(ValueError, match="key=value"):
        parse_spec("g1:c1")
    with pytest.raises(ValueError, match="non-empty"):
        parse_spec("  ")


def test_overrides_win_and_spec_is_canonical() -> None:
    model = get_model("g2:c=16,groups=2,layers=2", groups=4, size=8)
    assert model[0].groups == 4
    assert model.spec == "g2:c=16,groups=4,layers=2,size=8"
    assert model.input_shape == (16, 8, 8)


def test_torchvision_prefix() -> None:
    import torchvision

    model = get_model("torchvision:shufflenet_v2_x0_5:num_classes=7")
    assert isinstance(model, torchvision.models.ShuffleNetV2)
    assert model.input_shape == (3, 224, 224) and model.fc.out_features == 7
    assert model.spec == "torchvision:shufflenet_v2_x0_5:num_classes=7"
    with pytest.raises(ValueError, match=r"unknown torchvision model.*closest:.*resnet18"):
        get_model("torchvision:resnet18x")
    with pytest.raises(ValueError, match="weights"):
        get_model("torchvision:resnet18:weights=DEFAULT")


def test_block_input_shapes_are_their_own() -> None:
    assert get_model("g1:c1=128,c2=128,blocks=1").input_shape == (128, 56, 56)
    assert get_model("g3:c=128,fragments=2,blocks=1").input_shape == (91, 56, 56)
    assert get_model("g4:c=32,units=1").input_shape == (32, 56, 56)
    assert get_model("shufflenet_v1_g3_x0_25").input_shape == (3, 224, 224)


def test_package_reexports() -> None:
    assert netdefs.get_model is get_model and callable(netdefs.register_model)
    with torch.device("meta"):
        assert get_model("resnet:layers=1-1-1-1").spec == "resnet:layers=1-1-1-1"
