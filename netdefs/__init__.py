"""Network definitions: a registry of ResNet/ResNeXt, ShuffleNet V1/V2 and guideline blocks."""

from netdefs import guidelines, resnet, shufflenet_v1, shufflenet_v2
from netdefs.registry import format_spec, get_model, list_models, parse_spec, register_model

__all__ = [
    "format_spec",
    "get_model",
    "guidelines",
    "list_models",
    "parse_spec",
    "register_model",
    "resnet",
    "shufflenet_v1",
    "shufflenet_v2",
]
