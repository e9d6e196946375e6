"""Other zoos behind the registry: torchvision at its published configuration, and timm.

Neither downloads anything. A `torchvision:<name>` model is built the way its published
(DEFAULT) weights' builder builds it: the number of classes, the auxiliary heads and input
transform, and the image size are read from the weights' metadata (which is in torchvision's
code, not in the weights file), and `model.input_shape` is the weights' crop size (16 frames for
video models). Segmentation and detection builders get `weights_backbone=None`. A `timm:<name>`
model is `timm.create_model(name, pretrained=False)` with the input size of its pretrained
config. Both libraries are imported only when such a spec is built or listed.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from netdefs.validate import shown

TORCHVISION_PREFIX = "torchvision:"
TIMM_PREFIX = "timm:"
VIDEO_FRAMES = 16  # torchvision's video weights are evaluated on 16-frame clips
NO_WEIGHTS = (None, "none", "None", False)

# What the published weights' builder sets beyond the number of classes (torchvision's
# googlenet drops its auxiliary heads after loading; inception_v3 keeps them in its params).
PUBLISHED_KEYWORDS: dict[str, dict[str, Any]] = {
    "googlenet": {"transform_input": True, "aux_logits": False, "init_weights": False},
    "inception_v3": {"transform_input": True, "aux_logits": True, "init_weights": False},
}
PUBLISHED_KEYWORDS.update({f"quantized_{k}": v for k, v in list(PUBLISHED_KEYWORDS.items())})
# Builder keywords the weights' builder sets for every model of a name prefix (from the
# weights' metadata where it reads them there).
META_KEYWORDS: tuple[tuple[str, str, Callable[[dict], Any]], ...] = (
    ("vit_", "image_size", lambda meta: meta["min_size"][0]),
    ("maxvit_", "input_size", lambda meta: tuple(meta["min_size"])),
    ("fcn_", "aux_loss", lambda meta: True),  # the published weights carry the auxiliary head
    ("deeplabv3_", "aux_loss", lambda meta: True),
)
BACKBONE_FAMILIES = ("detection", "segmentation")


@dataclass(frozen=True)
class ZooInfo:
    """What `bench list models` shows of one model: family, native input and (maybe) params."""

    name: str
    family: str
    input_shape: tuple[int, ...] | None
    params: int | None


def close_names(name: str, names: list[str]) -> str:
    """`; closest: a, b` for the names nearest to `name` (empty when none is close)."""
    close = difflib.get_close_matches(name[:100], names, n=5, cutoff=0.5)
    return f"; closest: {', '.join(close)}" if close else ""


def torchvision_names() -> list[str]:
    """Every model torchvision's registry builds (classification, video, detection, ...)."""
    import torchvision.models as tvm

    return list(tvm.list_models())


def torchvision_classification_names() -> list[str]:
    """torchvision's image classification models (those in `torchvision.models` itself)."""
    import torchvision.models as tvm

    return list(tvm.list_models(module=tvm))


def torchvision_family(name: str) -> str:
    """The torchvision module a model comes from (`resnet`, `video`, `detection`, ...)."""
    import torchvision.models as tvm

    parts = tvm.get_model_builder(name).__module__.split(".")
    return parts[2] if len(parts) > 3 else parts[-1]


def published_weights(name: str) -> Any:
    """The DEFAULT weights entry of a torchvision model (metadata only; nothing is fetched)."""
    import torchvision.models as tvm

    return tvm.get_model_weights(name).DEFAULT


def published_keywords(name: str, meta: dict) -> dict[str, Any]:
    """The builder keywords of the published configuration of a torchvision model."""
    keywords: dict[str, Any] = {}
    if "categories" in meta:
        keywords["num_classes"] = len(meta["categories"])
    keywords.update(PUBLISHED_KEYWORDS.get(name, {}))
    for prefix, key, value in META_KEYWORDS:
        if name.startswith(prefix):
            keywords[key] = value(meta)
    if torchvision_family(name) in BACKBONE_FAMILIES:
        keywords["weights_backbone"] = None
    return keywords


def native_torchvision_shape(weights: Any, keywords: dict[str, Any]) -> tuple[int, ...]:
    """The input the published numbers use: crop size (or resize size), frames for video."""
    transform = getattr(weights, "transforms", None)
    options = getattr(transform, "keywords", None) or {}
    if "image_size" in keywords:
        size: Any = keywords["image_size"]
    elif "input_size" in keywords:
        size = keywords["input_size"]
    else:
        size = options.get("crop_size", options.get("resize_size", 224))
    height, width = (size, size) if isinstance(size, int) else (size[0], size[-1])
    preset = getattr(transform, "func", transform)
    if getattr(preset, "__name__", "") == "VideoClassification":
        return (3, VIDEO_FRAMES, int(height), int(width))
    return (3, int(height), int(width))


def torchvision_model(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """torchvision's model at its published configuration, spec keywords overriding it."""
    import torchvision.models as tvm

    names = torchvision_names()
    if name not in names:
        raise ValueError(f"unknown torchvision model {shown(name)}{close_names(name, names)}")
    if kwargs.get("weights") not in NO_WEIGHTS:
        raise ValueError(
            "torchvision weights are not downloaded here (weights=none only); "
            "load a checkpoint instead"
        )
    weights = published_weights(name)
    keywords = published_keywords(name, weights.meta)
    keywords.update({k: v for k, v in kwargs.items() if k != "weights"})
    if keywords.get("weights_backbone", None) not in NO_WEIGHTS:
        raise ValueError("backbone weights are not downloaded here (weights_backbone=none only)")
    if "weights_backbone" in keywords:
        keywords["weights_backbone"] = None
    try:
        model = tvm.get_model(name, weights=None, **keywords)
    except TypeError as exc:
        raise ValueError(f"torchvision model {name!r}: {exc}") from None
    model.input_shape = native_torchvision_shape(weights, keywords)
    return model


def timm_names(pattern: str | None = None) -> list[str]:
    """timm's model names, filtered by a shell-style wildcard."""
    import timm

    return list(timm.list_models(pattern or "*"))


def timm_model(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """timm's model, never pretrained, with the input size of its pretrained config."""
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown timm model {shown(name)}{close_names(name, timm_names())}")
    if kwargs.get("pretrained") not in (None, False):
        raise ValueError("timm weights are not downloaded here (pretrained=false only)")
    kwargs = {k: v for k, v in kwargs.items() if k != "pretrained"}
    try:
        model = timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as exc:
        raise ValueError(f"timm model {name!r}: {exc}") from None
    channels, height, width = model.pretrained_cfg.get("input_size", (3, 224, 224))
    size = kwargs.get("img_size")
    if isinstance(size, int) and not isinstance(size, bool):
        height = width = size
    model.input_shape = (int(kwargs.get("in_chans", channels)), int(height), int(width))
    return model


def timm_family(name: str) -> str:
    """The timm module that defines a model (`resnet`, `vision_transformer`, ...)."""
    import timm

    return timm.models.model_entrypoint(name).__module__.rsplit(".", 1)[-1]


def zoo_names(prefix: str, pattern: str | None) -> list[str]:
    """Sorted names (with their prefix) from torchvision or timm, filtered by a wildcard."""
    names = timm_names(pattern) if prefix == TIMM_PREFIX else torchvision_names()
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return sorted(prefix + n for n in names)


def torchvision_info(name: str) -> ZooInfo:
    """Family, native input and published params of a torchvision model (nothing is built)."""
    weights = published_weights(name)
    shape = native_torchvision_shape(weights, published_keywords(name, weights.meta))
    params = weights.meta.get("num_params")
    return ZooInfo(TORCHVISION_PREFIX + name, torchvision_family(name), shape, params)


def timm_input_shape(name: str) -> tuple[int, ...] | None:
    """The input size of a timm model's default pretrained config (nothing is built)."""
    import timm.models

    config = timm.models.get_pretrained_cfg(name)
    size = getattr(config, "input_size", None)
    return tuple(int(d) for d in size) if size else None
