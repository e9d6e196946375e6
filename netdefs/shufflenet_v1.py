"""ShuffleNet V1 (Zhang et al. 2018), built from the paper; torchvision has no V1.

Channel rule at width multiplier s with g groups (every group conv divides evenly at every width):
- Stage 2 width = s x the paper's 1x width, rounded to the nearest multiple of g (halves up);
  Stages 3 and 4 are exactly 2x and 4x Stage 2, as in the paper.
- bottleneck = stage width / 4, rounded to the nearest multiple of g (halves up).
- conv1 width = 24 x max(s, 0.5), rounded down to a multiple of g (at least g): conv1 is not
  scaled below 12 channels (8 for g=8); with 6 channels the 0.25x models count about 11 M
  mult-adds, with 12 they come near the paper's 13 M.
So the stride-2 unit's concat branch (stage width - input width) is a multiple of g too. At 1x and
2x (g=3) the rule reproduces the paper's widths and complexities (137.5 M and 524 M for g=3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from netdefs.layers import channel_shuffle, conv_bn_act, make_divisible
from netdefs.registry import register_model
from netdefs.validate import head_options, one_of, positive_number

STAGE2_WIDTH_1X: dict[int, int] = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}
STEM_WIDTH_1X = 24
STAGE_REPEATS = (4, 8, 4)
WIDTHS: dict[str, float] = {"x0_25": 0.25, "x0_5": 0.5, "x1_0": 1.0, "x1_5": 1.5, "x2_0": 2.0}
PAPER_MULT_ADDS_M: dict[tuple[int, str], float] = {
    **{(g, "x1_0"): m for g, m in zip((1, 2, 3, 4, 8), (143, 140, 137, 133, 137), strict=True)},
    **{(g, "x0_5"): 38.0 for g in STAGE2_WIDTH_1X},
    **{(g, "x0_25"): 13.0 for g in STAGE2_WIDTH_1X},
}


@dataclass(frozen=True)
class V1Config:
    """One ShuffleNet V1 variant: groups g and width multiplier s."""

    groups: int
    scale: float

    @property
    def stem(self) -> int:
        """conv1 output channels: 24 x max(s, 0.5), rounded down to a multiple of g."""
        return max(
            self.groups, int(STEM_WIDTH_1X * max(self.scale, 0.5)) // self.groups * self.groups
        )

    @property
    def stages(self) -> tuple[int, int, int]:
        """Output channels of Stages 2, 3 and 4."""
        stage2 = make_divisible(self.scale * STAGE2_WIDTH_1X[self.groups], self.groups)
        return stage2, 2 * stage2, 4 * stage2

    def bottleneck(self, out_channels: int) -> int:
        """Bottleneck width of a unit with `out_channels` outputs: a quarter, a multiple of g."""
        return make_divisible(out_channels / 4, self.groups)


class ShuffleUnit(nn.Module):
    """1x1 gconv-BN-ReLU, shuffle, 3x3 depthwise-BN, 1x1 gconv-BN, add or concat, ReLU."""

    def __init__(
        self, inp: int, oup: int, mid: int, groups: int, stride: int, group_first: bool
    ) -> None:
        super().__init__()
        self.stride = stride
        self.shuffle_groups = groups if group_first else 1
        branch_out = oup - inp if stride > 1 else oup
        self.pw1 = conv_bn_act(inp, mid, groups=self.shuffle_groups)
        self.dw = conv_bn_act(mid, mid, 3, stride=stride, groups=mid, act=False)
        self.pw2 = conv_bn_act(mid, branch_out, groups=groups, act=False)

    def forward(self, x: Tensor) -> Tensor:
        """Residual add (stride 1) or concat with a 3x3 average-pooled shortcut (stride 2)."""
        out = self.pw1(x)
        if self.shuffle_groups > 1:
            out = channel_shuffle(out, self.shuffle_groups)
        out = self.pw2(self.dw(out))
        if self.stride == 1:
            return F.relu(out + x)
        shortcut = F.avg_pool2d(x, 3, stride=2, padding=1)
        return F.relu(torch.cat((shortcut, out), dim=1))


class ShuffleNetV1(nn.Module):
    """conv1, maxpool, stage2-4 of ShuffleUnits, global average pool, fc."""

    def __init__(self, config: V1Config, num_classes: int = 1000, include_top: bool = True) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(3, config.stem, 3, stride=2)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inp = config.stem
        for index, (out, repeats) in enumerate(zip(config.stages, STAGE_REPEATS, strict=True)):
            mid, groups = config.bottleneck(out), config.groups
            units = [ShuffleUnit(inp, out, mid, groups, 2, group_first=index > 0)]
            units += [ShuffleUnit(out, out, mid, groups, 1, True) for _ in range(repeats - 1)]
            setattr(self, f"stage{index + 2}", nn.Sequential(*units))
            inp = out
        self.num_features = inp
        self.fc = nn.Linear(inp, num_classes) if include_top else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, num_classes), or pooled features (N, C) when include_top=False."""
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(x.mean([2, 3]))


@register_model("shufflenet_v1")
def shufflenet_v1(
    groups: int = 3, scale: float = 1.0, num_classes: int = 1000, include_top: bool = True
) -> ShuffleNetV1:
    """The ShuffleNet V1 family at any g in {1,2,3,4,8} and width multiplier s > 0."""
    groups = one_of("groups", groups, STAGE2_WIDTH_1X)
    scale = positive_number("scale", scale, example="0.5")
    num_classes, include_top = head_options(num_classes, include_top)
    return ShuffleNetV1(V1Config(groups, float(scale)), num_classes, include_top)


def _register_variant(groups: int, width: str) -> None:
    """Register `shufflenet_v1_g{groups}_{width}` (one short builder per table entry)."""
    scale = WIDTHS[width]

    def build(num_classes: int = 1000, include_top: bool = True) -> ShuffleNetV1:
        return shufflenet_v1(groups, scale, num_classes, include_top)

    name = f"shufflenet_v1_g{groups}_{width}"
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"ShuffleNet V1, g={groups}, {scale}x."
    register_model(name, family="shufflenet_v1")(build)


for _groups in STAGE2_WIDTH_1X:
    for _width in WIDTHS:
        _register_variant(_groups, _width)
