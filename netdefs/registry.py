"""One model registry: register builders by name, parse spec strings, build models by spec.

A spec names a registered network (`resnet50`), torchvision's or timm's (`torchvision:vit_b_16`,
`timm:resnet50d`, see `netdefs.zoo`) or a user's class or factory (`models/net.py:Net`,
`mypkg.models:make_net`, see `netdefs.userspec`), each optionally followed by `:key=value,...`.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from netdefs.userspec import is_file_location, is_module_location, load_user_callable
from netdefs.validate import shown
from netdefs.zoo import TIMM_PREFIX, TORCHVISION_PREFIX, timm_model, torchvision_model, zoo_names

ZOO_PREFIXES = (TORCHVISION_PREFIX, TIMM_PREFIX)
SOURCES = ("registry", "torchvision", "timm")
WHOLE_NETWORK_INPUT = (3, 224, 224)
MAX_SPEC_NUMBER = 2**31 - 1  # no width, size or count of a model comes near it

SpecValue = int | float | bool | str


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder and what kind of thing it builds."""

    name: str
    builder: Callable[..., nn.Module]
    kind: str  # "network" or "block"
    family: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str | None = None, *, kind: str = "network", family: str = ""
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a builder under `name` (default: the function's name)."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"model name {key!r} is already registered")
        family_name = family or builder.__module__.rsplit(".", 1)[-1]
        _REGISTRY[key] = ModelEntry(key, builder, kind, family_name)
        return builder

    return decorate


def list_models(
    pattern: str | None = None, kind: str | None = None, source: str = "registry"
) -> list[str]:
    """Sorted names, filtered by a shell-style wildcard and/or kind.

    `source` is the registry, torchvision or timm (their names carry the `torchvision:` or
    `timm:` prefix); a pattern that starts with one of those prefixes picks that source.
    """
    for prefix in ZOO_PREFIXES:
        if pattern and pattern.startswith(prefix):
            source, pattern = prefix[:-1], pattern[len(prefix) :]
    if source not in SOURCES:
        choices = ", ".join(SOURCES)
        raise ValueError(f"unknown model source {shown(source)}; choose one of: {choices}")
    if source != "registry":
        return [] if kind == "block" else zoo_names(f"{source}:", pattern)
    names = [n for n, e in _REGISTRY.items() if kind is None or e.kind == kind]
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return sorted(names)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for `name`; ValueError listing the closest names when unknown."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name[:100], list(_REGISTRY), n=5, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise ValueError(
        f"unknown model {shown(name)}{hint} (see `bench list models`; other networks: "
        "torchvision:<name>, timm:<name>, path/file.py:Class, package.module:factory)"
    )


def check_value(key: str, value: SpecValue, spec: str) -> SpecValue:
    """A parsed spec value, unless it is a non-finite or absurdly large number (ValueError)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if not math.isfinite(value):
        raise ValueError(f"invalid {key}={value} in model spec {shown(spec)}: not a finite number")
    if abs(value) > MAX_SPEC_NUMBER:
        raise ValueError(
            f"invalid {key}={shown(value, 30)} in model spec {shown(spec)}: "
            f"too large (at most {MAX_SPEC_NUMBER})"
        )
    return value


def parse_value(text: str) -> SpecValue:
    """Turn a spec value into bool, int, float or (otherwise) str."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec: str) -> tuple[str, dict[str, SpecValue]]:
    """Split `name:key=value,key=value` into the name and typed keyword values."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"model spec must be a non-empty string, got {shown(spec)}")
    name, arg_text = split_spec(spec.strip())
    kwargs: dict[str, SpecValue] = {}
    for item in filter(None, (part.strip() for part in arg_text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise ValueError(
                f"bad item {shown(item, 40)} in model spec {shown(spec)}: expected key=value"
            )
        if key in kwargs:
            raise ValueError(f"option {shown(key, 40)} is given twice in model spec {shown(spec)}")
        kwargs[key] = check_value(key, parse_value(value), spec)
    return name, kwargs


def is_user_target(head: str, rest: str) -> bool:
    """Whether `head:rest` starts with a user's file or module and a callable's name."""
    if is_file_location(head):
        return True
    callable_name = rest.partition(":")[0].strip()
    return head not in _REGISTRY and is_module_location(head) and callable_name.isidentifier()


def split_spec(body: str) -> tuple[str, str]:
    """(name, `key=value,...` text) of a spec; a zoo prefix or `file.py:Name` is in the name."""
    for prefix in ZOO_PREFIXES:
        if body.startswith(prefix):
            name, _, arg_text = body[len(prefix) :].partition(":")
            return prefix + name.strip(), arg_text
    head, _, rest = body.partition(":")
    if is_user_target(head.strip(), rest):
        callable_name, _, arg_text = rest.partition(":")
        return f"{head.strip()}:{callable_name.strip()}", arg_text
    return head.strip(), rest


def format_spec(name: str, kwargs: dict[str, SpecValue]) -> str:
    """The canonical spec string for a name and keyword values (inverse of parse_spec)."""
    if not kwargs:
        return name
    items = ",".join(
        f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in kwargs.items()
    )
    return f"{name}:{items}"


def _check_keywords(name: str, builder: Callable[..., nn.Module], kwargs: dict) -> None:
    """Reject keywords the builder does not take (naming the allowed ones) or misses."""
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [p for p in params if not p.startswith("_")]
    for key in kwargs:
        if key not in params:
            raise ValueError(
                f"model {name!r} has no option {shown(key, 40)}; "
                f"allowed: {', '.join(allowed) or 'none'}"
            )
    missing = [
        p.name
        for p in params.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.name not in kwargs
    ]
    if missing:
        raise ValueError(
            f"model {name!r} needs option(s) {', '.join(missing)}; e.g. {name}:"
            + ",".join(f"{m}=..." for m in missing)
        )


def _user_model(target: str, kwargs: dict[str, SpecValue]) -> nn.Module:
    """A user's class or factory called with the spec's keywords (it must return a module)."""
    builder = load_user_callable(target)
    _check_keywords(target, builder, kwargs)
    model = builder(**kwargs)
    if not isinstance(model, nn.Module):
        raise ValueError(f"{target} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def get_model(spec: str, **overrides: SpecValue) -> nn.Module:
    """Build the model a spec names (`name` or `name:key=value,...`); overrides win.

    Registry and zoo models always have `input_shape`; a user's model has it only when its
    class sets it (the caller then needs an input shape).
    """
    name, kwargs = parse_spec(spec)
    kwargs.update(overrides)
    if name.startswith(TORCHVISION_PREFIX):
        model = torchvision_model(name[len(TORCHVISION_PREFIX) :], kwargs)
    elif name.startswith(TIMM_PREFIX):
        model = timm_model(name[len(TIMM_PREFIX) :], kwargs)
    elif ":" in name:
        model = _user_model(name, kwargs)
    else:
        entry = model_entry(name)
        _check_keywords(name, entry.builder, kwargs)
        model = entry.builder(**kwargs)
        if not hasattr(model, "input_shape"):
            model.input_shape = WHOLE_NETWORK_INPUT
    model.spec = format_spec(name, kwargs)
    return model
