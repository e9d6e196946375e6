"""`bench list models`: the networks a spec can name, from the registry, torchvision or timm."""

from __future__ import annotations

from rich.table import Table

from bench.core.choices import ModelSource
from bench.core.errors import BenchError
from bench.core.models import build_model
from bench.core.options import format_input_shape
from bench.core.values import human_count
from netdefs import list_models
from netdefs.registry import model_entry
from netdefs.zoo import ZooInfo, timm_family, timm_input_shape, torchvision_info

LIST_BUILD_LIMIT = 100  # more timm matches than this are listed without building them
SPEC_FORMS_HINT = (
    "other networks: torchvision:<name> (--source torchvision), timm:<name> (--source timm), "
    "path/to/file.py:Class or package.module:factory (your own; importing runs its code); "
    "options after a colon, e.g. torchvision:resnet50:num_classes=10"
)


def built_info(name: str, family: str) -> ZooInfo:
    """Family, native input and params of a model built on the meta device (no memory)."""
    try:
        model = build_model(name, meta=True)
    except BenchError:
        return ZooInfo(name, family, None, None)
    shape = getattr(model, "input_shape", None)
    return ZooInfo(name, family, shape, sum(p.numel() for p in model.parameters()))


def model_info(name: str, source: ModelSource, build: bool) -> ZooInfo:
    """What the table shows of one listed name (`build`: build timm models for their params)."""
    if source == ModelSource.torchvision:
        return torchvision_info(name.removeprefix("torchvision:"))
    if source == ModelSource.timm:
        bare = name.removeprefix("timm:")
        if build:
            return built_info(name, timm_family(bare))
        return ZooInfo(name, timm_family(bare), timm_input_shape(bare), None)
    return built_info(name, model_entry(name).family)


def models_table(source: ModelSource, pattern: str | None, kind: str) -> tuple[Table, int]:
    """The table of matching models (name, family, native input, params) and its row count."""
    names = list_models(pattern, kind=kind, source=source.value)
    build = source != ModelSource.timm or len(names) <= LIST_BUILD_LIMIT
    matching = f" matching {pattern}" if pattern else ""
    table = Table(title=f"{kind}s from {source.value}{matching}")
    for column in ("model", "family", "input", "params"):
        table.add_column(column, justify="right" if column == "params" else "left")
    for name in names:
        info = model_info(name, source, build)
        shape = format_input_shape(info.input_shape) if info.input_shape else "(give --input)"
        params = human_count(info.params) if info.params is not None else "-"
        table.add_row(info.name, info.family, shape, params)
    return table, len(names)
