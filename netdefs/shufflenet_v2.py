"""ShuffleNet V2 (Ma et al. 2018), module names identical to torchvision's."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from netdefs.layers import channel_shuffle, conv_bn_act
from netdefs.registry import register_model
from netdefs.validate import head_options


@dataclass(frozen=True)
class V2Config:
    """Output channels of conv1, stages 2-4 and conv5 (paper Table 5), and the stage repeats."""

    channels: tuple[int, int, int, int, int]
    repeats: tuple[int, int, int] = (4, 8, 4)


V2_CONFIGS: dict[str, V2Config] = {
    "x0_5": V2Config((24, 48, 96, 192, 1024)),
    "x1_0": V2Config((24, 116, 232, 464, 1024)),
    "x1_5": V2Config((24, 176, 352, 704, 1024)),
    "x2_0": V2Config((24, 244, 488, 976, 2048)),
}


def _depthwise_bn(channels: int, stride: int) -> list[nn.Module]:
    """3x3 depthwise conv and BatchNorm (no ReLU), as a list of layers."""
    conv = nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False)
    return [conv, nn.BatchNorm2d(channels)]


class InvertedResidual(nn.Module):
    """The V2 unit: split (or use the whole input twice when stride 2), two branches, shuffle."""

    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(*_depthwise_bn(inp, stride), *conv_bn_act(inp, branch))
        self.branch2 = nn.Sequential(
            *conv_bn_act(inp if stride > 1 else branch, branch),
            *_depthwise_bn(branch, stride),
            *conv_bn_act(branch, branch),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Two half-width branches, concatenated and shuffled with 2 groups."""
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """conv1, maxpool, stage2-4, conv5, global average pool, fc (torchvision's names)."""

    def __init__(self, config: V2Config, num_classes: int = 1000, include_top: bool = True) -> None:
        super().__init__()
        stem, *stages, last = config.channels
        self.conv1 = conv_bn_act(3, stem, 3, stride=2)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inp = stem
        for index, (out, repeats) in enumerate(zip(stages, config.repeats, strict=True), start=2):
            units = [InvertedResidual(inp, out, 2)]
            units += [InvertedResidual(out, out, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{index}", nn.Sequential(*units))
            inp = out
        self.conv5 = conv_bn_act(inp, last)
        self.num_features = last
        self.fc = nn.Linear(last, num_classes) if include_top else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, num_classes), or pooled features (N, C) when include_top=False."""
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))


def _register_variant(width: str, mult_adds: str) -> None:
    """Register `shufflenet_v2_<width>`, one builder per entry of V2_CONFIGS."""

    def build(num_classes: int = 1000, include_top: bool = True) -> ShuffleNetV2:
        num_classes, include_top = head_options(num_classes, include_top)
        return ShuffleNetV2(V2_CONFIGS[width], num_classes, include_top)

    name = f"shufflenet_v2_{width}"
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"ShuffleNet V2 {width[1:].replace('_', '.')}x ({mult_adds} mult-adds)."
    register_model(name, family="shufflenet_v2")(build)


for _width, _mult_adds in zip(V2_CONFIGS, ("41 M", "146 M", "299 M", "591 M"), strict=True):
    _register_variant(_width, _mult_adds)
