"""The folder tree is the architecture: layers import downwards, one owner per name, small files."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = ("core", "runtimes", "measure", "train", "runs", "analysis", "report", "cli")
MAX_LINES = 500
# Third-party imports a library module may take inside a function: optional or slow to import
# packages that only one code path needs.
LAZY_ALLOWED = {
    "fvcore.nn",
    "pandas",  # counting's per-op tables only: `bench count` never pays its 0.9 s import
    "onnx",
    "torchvision",
    "torchvision.ops",
    "torch.utils.tensorboard",
}


def modules(package: str) -> list[Path]:
    """Every Python file of a package under the repository root."""
    return sorted((REPO / package).rglob("*.py"))


def imported(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """(module name, node) of every import in a syntax tree."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
    return found


def layer_of(path: Path) -> int | None:
    """The index in LAYERS of the bench sub-package a file belongs to (None at the top)."""
    parts = path.relative_to(REPO / "bench").parts
    return LAYERS.index(parts[0]) if len(parts) > 1 else None


@pytest.mark.parametrize("path", modules("bench"), ids=lambda p: str(p.relative_to(REPO)))
def test_bench_imports_point_down(path: Path) -> None:
    own = layer_of(path)
    for name, _ in imported(ast.parse(path.read_text())):
        parts = name.split(".")
        if parts[0] != "bench" or len(parts) < 2 or parts[1] not in LAYERS or own is None:
            continue
        assert LAYERS.index(parts[1]) <= own, f"{path.name} imports {name} from a layer above"


@pytest.mark.parametrize("path", modules("netdefs"), ids=lambda p: p.name)
def test_netdefs_imports_nothing_from_bench(path: Path) -> None:
    names = [name for name, _ in imported(ast.parse(path.read_text()))]
    assert not [n for n in names if n.split(".")[0] == "bench"]


def test_library_imports_sit_at_the_top_of_modules() -> None:
    inner = []
    for path in modules("bench"):
        if layer_of(path) == LAYERS.index("cli"):
            continue  # the CLI imports the library lazily so that --help stays fast
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                inner += [
                    f"{path.name}:{function.name} imports {name}"
                    for name, _ in imported(function)
                    if name not in LAZY_ALLOWED
                ]
    assert not inner


def test_no_public_name_is_defined_in_two_bench_modules() -> None:
    owners: dict[str, list[str]] = defaultdict(list)
    for path in modules("bench"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            else:
                continue
            for name in names:
                if not name.startswith("_") and name != "register":
                    owners[name].append(str(path.relative_to(REPO)))
    assert {name: files for name, files in owners.items() if len(files) > 1} == {}


@pytest.mark.parametrize("package", ["bench", "netdefs"])
def test_no_module_is_over_500_lines(package: str) -> None:
    long = {
        p.name: n for p in modules(package) if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
