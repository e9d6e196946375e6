"""The run settings of a suite (defaults, per case, swept): what each may be, checked once."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

from bench.core.choices import DEVICES, DTYPE_NAMES, MODES, RUNTIMES
from bench.core.errors import BenchError
from bench.core.options import auto_device, parse_input_shape
from bench.runs.yamlfile import KeyPath, Locator, check_keys, type_name

SUITE_METRICS = ("count", "latency", "profile")
DEFAULTS: dict[str, Any] = {
    "device": "cpu",
    "batch": 1,
    "input": None,
    "dtype": "float32",
    "threads": None,
    "budget_s": 5.0,
    "metrics": ["count", "latency"],
    "channels_last": False,
    "mode": "infer",
    "runtimes": ["eager"],
    "interleave": False,
}
SETTING_KEYS = tuple(k for k in DEFAULTS if k != "device")
RUN_SWEEP_KEYS = ("batch", "threads", "dtype", "input", "channels_last", "mode")


def _positive_int(value: Any) -> str | None:
    """None if value is a positive int, else what is wrong."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return None if ok else "expected a positive integer"


def _optional_positive_int(value: Any) -> str | None:
    """None if value is null or a positive int."""
    return None if value is None else _positive_int(value)


def _positive_number(value: Any) -> str | None:
    """None if value is a finite number > 0."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return None if ok and math.isfinite(value) and value > 0 else "expected a number > 0"


def _boolean(value: Any) -> str | None:
    """None if value is true or false."""
    return None if isinstance(value, bool) else "expected true or false"


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    """A check that the value is one of `choices`."""
    return lambda value: None if value in choices else f"expected one of: {', '.join(choices)}"


def _input(value: Any) -> str | None:
    """None if value is null or a CxHxW shape."""
    if value is None:
        return None
    try:
        parse_input_shape(value)
    except BenchError:
        return "expected a shape CxHxW of positive ints (e.g. 3x224x224) or null"
    return None


def _list_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    """A check that the value is a non-empty list of distinct `choices`."""

    def check(value: Any) -> str | None:
        ok = isinstance(value, list) and value and all(v in choices for v in value)
        ok = ok and len(set(value)) == len(value)
        return None if ok else f"expected a non-empty list of distinct: {', '.join(choices)}"

    return check


SETTING_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "device": _choice(DEVICES),
    "batch": _positive_int,
    "input": _input,
    "dtype": _choice(DTYPE_NAMES),
    "threads": _optional_positive_int,
    "budget_s": _positive_number,
    "metrics": _list_of(SUITE_METRICS),
    "channels_last": _boolean,
    "mode": _choice(MODES),
    "runtimes": _list_of(RUNTIMES),
    "interleave": _boolean,
}


def check_setting(loc: Locator, key_path: KeyPath, key: str, value: Any) -> Any:
    """Validate one setting value (BenchError naming it) and return it."""
    problem = SETTING_CHECKS[key](value)
    if problem:
        raise loc.error(key_path, f"bad value {value!r} ({type_name(value)}); {problem}")
    return value


def check_ref(loc: Locator, key_path: KeyPath, value: Any) -> tuple[tuple[str, Any], ...]:
    """A `ref` mapping of scalar reference values, as sorted pairs."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise loc.error(key_path, f"expected a mapping of reference values, got {type_name(value)}")
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool) or not str(key).isidentifier():
            raise loc.error(
                (*key_path, str(key)), f"reference {key!r}: expected a scalar value, got {item!r}"
            )
    return tuple((str(k), v) for k, v in value.items())


def check_devices(loc: Locator, kp: KeyPath, value: Any) -> list[str]:
    """Devices of a case (a name or a list of cpu|cuda|auto); auto resolved here, no repeats."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise loc.error(kp, f"expected a non-empty list of devices ({', '.join(DEVICES)})")
    devices: list[str] = []
    for index, device in enumerate(values):
        check_setting(loc, (*kp, index), "device", device)
        if device == "auto":
            device = auto_device()
        if device not in devices:
            devices.append(device)
    return devices


def sweep_size(loc: Locator, kp: KeyPath, value: Any) -> int:
    """How many points the sweep's product has (1 without a sweep), after checking its lists."""
    if value is None:
        return 1
    sweep = check_keys(loc, kp, value, tuple(value) if isinstance(value, dict) else ())
    for key, values in sweep.items():
        check_sweep_values(loc, (*kp, str(key)), str(key), values)
    return math.prod(len(values) for values in sweep.values())


def sweep_points(loc: Locator, kp: KeyPath, value: Any) -> list[dict[str, Any]]:
    """The product of the sweep's lists, as one dict per point ([{}] without a sweep)."""
    sweep_size(loc, kp, value)
    if value is None:
        return [{}]
    keys = [str(k) for k in value]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*value.values())]


def check_sweep_values(loc: Locator, kp: KeyPath, key: str, values: Any) -> None:
    """A sweep entry: a non-empty list of scalars, run settings checked like defaults."""
    if key == "device":
        raise loc.error(kp, "sweep devices with the case's `devices:` list instead")
    if not key.isidentifier():
        raise loc.error(kp, f"sweep key {key!r} is not a setting or a spec keyword")
    if not isinstance(values, list) or not values:
        raise loc.error(kp, f"empty or non-list sweep {values!r}; expected a non-empty list")
    for index, item in enumerate(values):
        if key in RUN_SWEEP_KEYS:
            check_setting(loc, (*kp, index), key, item)
        elif not isinstance(item, str | int | float | bool):
            raise loc.error((*kp, index), f"expected a scalar spec value, got {item!r}")
