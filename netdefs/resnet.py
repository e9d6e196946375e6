"""ResNet and ResNeXt (stride on the bottleneck's 3x3, "v1.5"), names identical to torchvision's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from netdefs.registry import register_model
from netdefs.validate import boolean, head_options, one_of, positive_int


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """Bias-free 3x3 convolution with padding 1."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """Bias-free 1x1 convolution."""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def last_bn(self) -> nn.BatchNorm2d:
        """The BatchNorm before the residual add (zeroed by zero_init_residual)."""
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        """Residual forward pass."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (grouped, carries the stride) -> 1x1 with a residual connection."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def last_bn(self) -> nn.BatchNorm2d:
        """The BatchNorm before the residual add (zeroed by zero_init_residual)."""
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        """Residual forward pass."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


class ResNet(nn.Module):
    """Stem, four residual stages, global average pool and (unless include_top=False) the fc."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
        include_top: bool = True,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        self.inplanes = 64
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = 512 * block.expansion
        self.fc = nn.Linear(self.num_features, num_classes) if include_top else nn.Identity()
        self._init_weights(zero_init_residual)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        """One stage: a first block that may downsample, then `blocks - 1` identity blocks."""
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        units = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        units += [
            block(self.inplanes, planes, groups=self.groups, base_width=self.base_width)
            for _ in range(1, blocks)
        ]
        return nn.Sequential(*units)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """He-normal convs, unit BatchNorms; optionally zero the last BN of every block."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, BasicBlock | Bottleneck):
                    nn.init.constant_(module.last_bn().weight, 0)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, num_classes), or pooled features (N, C) when include_top=False."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def parse_layers(layers: str | int | Sequence[int]) -> tuple[int, int, int, int]:
    """Four block counts from "3-4-6-3" (or a sequence of four ints); ValueError otherwise."""
    parts = layers.split("-") if isinstance(layers, str) else layers
    message = f"invalid layers={layers!r}; allowed: four positive block counts such as 3-4-6-3"
    if isinstance(parts, int) or len(parts) != 4:
        raise ValueError(message)
    try:
        counts = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if min(counts) <= 0:
        raise ValueError(message)
    return counts  # type: ignore[return-value]


def resnet_layout(
    layers: str | Sequence[int], block: str, groups: int, width_per_group: int
) -> tuple[tuple[int, int, int, int], str, int, int]:
    """The family's checked layout (block counts, block name, groups, width per group).

    One check for every twin of the family (the PyTorch modules here, the Keras ones in
    `netdefs.keras_resnet`); ValueError naming the field and the allowed values.
    """
    counts = parse_layers(layers)
    block = one_of("block", block, BLOCKS)
    groups = positive_int("groups", groups)
    width_per_group = positive_int("width_per_group", width_per_group)
    if block == "basic" and (groups, width_per_group) != (1, 64):
        raise ValueError(
            f"invalid groups={groups}, width_per_group={width_per_group} for block=basic; "
            "allowed: groups=1, width_per_group=64 (or block=bottleneck)"
        )
    return counts, block, groups, width_per_group


@register_model("resnet")
def resnet(
    layers: str | Sequence[int] = "2-2-2-2",
    block: str = "basic",
    groups: int = 1,
    width_per_group: int = 64,
    num_classes: int = 1000,
    include_top: bool = True,
    zero_init_residual: bool = False,
) -> ResNet:
    """The ResNet/ResNeXt family: `resnet:layers=3-4-6-3,block=bottleneck,groups=32,...`."""
    counts, block, groups, width_per_group = resnet_layout(layers, block, groups, width_per_group)
    num_classes, include_top = head_options(num_classes, include_top)
    return ResNet(
        BLOCKS[block],
        counts,
        num_classes=num_classes,
        include_top=include_top,
        zero_init_residual=boolean("zero_init_residual", zero_init_residual),
        groups=groups,
        width_per_group=width_per_group,
    )


@dataclass(frozen=True)
class ResNetVariant:
    """One named member of the family: its layout, block type, cardinality and width."""

    layers: str
    block: str
    groups: int = 1
    width_per_group: int = 64
    doc: str = ""


VARIANTS: dict[str, ResNetVariant] = {
    "resnet18": ResNetVariant("2-2-2-2", "basic", doc="ResNet-18 (He et al. 2016)."),
    "resnet34": ResNetVariant("3-4-6-3", "basic", doc="ResNet-34."),
    "resnet50": ResNetVariant("3-4-6-3", "bottleneck", doc="ResNet-50 (stride on the 3x3)."),
    "resnet101": ResNetVariant("3-4-23-3", "bottleneck", doc="ResNet-101."),
    "resnet152": ResNetVariant("3-8-36-3", "bottleneck", doc="ResNet-152."),
    "resnext50_32x4d": ResNetVariant(
        "3-4-6-3", "bottleneck", 32, 4, "ResNeXt-50, cardinality 32, width 4 per group."
    ),
    "resnext101_32x8d": ResNetVariant(
        "3-4-23-3", "bottleneck", 32, 8, "ResNeXt-101, cardinality 32, width 8 per group."
    ),
    "resnext101_64x4d": ResNetVariant(
        "3-4-23-3", "bottleneck", 64, 4, "ResNeXt-101, cardinality 64, width 4 per group."
    ),
}


def _register_variant(name: str, variant: ResNetVariant) -> None:
    """Register `name` as a builder of one table entry (head options only)."""

    def build(
        num_classes: int = 1000, include_top: bool = True, zero_init_residual: bool = False
    ) -> ResNet:
        return resnet(
            variant.layers,
            variant.block,
            variant.groups,
            variant.width_per_group,
            num_classes,
            include_top,
            zero_init_residual,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = variant.doc
    register_model(name, family="resnet")(build)


for _name, _variant in VARIANTS.items():
    _register_variant(_name, _variant)
