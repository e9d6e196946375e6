"""Suite files: YAML (safe_load) validated into frozen dataclasses, one `Case` per measurement.

A suite has `name`, `description`, `defaults` and `cases`. Each case names models (spec strings
or `{model, ref, note}` mappings; shell wildcards in the name expand through `list_models`), may
`sweep` lists of values (their product, into spec keywords or run settings), lists `devices`, a
`group` label and `ref` values (the paper's numbers, written as `ref_<key>` columns). Every error
names the file, the line, the key path, the bad value and the valid choices.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from bench.errors import BenchError
from bench.options import DTYPES, format_input_shape, parse_input_shape

DEVICES = ("cpu", "cuda", "auto")
MODES = ("infer", "train")
METRICS = ("count", "latency")
KINDS = ("measure", "finetune")
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
}
TOP_KEYS = ("name", "description", "defaults", "cases")
SETTING_KEYS = tuple(k for k in DEFAULTS if k != "device")
CASE_KEYS = ("name", "group", "models", "sweep", "devices", "ref", "note", "kind", "train")
CASE_KEYS += SETTING_KEYS
MODEL_ITEM_KEYS = ("model", "ref", "note")
RUN_SWEEP_KEYS = ("batch", "threads", "dtype", "input", "channels_last", "mode")
WILDCARD_CHARS = "*?["

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Case:
    """One measurement: a model spec on one device with all settings resolved."""

    case_id: str
    suite: str
    group: str
    case: str
    model: str
    device: str
    batch: int
    input: tuple[int, int, int] | None
    dtype: str
    threads: int | None
    budget_s: float
    metrics: tuple[str, ...]
    channels_last: bool
    mode: str
    kind: str = "measure"
    note: str = ""
    ref: tuple[tuple[str, Any], ...] = ()
    train: tuple[tuple[str, Any], ...] = ()

    def base_row(self) -> dict[str, Any]:
        """The identifying columns of this case's result row, plus its ref_* columns."""
        row = {
            "case_id": self.case_id,
            "suite": self.suite,
            "group": self.group,
            "case": self.case,
            "model": self.model,
            "device": self.device,
            "dtype": self.dtype,
            "batch": self.batch,
            "input": format_input_shape(self.input) if self.input else None,
            "threads": self.threads,
            "channels_last": self.channels_last,
            "mode": self.mode,
            "note": self.note or None,
        }
        row.update({f"ref_{key}": value for key, value in self.ref})
        return row


@dataclass(frozen=True)
class Suite:
    """A validated suite: its expanded cases, in file order."""

    name: str
    description: str
    path: Path
    defaults: dict[str, Any] = field(hash=False)
    cases: tuple[Case, ...]

    def to_dict(self) -> dict[str, Any]:
        """The resolved suite (every case expanded) as plain data for suite.yaml."""
        return {
            "name": self.name,
            "description": self.description,
            "source": str(self.path),
            "defaults": dict(self.defaults),
            "cases": [_case_dict(case) for case in self.cases],
        }


def _case_dict(case: Case) -> dict[str, Any]:
    """One expanded case as plain data."""
    data = case.base_row()
    data.update(budget_s=case.budget_s, metrics=list(case.metrics), kind=case.kind)
    if case.train:
        data["train"] = dict(case.train)
    return {k: v for k, v in data.items() if v is not None}


class Locator:
    """Turns a key path into `file:line: key.path` using the YAML node tree."""

    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path = path
        self.lines: dict[KeyPath, int] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, key_path: KeyPath) -> None:
        """Record the line of every mapping value and sequence item."""
        self.lines[key_path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                self._walk(value_node, (*key_path, str(key_node.value)))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*key_path, index))

    def error(self, key_path: KeyPath, message: str) -> BenchError:
        """A BenchError `file:line: key.path: message` (the nearest known line)."""
        line = next(
            (
                self.lines[key_path[:n]]
                for n in range(len(key_path), -1, -1)
                if key_path[:n] in self.lines
            ),
            None,
        )
        where = f"{self.path}:{line}" if line else str(self.path)
        return BenchError(f"{where}: {format_key_path(key_path) or '(top level)'}: {message}")


def format_key_path(key_path: KeyPath) -> str:
    """`cases[2].models[0]` style text of a key path."""
    text = ""
    for part in key_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _type_name(value: Any) -> str:
    """A short type name for error messages."""
    return "null" if value is None else type(value).__name__


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


def _metrics(value: Any) -> str | None:
    """None if value is a non-empty list of known metrics."""
    ok = isinstance(value, list) and value and all(m in METRICS for m in value)
    return None if ok else f"expected a non-empty list of: {', '.join(METRICS)}"


SETTING_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "device": _choice(DEVICES),
    "batch": _positive_int,
    "input": _input,
    "dtype": _choice(tuple(DTYPES)),
    "threads": _optional_positive_int,
    "budget_s": _positive_number,
    "metrics": _metrics,
    "channels_last": _boolean,
    "mode": _choice(MODES),
}


def check_setting(loc: Locator, key_path: KeyPath, key: str, value: Any) -> Any:
    """Validate one setting value (BenchError naming it) and return it."""
    problem = SETTING_CHECKS[key](value)
    if problem:
        raise loc.error(key_path, f"bad value {value!r} ({_type_name(value)}); {problem}")
    return value


def check_keys(loc: Locator, key_path: KeyPath, mapping: Any, allowed: tuple[str, ...]) -> dict:
    """The mapping itself, after checking it is a mapping with only `allowed` keys."""
    if not isinstance(mapping, dict):
        raise loc.error(key_path, f"expected a mapping, got {_type_name(mapping)} {mapping!r}")
    for key in mapping:
        if key not in allowed:
            raise loc.error(
                (*key_path, str(key)), f"unknown key {key!r}; valid keys: {', '.join(allowed)}"
            )
    return mapping


def check_text(loc: Locator, key_path: KeyPath, value: Any, required: bool = False) -> str:
    """A string value (or '' when absent and not required)."""
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise loc.error(key_path, f"expected a non-empty string, got {_type_name(value)} {value!r}")
    return value.strip()


def check_ref(loc: Locator, key_path: KeyPath, value: Any) -> tuple[tuple[str, Any], ...]:
    """A `ref` mapping of scalar reference values, as sorted pairs."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise loc.error(
            key_path, f"expected a mapping of reference values, got {_type_name(value)}"
        )
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool) or not str(key).isidentifier():
            raise loc.error(
                (*key_path, str(key)), f"reference {key!r}: expected a scalar value, got {item!r}"
            )
    return tuple((str(k), v) for k, v in value.items())


def read_yaml(path: Path) -> tuple[Any, Locator]:
    """Parse a suite file with yaml.safe_load and map its key paths to lines."""
    if not path.is_file():
        raise BenchError(f"suite file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BenchError(f"{path}{line}: not valid YAML ({problem})") from None
    return data, Locator(path, root)


def load_suite(path: str | Path, device: str | None = None) -> Suite:
    """Read, validate and expand a suite file; `device` overrides `defaults.device`."""
    path = Path(path)
    data, loc = read_yaml(path)
    check_keys(loc, (), data, TOP_KEYS)
    name = check_suite_name(loc, data.get("name"))
    description = check_text(loc, ("description",), data.get("description"))
    defaults = resolve_defaults(loc, data.get("defaults"), device)
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise loc.error(("cases",), f"expected a non-empty list of cases, got {raw_cases!r}")
    builder = SpecChecker()
    cases: list[Case] = []
    for index, raw in enumerate(raw_cases):
        cases += expand_case(loc, ("cases", index), raw, name, defaults, builder)
    check_unique(loc, cases)
    return Suite(name, description, path, defaults, tuple(cases))


def check_suite_name(loc: Locator, value: Any) -> str:
    """The suite name: letters, digits, '-', '_' or '.' (it names the results folder)."""
    name = check_text(loc, ("name",), value, required=True)
    if not all(ch.isalnum() or ch in "-_." for ch in name):
        raise loc.error(("name",), f"bad value {name!r}; use letters, digits, '-', '_' or '.'")
    return name


def resolve_defaults(loc: Locator, raw: Any, device: str | None) -> dict[str, Any]:
    """Built-in defaults updated by the file's `defaults` and the `--device` override."""
    raw = check_keys(loc, ("defaults",), raw if raw is not None else {}, tuple(DEFAULTS))
    defaults = dict(DEFAULTS)
    for key, value in raw.items():
        defaults[key] = check_setting(loc, ("defaults", key), key, value)
    if device is not None:
        if device not in DEVICES:
            raise BenchError(f"--device {device!r}: expected one of: {', '.join(DEVICES)}")
        defaults["device"] = device
    return defaults


@dataclass(frozen=True)
class ModelItem:
    """One entry of a case's `models` after wildcard expansion."""

    spec: str
    ref: tuple[tuple[str, Any], ...]
    note: str
    key_path: KeyPath


def expand_case(
    loc: Locator, kp: KeyPath, raw: Any, suite: str, defaults: dict, specs: SpecChecker
) -> list[Case]:
    """One case mapping -> one Case per model x sweep point x device."""
    check_keys(loc, kp, raw, CASE_KEYS)
    common = case_common(loc, kp, raw, suite)
    name = common["case"]
    settings = {
        key: check_setting(loc, (*kp, key), key, raw[key]) if key in raw else defaults[key]
        for key in SETTING_KEYS
    }
    case_ref = check_ref(loc, (*kp, "ref"), raw.get("ref"))
    case_note = check_text(loc, (*kp, "note"), raw.get("note"))
    devices = check_devices(loc, (*kp, "devices"), raw.get("devices", [defaults["device"]]))
    cases = []
    for item in check_models(loc, (*kp, "models"), raw.get("models")):
        for point in sweep_points(loc, (*kp, "sweep"), raw.get("sweep")):
            run = {**settings, **{k: v for k, v in point.items() if k in RUN_SWEEP_KEYS}}
            keywords = {k: v for k, v in point.items() if k not in RUN_SWEEP_KEYS}
            spec, shape = specs.check(loc, item, keywords)
            ref = dict(case_ref) | dict(item.ref)
            note = "; ".join(filter(None, (case_note, item.note)))
            for device in devices:
                case_id = make_case_id(name, spec, device, run, point)
                cases.append(make_case(case_id, spec, device, run, shape, ref, note, common))
    return cases


def case_common(loc: Locator, kp: KeyPath, raw: dict, suite: str) -> dict[str, Any]:
    """The fields every Case of one case mapping shares: suite, case, group, kind, train."""
    name = check_text(loc, (*kp, "name"), raw.get("name"), required=True)
    kind = raw.get("kind", "measure")
    if kind not in KINDS:
        raise loc.error((*kp, "kind"), f"bad value {kind!r}; expected one of: {', '.join(KINDS)}")
    return {
        "suite": suite,
        "case": name,
        "group": check_text(loc, (*kp, "group"), raw.get("group")) or name,
        "kind": kind,
        "train": check_train(loc, kp, raw, kind),
    }


def make_case(
    case_id: str,
    spec: str,
    device: str,
    run: dict,
    shape: tuple[int, int, int],
    ref: dict,
    note: str,
    common: dict,
) -> Case:
    """Assemble one Case from resolved settings."""
    return Case(
        case_id=case_id,
        model=spec,
        device=device,
        batch=run["batch"],
        input=parse_input_shape(run["input"]) if run["input"] else shape,
        dtype=str(run["dtype"]),
        threads=run["threads"],
        budget_s=float(run["budget_s"]),
        metrics=tuple(run["metrics"]),
        channels_last=run["channels_last"],
        mode=run["mode"],
        note=note,
        ref=tuple(ref.items()),
        **common,
    )


def make_case_id(name: str, spec: str, device: str, run: dict, point: dict) -> str:
    """Stable id `case/spec/device/b<batch>` plus any swept run setting (`/threads=1`)."""
    extras = [f"/{k}={point[k]}" for k in RUN_SWEEP_KEYS if k in point and k != "batch"]
    return f"{name}/{spec}/{device}/b{run['batch']}" + "".join(extras)


def check_train(loc: Locator, kp: KeyPath, raw: dict, kind: str) -> tuple[tuple[str, Any], ...]:
    """The validated `train:` mapping of a fine-tune case (via bench.train.parse_train_options)."""
    mapping = raw.get("train")
    if kind != "finetune":
        if mapping is not None:
            raise loc.error((*kp, "train"), "only valid in a case with kind: finetune")
        return ()
    if mapping is None:
        raise loc.error((*kp, "train"), "a kind: finetune case needs a train: mapping")
    from bench.train import parse_train_options

    line = loc.lines.get((*kp, "train"))
    where = f"{loc.path}:{line}: {format_key_path((*kp, 'train'))}"
    parse_train_options(mapping, where)
    return tuple(mapping.items())


def check_devices(loc: Locator, kp: KeyPath, value: Any) -> list[str]:
    """Devices of a case (a name or a list of cpu|cuda|auto); auto resolved here, no repeats."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise loc.error(kp, f"expected a non-empty list of devices ({', '.join(DEVICES)})")
    devices: list[str] = []
    for index, device in enumerate(values):
        check_setting(loc, (*kp, index), "device", device)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device not in devices:
            devices.append(device)
    return devices


def check_models(loc: Locator, kp: KeyPath, value: Any) -> list[ModelItem]:
    """The case's model entries, wildcards expanded via list_models."""
    values = [value] if isinstance(value, str | dict) else value
    if not isinstance(values, list) or not values:
        raise loc.error(kp, f"expected a non-empty list of model specs, got {value!r}")
    items: list[ModelItem] = []
    for index, entry in enumerate(values):
        items += expand_model_item(loc, (*kp, index), entry)
    return items


def expand_model_item(loc: Locator, kp: KeyPath, entry: Any) -> list[ModelItem]:
    """A spec string or {model, ref, note} mapping -> one ModelItem per wildcard match."""
    if isinstance(entry, dict):
        check_keys(loc, kp, entry, MODEL_ITEM_KEYS)
        spec = check_text(loc, (*kp, "model"), entry.get("model"), required=True)
        ref = check_ref(loc, (*kp, "ref"), entry.get("ref"))
        note = check_text(loc, (*kp, "note"), entry.get("note"))
    else:
        spec, ref, note = check_text(loc, kp, entry, required=True), (), ""
    from netdefs import format_spec, list_models, parse_spec

    try:
        name, keywords = parse_spec(spec)
    except ValueError as exc:
        raise loc.error(kp, str(exc)) from None
    if not any(ch in name for ch in WILDCARD_CHARS):
        return [ModelItem(spec, ref, note, kp)]
    matches = list_models(name)
    if not matches:
        raise loc.error(kp, f"wildcard {name!r} matches no model; see `bench list models`")
    return [ModelItem(format_spec(m, keywords), ref, note, kp) for m in matches]


def sweep_points(loc: Locator, kp: KeyPath, value: Any) -> list[dict[str, Any]]:
    """The product of the sweep's lists, as one dict per point ([{}] without a sweep)."""
    if value is None:
        return [{}]
    sweep = check_keys(loc, kp, value, tuple(value) if isinstance(value, dict) else ())
    for key, values in sweep.items():
        check_sweep_values(loc, (*kp, str(key)), str(key), values)
    keys = [str(k) for k in sweep]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*sweep.values())]


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


class SpecChecker:
    """Builds each distinct spec once on the meta device (no memory, no weights) to validate it."""

    def __init__(self) -> None:
        self.built: dict[str, tuple[str, tuple[int, int, int]]] = {}

    def check(
        self, loc: Locator, item: ModelItem, keywords: dict[str, Any]
    ) -> tuple[str, tuple[int, int, int]]:
        """The canonical spec with swept keywords applied, and the model's input shape."""
        from netdefs import format_spec, get_model, parse_spec

        name, base = parse_spec(item.spec)
        spec = format_spec(name, {**base, **keywords})
        if spec not in self.built:
            try:
                with torch.device("meta"):
                    model = get_model(spec)
            except Exception as exc:  # a builder may raise anything for impossible values
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise loc.error(item.key_path, f"model {spec!r}: {message}") from None
            shape = tuple(int(d) for d in model.input_shape)
            self.built[spec] = (getattr(model, "spec", spec), shape)  # type: ignore[assignment]
        return self.built[spec]


def check_unique(loc: Locator, cases: list[Case]) -> None:
    """BenchError naming the first case id that two expanded cases share."""
    seen: set[str] = set()
    for case in cases:
        if case.case_id in seen:
            raise BenchError(
                f"{loc.path}: duplicate case id {case.case_id!r}; give the cases distinct names"
            )
        seen.add(case.case_id)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`K/N` (0 <= K < N) -> (K, N); None stays None."""
    if text is None:
        return None
    k_text, sep, n_text = str(text).partition("/")
    try:
        k, n = int(k_text), int(n_text)
    except ValueError:
        k, n = -1, 0
    if not sep or n < 1 or not 0 <= k < n:
        raise BenchError(f"--shard {text!r}: expected K/N with 0 <= K < N (e.g. 0/4)")
    return k, n


def select_cases(
    cases: tuple[Case, ...], pattern: str | None = None, shard: tuple[int, int] | None = None
) -> list[Case]:
    """Every N-th case for shard K/N (by position in the suite), then those matching `pattern`."""
    chosen = list(cases[shard[0] :: shard[1]]) if shard else list(cases)
    if pattern:
        chosen = [
            c
            for c in chosen
            if fnmatch.fnmatchcase(c.case_id, pattern) or fnmatch.fnmatchcase(c.model, pattern)
        ]
        if not chosen:
            examples = ", ".join(c.case_id for c in cases[:3])
            raise BenchError(f"--filter {pattern!r} matches no case id or model (e.g. {examples})")
    return chosen
