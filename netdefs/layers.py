"""Small building blocks shared by the families: conv-BN-activation and channel shuffle."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 1,
    stride: int = 1,
    groups: int = 1,
    act: bool = True,
) -> nn.Sequential:
    """Bias-free conv (padding k//2), BatchNorm and optionally ReLU, as indices 0, 1, 2."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of `groups` groups (ShuffleNet): same result as view-transpose-view.

    Uses torch's native kernel (one `aten.channel_shuffle` op), measured no slower than the
    view/transpose/contiguous sequence torchvision uses (see benchmarks/netdefs_speed.py).
    """
    return F.channel_shuffle(x, groups)


def make_divisible(value: float, divisor: int) -> int:
    """`value` rounded to the nearest multiple of `divisor` (halves up), at least `divisor`."""
    return max(divisor, int(value / divisor + 0.5) * divisor)
