"""A user's own networks: file and module specs, --import, suite imports, and their errors."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bench.cli.app import app
from bench.cli.imports import split_imports
from bench.core.errors import BenchError
from bench.measure.counting import count
from bench.runs.folder import load_run
from bench.runs.suite import load_suite
from netdefs import list_models, parse_spec
from netdefs.registry import _REGISTRY

NET_FILE = """
import torch
from torch import nn


class TinyNet(nn.Module):
    input_shape = (3, 16, 16)

    def __init__(self, width: int = 4, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def shapeless(width: int = 2):
    return nn.Sequential(nn.Conv2d(3, width, 1, bias=False), nn.Flatten())


NOT_A_MODULE = 3


def not_a_module():
    return "a string"
"""

PACKAGE_INIT = """
from torch import nn
from netdefs import register_model


@register_model("user_pkg_net", family="userpkg")
def user_pkg_net(width: int = 8) -> nn.Module:
    model = nn.Sequential(nn.Conv2d(3, width, 1, bias=False))
    model.input_shape = (3, 8, 8)
    return model
"""


def invoke(*args: str) -> Result:
    """Run the bench app with these arguments."""
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(result: Result, *parts: str) -> None:
    """Exit code 2 and one `error:` line (no traceback) containing every part."""
    assert result.exit_code == 2, result.output
    text = " ".join(result.stderr.split())
    assert text.startswith("error:") and text.count("error:") == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    for part in parts:
        assert part in text, text


def conv_mult_adds(width: int, size: int = 16) -> int:
    """Mult-adds of TinyNet: the 3x3 conv plus the linear layer."""
    return size * size * width * 3 * 9 + width * 10


@pytest.fixture
def net_file(tmp_path: Path) -> Path:
    """A user's model file with a class, a factory and two things that are not models."""
    path = tmp_path / "models" / "tiny.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(NET_FILE), encoding="utf-8")
    return path


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package in the current folder that registers `user_pkg_net` when imported."""
    name = f"userpkg_{tmp_path.name.replace('-', '_')}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(textwrap.dedent(PACKAGE_INIT))
    monkeypatch.chdir(tmp_path)
    yield name
    _REGISTRY.pop("user_pkg_net", None)
    sys.modules.pop(name, None)


def test_file_specs_parse_with_and_without_options(net_file: Path) -> None:
    assert parse_spec(f"{net_file}:TinyNet") == (f"{net_file}:TinyNet", {})
    assert parse_spec(f"{net_file}:TinyNet:width=8") == (f"{net_file}:TinyNet", {"width": 8})
    assert parse_spec("mypkg.models:make_net:depth=2") == ("mypkg.models:make_net", {"depth": 2})
    assert parse_spec("g1:c1=8") == ("g1", {"c1": 8})  # registry options stay options


def test_user_file_counts_from_the_cli_with_and_without_options(net_file: Path) -> None:
    plain = invoke("count", f"{net_file}:TinyNet", "--json")
    assert plain.exit_code == 0, plain.output
    data = json.loads(plain.stdout)
    assert data["input"] == "3x16x16" and data["mult_adds"] == conv_mult_adds(4)
    wide = json.loads(invoke("count", f"{net_file}:TinyNet:width=8", "--json").stdout)
    assert wide["mult_adds"] == conv_mult_adds(8)
    assert wide["params"] == 8 * 3 * 9 + 8 * 10 + 10


def test_model_without_input_shape_takes_input_or_asks_for_it(net_file: Path) -> None:
    given = invoke("count", f"{net_file}:shapeless", "--input", "3x4x4", "--json")
    assert json.loads(given.stdout)["mult_adds"] == 16 * 3 * 2
    assert_one_line_error(invoke("count", f"{net_file}:shapeless"), "input_shape", "--input")


def test_module_spec_is_imported_from_the_current_folder(
    net_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(net_file.parent)
    monkeypatch.delitem(sys.modules, "tiny", raising=False)
    result = count("tiny:TinyNet:width=2")
    assert result.mult_adds == conv_mult_adds(2)


def test_bad_user_specs_are_one_line(net_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise RuntimeError('no GPU here\\nsecond line')\n")
    cases = [
        (f"{tmp_path}/missing.py:Net", ["missing.py", "not found"]),
        (f"{broken}:Net", ["broken.py", "RuntimeError: no GPU here"]),
        (f"{net_file}:Nope", ["no class or function 'Nope'", "TinyNet"]),
        (f"{net_file}:NOT_A_MODULE", ["NOT_A_MODULE"]),
        (f"{net_file}:not_a_module", ["returned str"]),
        (f"{net_file}:TinyNet:depth=3", ["no option 'depth'", "width"]),
        ("no_such_pkg_13.models:Net", ["cannot import module", "no_such_pkg_13"]),
    ]
    for spec, parts in cases:
        assert_one_line_error(invoke("count", spec), *parts)


def test_import_option_registers_a_package_before_any_command(user_package: str) -> None:
    assert_one_line_error(invoke("count", "user_pkg_net"), "unknown model")
    result = invoke("count", "user_pkg_net:width=4", "--import", user_package, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mult_adds"] == 64 * 3 * 4
    listed = invoke("--import", user_package, "list", "models", "--names")
    assert "user_pkg_net" in listed.stdout.split()
    assert "user_pkg_net" in list_models()


def test_import_errors_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(invoke("count", "resnet18", "--import"), "--import needs")
    broken = tmp_path / "broken_pkg.py"
    broken.write_text("1 / 0\n")
    assert_one_line_error(
        invoke("--import", str(broken), "count", "resnet18"),
        "broken_pkg.py",
        "ZeroDivisionError",
    )
    assert_one_line_error(
        invoke("count", "resnet18", "--import", "no_such_pkg_13"), "no_such_pkg_13"
    )


def test_split_imports_stops_at_double_dash() -> None:
    assert split_imports(["count", "--import", "a", "x", "--import=b", "--", "--import", "c"]) == (
        ["a", "b"],
        ["count", "x", "--", "--import", "c"],
    )


SUITE = """
name: mine
imports: [{package}]
defaults: {{threads: 1, budget_s: 0.1, metrics: [count, latency]}}
cases:
  - name: beside
    models:
      - "models/tiny.py:TinyNet:width=2"
      - "torchvision:squeezenet1_1"
      - "timm:resnet10t"
      - "user_pkg_net"
  - name: shapeless
    input: 3x8x8
    models: ["models/tiny.py:shapeless"]
"""


def test_user_file_runs_in_a_suite_beside_torchvision_and_timm(
    net_file: Path, user_package: str, tmp_path: Path
) -> None:
    suite = tmp_path / "mine.yaml"
    suite.write_text(textwrap.dedent(SUITE.format(package=user_package)))
    out = tmp_path / "run"
    result = invoke("run", str(suite), "--out", str(out), "--quick", "--no-calibrate")
    assert result.exit_code == 0, result.output
    rows = {row["model"]: row for row in load_run(out).rows.to_dict("records")}
    assert len(rows) == 5 and all(row["status"] == "ok" for row in rows.values()), rows
    tiny = rows[f"{net_file.resolve()}:TinyNet:width=2"]
    assert int(tiny["mult_adds"]) == conv_mult_adds(2) and tiny["input"] == "3x16x16"
    assert rows["timm:resnet10t"]["input"] == "3x176x176"
    assert rows["torchvision:squeezenet1_1"]["latency_ms_median"] > 0
    assert rows[f"{net_file.resolve()}:shapeless"]["input"] == "3x8x8"


def test_suite_errors_name_the_file_and_entry(net_file: Path, tmp_path: Path) -> None:
    suite = tmp_path / "bad.yaml"
    bad = {
        "imports: [no_such_pkg_13]": "no_such_pkg_13",
        "imports: 3": "expected a list",
        "": "has no input_shape",
    }
    for imports, message in bad.items():
        suite.write_text(
            f'name: bad\n{imports}\ncases:\n  - name: a\n    models: ["models/tiny.py:shapeless"]\n'
        )
        with pytest.raises(BenchError, match=message) as info:
            load_suite(suite)
        assert str(suite) in str(info.value)


def test_timm_wildcard_expands_in_a_suite(tmp_path: Path) -> None:
    suite = tmp_path / "wild.yaml"
    suite.write_text('name: wild\ncases:\n  - name: a\n    models: ["timm:resnet1?t"]\n')
    models = [case.model for case in load_suite(suite).cases]
    assert models == ["timm:resnet10t", "timm:resnet14t"]


def test_suite_imports_a_py_file_relative_to_the_suite(tmp_path: Path) -> None:
    folder = tmp_path / "suites"
    folder.mkdir()
    registering = PACKAGE_INIT.replace("user_pkg_net", "user_file_net_13")
    (folder / "extra_nets.py").write_text(textwrap.dedent(registering))
    suite = folder / "extra.yaml"
    suite.write_text(
        "name: extra\nimports: [extra_nets.py]\ncases:\n  - name: a\n"
        '    models: ["user_file_net_13:width=2"]\n'
    )
    try:
        (case,) = load_suite(suite).cases
        assert case.model == "user_file_net_13:width=2" and case.input == (3, 8, 8)
    finally:
        _REGISTRY.pop("user_file_net_13", None)
