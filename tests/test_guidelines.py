"""Guideline micro-blocks G1-G4: structure, validation and the paper's equal-FLOPs tables."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from netdefs import get_model
from netdefs.guidelines import PAPER_TABLES, PaperConfig, fragment_width, paper_configs

EQUAL_FLOPS_TOLERANCE = 0.03


def block_mult_adds(spec: str) -> int:
    """Mult-adds of one forward pass of the block at its own input shape (meta device)."""
    with torch.device("meta"):
        model = get_model(spec)
        x = torch.empty(1, *model.input_shape)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def _groups_of_cells() -> dict[tuple[str, str, str], list[PaperConfig]]:
    """Cells grouped by (table, platform, column): the sets the paper holds at equal FLOPs."""
    groups: dict[tuple[str, str, str], list[PaperConfig]] = defaultdict(list)
    for cell in paper_configs():
        groups[(cell.table, cell.platform, cell.column)].append(cell)
    return groups


@pytest.mark.parametrize("key", sorted(_groups_of_cells()), ids="-".join)
def test_paper_tables_hold_flops_equal(key: tuple[str, str, str]) -> None:
    cells = _groups_of_cells()[key]
    counts = {cell.spec: block_mult_adds(cell.spec) for cell in cells}
    reference = counts[cells[0].spec]
    for cell in cells:
        deviation = abs(counts[cell.spec] / reference - 1)
        if cell.equal_flops:
            assert deviation <= EQUAL_FLOPS_TOLERANCE, (cell.spec, deviation)
        else:
            assert cell.note and 0.03 < deviation <= 0.06, (cell.spec, deviation)


def test_paper_tables_shape() -> None:
    assert {t: len(cells) for t, cells in PAPER_TABLES.items()} == {
        "g1": 24, "g2": 24, "g3": 30, "g4": 24,
    }  # fmt: skip
    odd = [c.spec for c in paper_configs() if not c.equal_flops]
    assert "g2:c=184,groups=8" in odd and "g1:c1=22,c2=44" in odd
    assert len(odd) == 10  # ARM G2 g=8 at x1; G1 1:12 (GPU and ARM) and ARM 1:2 at x1/x2/x4
    gpu_g1 = paper_configs("g1", "gpu")
    assert gpu_g1[0] == PaperConfig("g1", "gpu", "x1", "1:1", "g1:c1=128,c2=128", 1480, "batches/s")
    assert {c.unit for c in paper_configs(platform="arm")} == {"images/s"}
    with pytest.raises(ValueError, match=r"invalid table='g5'.*g1, g2, g3, g4"):
        paper_configs("g5")
    with pytest.raises(ValueError, match="invalid platform"):
        paper_configs(platform="tpu")


def test_g1_structure() -> None:
    model = get_model("g1:c1=90,c2=180")
    convs = list(model)
    assert len(convs) == 20 and all(isinstance(m, nn.Conv2d) for m in convs)
    assert (convs[0].in_channels, convs[0].out_channels) == (90, 180)
    assert (convs[1].in_channels, convs[1].out_channels) == (180, 90)
    assert all(m.bias is None and m.kernel_size == (1, 1) for m in convs)


def test_g2_group_convs() -> None:
    model = get_model("g2:c=360,groups=8")
    assert len(model) == 10 and {m.groups for m in model} == {8}
    assert block_mult_adds("g2:c=360,groups=8") == 10 * 56 * 56 * 360 * 360 // 8


def test_g3_fragment_width_and_layouts() -> None:
    assert [fragment_width(128, k) for k in (1, 2, 4)] == [128, 91, 64]
    series = get_model("g3:c=128,fragments=4,layout=series")
    assert len(series) == 40 and series.input_shape == (64, 56, 56)
    parallel = get_model("g3:c=16,fragments=2,layout=parallel,blocks=1,size=4")
    block = parallel[0]
    x = torch.randn(1, 11, 4, 4)
    with torch.no_grad():
        expected = block.branches[0](x) + block.branches[1](x)
        assert torch.allclose(parallel(x), expected)


@pytest.mark.parametrize(("relu", "shortcut"), [(True, True), (False, True), (True, False)])
def test_g4_switches(relu: bool, shortcut: bool) -> None:
    model = get_model(f"g4:c=4,units=1,size=3,relu={relu},shortcut={shortcut}").eval()
    assert any(isinstance(m, nn.ReLU) for m in model.modules()) == relu
    unit = model[0]
    x = torch.randn(1, 4, 3, 3)
    with torch.no_grad():
        branch = unit.bn3(
            unit.conv3(unit.act(unit.bn2(unit.conv2(unit.act(unit.bn1(unit.conv1(x)))))))
        )
        expected = unit.act(branch + x if shortcut else branch)
        assert torch.allclose(model(x), expected)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("g2:c=180,groups=8", r"invalid c=180: must be divisible by groups=8"),
        ("g3:c=64,fragments=3", r"invalid fragments=3; allowed: 1, 2, 4"),
        ("g3:c=64,layout=mixed", r"invalid layout='mixed'; allowed: series, parallel"),
        ("g1:c1=8,c2=8,blocks=0", r"invalid blocks=0; allowed: a positive integer"),
        ("g2:c=8,groups=2,layers=-1", r"invalid layers=-1"),
        ("g4:c=8,shortcut=maybe", r"invalid shortcut='maybe'; allowed: true, false"),
        ("g4:c=8,size=0", r"invalid size=0"),
    ],
)
def test_block_validation_messages(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_model(spec)
