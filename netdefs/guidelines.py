"""The ShuffleNet V2 paper's guideline micro-blocks G1-G4 (kind="block") and its Tables 1-4.

Conventions (reference.md): G1-G3 are bias-free 1x1 convs with nothing between them; G3's fragment
width is c_f = round(c / sqrt(k)), series = k convs in sequence, parallel = k convs that all read
the block input, summed; G4 is the ResNet bottleneck unit c->c->c with BN. Each block's
`input_shape` is its own (C_in, size, size), size 56 by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from netdefs.registry import register_model
from netdefs.validate import boolean, divisible, one_of, positive_int

FRAGMENTS = (1, 2, 4)
LAYOUTS = ("series", "parallel")


def conv1x1(in_channels: int, out_channels: int, groups: int = 1) -> nn.Conv2d:
    """Bias-free 1x1 (group) convolution."""
    return nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)


def _with_input(model: nn.Module, channels: int, size: int) -> nn.Module:
    """Attach the block's own input shape (C, size, size)."""
    model.input_shape = (channels, size, size)
    return model


@register_model(kind="block", family="guidelines")
def g1(c1: int, c2: int, blocks: int = 10, size: int = 56) -> nn.Module:
    """G1: `blocks` x (1x1 conv c1->c2, 1x1 conv c2->c1); equal channel widths minimise MAC."""
    c1, c2 = positive_int("c1", c1), positive_int("c2", c2)
    blocks, size = positive_int("blocks", blocks), positive_int("size", size)
    layers = [conv for _ in range(blocks) for conv in (conv1x1(c1, c2), conv1x1(c2, c1))]
    return _with_input(nn.Sequential(*layers), c1, size)


@register_model(kind="block", family="guidelines")
def g2(c: int, groups: int, layers: int = 10, size: int = 56) -> nn.Module:
    """G2: `layers` stacked 1x1 group convs c->c with `groups` groups."""
    c, groups = positive_int("c", c), positive_int("groups", groups)
    layers, size = positive_int("layers", layers), positive_int("size", size)
    divisible("c", c, "groups", groups)
    return _with_input(nn.Sequential(*(conv1x1(c, c, groups) for _ in range(layers))), c, size)


class ParallelFragments(nn.Module):
    """k 1x1 convs that all read the input; their outputs are summed."""

    def __init__(self, channels: int, fragments: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(conv1x1(channels, channels) for _ in range(fragments))

    def forward(self, x: Tensor) -> Tensor:
        """Element-wise sum of the branches."""
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


def fragment_width(c: int, fragments: int) -> int:
    """G3 fragment width c_f = round(c / sqrt(k)), keeping the block's mult-adds near c^2."""
    return round(c / math.sqrt(fragments))


@register_model(kind="block", family="guidelines")
def g3(
    c: int, fragments: int = 1, layout: str = "series", blocks: int = 10, size: int = 56
) -> nn.Module:
    """G3: `blocks` blocks of k 1x1 convs (width round(c/sqrt(k))) in series or in parallel."""
    c, blocks, size = (
        positive_int("c", c),
        positive_int("blocks", blocks),
        positive_int("size", size),
    )
    fragments = one_of("fragments", fragments, FRAGMENTS)
    layout = one_of("layout", layout, LAYOUTS)
    width = fragment_width(c, fragments)
    if layout == "series":
        units = [conv1x1(width, width) for _ in range(blocks * fragments)]
    else:
        units = [ParallelFragments(width, fragments) for _ in range(blocks)]
    return _with_input(nn.Sequential(*units), width, size)


class BottleneckUnit(nn.Module):
    """1x1 c->c, BN, ReLU; 3x3 c->c, BN, ReLU; 1x1 c->c, BN; + identity; ReLU (each optional)."""

    def __init__(self, c: int, relu: bool, shortcut: bool) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.conv1, self.bn1 = conv1x1(c, c), nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3, self.bn3 = conv1x1(c, c), nn.BatchNorm2d(c)

    def forward(self, x: Tensor) -> Tensor:
        """The unit's forward pass with the configured ReLUs and shortcut."""
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut:
            out = out + x
        return self.act(out)


@register_model(kind="block", family="guidelines")
def g4(
    c: int, relu: bool = True, shortcut: bool = True, units: int = 10, size: int = 56
) -> nn.Module:
    """G4: `units` ResNet bottleneck units (c->c->c); ReLU and shortcut can be switched off."""
    c, units, size = positive_int("c", c), positive_int("units", units), positive_int("size", size)
    relu, shortcut = boolean("relu", relu), boolean("shortcut", shortcut)
    model = nn.Sequential(*(BottleneckUnit(c, relu, shortcut) for _ in range(units)))
    return _with_input(model, c, size)


@dataclass(frozen=True)
class PaperConfig:
    """One cell of the paper's Tables 1-4: a block spec and its published throughput."""

    table: str  # "g1".."g4"
    platform: str  # "gpu" (GTX 1080Ti, batches/s) or "arm" (Snapdragon 810, images/s)
    column: str  # "x1", "x2", "x4" (G1, G2) or "c=<width>" (G3, G4)
    variant: str  # the table row, e.g. "1:2", "g=8", "2-fragment-series", "relu=no,shortcut=yes"
    spec: str
    throughput: float
    unit: str
    equal_flops: bool = True  # False: the printed widths are >3% off the first row's mult-adds
    note: str = ""


_UNITS = {"gpu": "batches/s", "arm": "images/s"}
_SCALES = ("x1", "x2", "x4")
_G1_ROWS = {  # c1:c2 -> ((gpu c1, c2), gpu throughputs, (arm c1, c2), arm throughputs)
    "1:1": ((128, 128), (1480, 723, 232), (32, 32), (76.2, 21.7, 5.3)),
    "1:2": ((90, 180), (1296, 586, 206), (22, 44), (72.9, 20.5, 5.1)),
    "1:6": ((52, 312), (876, 489, 189), (13, 78), (69.1, 17.9, 4.6)),
    "1:12": ((36, 432), (748, 392, 163), (9, 108), (57.6, 15.1, 4.4)),
}
_G2_ROWS = {  # g -> (gpu c, gpu throughputs, arm c, arm throughputs)
    1: (128, (2451, 1289, 437), 64, (40.0, 10.2, 2.3)),
    2: (180, (1725, 873, 341), 90, (35.0, 9.5, 2.2)),
    4: (256, (1026, 644, 338), 128, (32.9, 8.7, 2.1)),
    8: (360, (634, 445, 230), 180, (27.8, 7.5, 1.8)),
}
_G3_WIDTHS = {"gpu": (128, 256, 512), "arm": (64, 128, 256)}
_G3_ROWS = {  # (fragments, layout) -> (gpu throughputs, arm throughputs)
    (1, "series"): ((2446, 1274, 434), (40.2, 10.1, 2.3)),
    (2, "series"): ((1790, 909, 336), (38.6, 10.1, 2.2)),
    (4, "series"): ((752, 745, 349), (38.4, 10.1, 2.3)),
    (2, "parallel"): ((1537, 803, 320), (33.4, 9.1, 2.2)),
    (4, "parallel"): ((691, 572, 292), (35.0, 8.4, 2.1)),
}
_G4_WIDTHS = (32, 64, 128)
_G4_ROWS = {  # (relu, shortcut) -> (gpu throughputs, arm throughputs)
    (True, True): ((2427, 2066, 1436), (56.7, 16.9, 5.0)),
    (True, False): ((2647, 2256, 1735), (61.9, 18.8, 5.2)),
    (False, True): ((2672, 2121, 1458), (57.3, 18.2, 5.1)),
    (False, False): ((2842, 2376, 1782), (66.3, 20.2, 5.4)),
}
G1_OFF_FLOPS = {  # (platform, c1:c2) -> why the printed widths miss the table's FLOPs by >3%
    ("gpu", "1:12"): "paper's widths give 5.1% fewer mult-adds than its 1:1 row (36*432 vs 128^2)",
    ("arm", "1:12"): "paper's widths give 5.1% fewer mult-adds than its 1:1 row (9*108 vs 32^2)",
    ("arm", "1:2"): "paper's widths give 5.5% fewer mult-adds than its 1:1 row (22*44 vs 32^2)",
}
G2_ARM_G8_NOTE = "paper prints c=180 (not divisible by g=8); built with c=184 (+4.5% mult-adds)"


def _g1_configs() -> list[PaperConfig]:
    """Table 1 (G1) as PaperConfig cells."""
    cells = []
    for ratio, (gpu_c, gpu_t, arm_c, arm_t) in _G1_ROWS.items():
        for platform, (c1, c2), values in (("gpu", gpu_c, gpu_t), ("arm", arm_c, arm_t)):
            note = G1_OFF_FLOPS.get((platform, ratio), "")
            for factor, column, value in zip((1, 2, 4), _SCALES, values, strict=True):
                spec = f"g1:c1={c1 * factor},c2={c2 * factor}"
                unit = _UNITS[platform]
                cells.append(
                    PaperConfig("g1", platform, column, ratio, spec, value, unit, not note, note)
                )
    return cells


def _g2_configs() -> list[PaperConfig]:
    """Table 2 (G2) as PaperConfig cells, with the ARM g=8 c=180 -> 184 adjustment."""
    cells = []
    for groups, (gpu_c, gpu_t, arm_c, arm_t) in _G2_ROWS.items():
        for platform, c, values in (("gpu", gpu_c, gpu_t), ("arm", arm_c, arm_t)):
            for factor, column, value in zip((1, 2, 4), _SCALES, values, strict=True):
                width = c * factor
                odd = width % groups != 0
                spec = f"g2:c={width + (-width) % groups},groups={groups}"
                unit, note = _UNITS[platform], G2_ARM_G8_NOTE if odd else ""
                row = f"g={groups}"
                cells.append(
                    PaperConfig("g2", platform, column, row, spec, value, unit, not odd, note)
                )
    return cells


def _g3_configs() -> list[PaperConfig]:
    """Table 3 (G3) as PaperConfig cells."""
    cells = []
    for (fragments, layout), per_platform in _G3_ROWS.items():
        name = "1-fragment" if fragments == 1 else f"{fragments}-fragment-{layout}"
        for platform, values in zip(("gpu", "arm"), per_platform, strict=True):
            for c, value in zip(_G3_WIDTHS[platform], values, strict=True):
                spec = f"g3:c={c},fragments={fragments},layout={layout}"
                cells.append(
                    PaperConfig("g3", platform, f"c={c}", name, spec, value, _UNITS[platform])
                )
    return cells


def _g4_configs() -> list[PaperConfig]:
    """Table 4 (G4) as PaperConfig cells."""
    cells = []
    for (relu, shortcut), per_platform in _G4_ROWS.items():
        flags = f"relu={str(relu).lower()},shortcut={str(shortcut).lower()}"
        for platform, values in zip(("gpu", "arm"), per_platform, strict=True):
            for c, value in zip(_G4_WIDTHS, values, strict=True):
                spec = f"g4:c={c},{flags}"
                cells.append(
                    PaperConfig("g4", platform, f"c={c}", flags, spec, value, _UNITS[platform])
                )
    return cells


PAPER_TABLES: dict[str, tuple[PaperConfig, ...]] = {
    "g1": tuple(_g1_configs()),
    "g2": tuple(_g2_configs()),
    "g3": tuple(_g3_configs()),
    "g4": tuple(_g4_configs()),
}


def paper_configs(table: str | None = None, platform: str | None = None) -> list[PaperConfig]:
    """The paper's guideline configurations, optionally for one table and/or platform."""
    if table is not None:
        one_of("table", table, PAPER_TABLES)
    if platform is not None:
        one_of("platform", platform, _UNITS)
    tables = [table] if table else list(PAPER_TABLES)
    return [c for t in tables for c in PAPER_TABLES[t] if platform in (None, c.platform)]
