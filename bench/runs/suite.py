"""Suite files: YAML (safe_load) validated into frozen dataclasses, one `Case` per measurement.

A suite has `name`, `description`, `defaults` and `cases`. Each case names models (spec strings
or `{model, ref, note}` mappings; shell wildcards in the name expand through `list_models`), may
`sweep` lists of values (their product, into spec keywords or run settings), lists `devices`, a
`group` label and `ref` values (the paper's numbers, written as `ref_<key>` columns). `imports`
lists modules or `.py` files (relative to the suite file) to import first, e.g. a package that
registers networks; a `file.py:Callable` spec's file is relative to the suite file too. Every
error names the file, the line, the key path, the bad value and the valid choices.
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.choices import DEVICES
from bench.core.errors import BenchError
from bench.core.limits import MAX_SUITE_CASES
from bench.core.models import build_model
from bench.core.options import format_input_shape, parse_input_shape
from bench.core.paths import SUITES_DIR
from bench.runs.settings import (
    DEFAULTS,
    RUN_SWEEP_KEYS,
    SETTING_CHECKS,
    SETTING_KEYS,
    check_devices,
    check_ref,
    check_setting,
    sweep_points,
    sweep_size,
)
from bench.runs.yamlfile import (
    KeyPath,
    Locator,
    check_keys,
    check_text,
    format_key_path,
    read_yaml,
)
from bench.train.options import parse_train_options
from netdefs import format_spec, list_models, parse_spec
from netdefs.registry import ZOO_PREFIXES
from netdefs.userspec import import_user_modules, resolve_file_spec
from netdefs.validate import shown

KINDS = ("measure", "finetune")
TOP_KEYS = ("name", "description", "defaults", "cases", "imports")
CASE_KEYS = ("name", "group", "models", "sweep", "devices", "ref", "note", "kind", "train")
CASE_KEYS += SETTING_KEYS
MODEL_ITEM_KEYS = ("model", "ref", "note")
WILDCARD_CHARS = "*?["


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
    input: tuple[int, ...] | None
    dtype: str
    threads: int | None
    budget_s: float
    metrics: tuple[str, ...]
    channels_last: bool
    mode: str
    kind: str = "measure"
    runtime: str = "eager"
    interleave: bool = False
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
            "runtime": self.runtime,
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
    data["interleave"] = case.interleave
    if case.train:
        data["train"] = dict(case.train)
    return {k: v for k, v in data.items() if v is not None}


def load_suite(
    path: str | Path, device: str | None = None, runtimes: list[str] | None = None
) -> Suite:
    """Read, validate and expand a suite file.

    `device` overrides `defaults.device`; `runtimes` replaces every case's runtimes.
    """
    path = Path(path)
    data, loc = read_yaml(path)
    check_keys(loc, (), data, TOP_KEYS)
    name = check_suite_name(loc, data.get("name"))
    import_suite_modules(loc, data.get("imports"))
    description = check_text(loc, ("description",), data.get("description"))
    defaults = resolve_defaults(loc, data.get("defaults"), device)
    override = check_runtime_override(runtimes)
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise loc.error(("cases",), f"expected a non-empty list of cases, got {raw_cases!r}")
    builder = SpecChecker()
    cases: list[Case] = []
    cap = int(MAX_SUITE_CASES.value())
    for index, raw in enumerate(raw_cases):
        kp = ("cases", index)
        cases += expand_case(loc, kp, raw, name, defaults, builder, cap - len(cases), override)
    check_unique(loc, cases)
    return Suite(name, description, path, defaults, tuple(cases))


def import_suite_modules(loc: Locator, value: Any) -> None:
    """Import the suite's `imports:` (modules or .py files, relative to the suite's folder)."""
    if value is None:
        return
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise loc.error(("imports",), f"expected a list of modules or .py files, got {value!r}")
    for index, module in enumerate(names):
        try:
            import_user_modules([module], base=Path(loc.path).parent)
        except ValueError as exc:
            raise loc.error(("imports", index), str(exc)) from None


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


def check_runtime_override(runtimes: list[str] | None) -> list[str] | None:
    """The `--runtime` override as a list of known, distinct runtimes (None: no override)."""
    if runtimes is None:
        return None
    values = [str(r) for r in runtimes]
    problem = SETTING_CHECKS["runtimes"](values)
    if problem:
        raise BenchError(f"--runtime {', '.join(values) or '(none)'}: {problem}")
    return values


def expand_case(
    loc: Locator,
    kp: KeyPath,
    raw: Any,
    suite: str,
    defaults: dict,
    specs: SpecChecker,
    room: int,
    runtimes: list[str] | None = None,
) -> list[Case]:
    """One case mapping -> one Case per model x sweep point x device x runtime (at most `room`)."""
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
    items = check_models(loc, (*kp, "models"), raw.get("models"))
    runtimes = runtimes or settings["runtimes"]
    planned = len(items) * sweep_size(loc, (*kp, "sweep"), raw.get("sweep")) * len(devices)
    planned *= len(runtimes)
    if planned > room:
        where = (*kp, "sweep" if "sweep" in raw else "models")
        raise loc.error(where, too_many_cases(planned, room))
    cases = []
    for item in items:
        for point in sweep_points(loc, (*kp, "sweep"), raw.get("sweep")):
            run = {**settings, **{k: v for k, v in point.items() if k in RUN_SWEEP_KEYS}}
            keywords = {k: v for k, v in point.items() if k not in RUN_SWEEP_KEYS}
            spec, shape = specs.check(loc, item, keywords)
            if shape is None and not run["input"]:
                raise loc.error(
                    item.key_path,
                    f"model {shown(spec)} has no input_shape; give input: CxHxW in the case",
                )
            ref = dict(case_ref) | dict(item.ref)
            note = "; ".join(filter(None, (case_note, item.note)))
            for device, runtime in itertools.product(devices, runtimes):
                case_id = make_case_id(name, spec, device, runtime, run, point)
                cases.append(
                    make_case(case_id, spec, (device, runtime), run, shape, ref, note, common)
                )
    return cases


def too_many_cases(planned: int, room: int) -> str:
    """Why a case is refused: it would take the suite past MAX_SUITE_CASES."""
    cap = int(MAX_SUITE_CASES.value())
    return (
        f"expands to {planned:,} cases (models x sweep points x devices x runtimes), more than the "
        f"{room:,} left of the cap of {cap:,} cases per suite; narrow the sweep, or raise "
        f"the cap with {MAX_SUITE_CASES.variable}=<cases>"
    )


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
    where: tuple[str, str],
    run: dict,
    shape: tuple[int, ...] | None,
    ref: dict,
    note: str,
    common: dict,
) -> Case:
    """Assemble one Case from resolved settings."""
    return Case(
        case_id=case_id,
        model=spec,
        device=where[0],
        runtime=where[1],
        batch=run["batch"],
        input=parse_input_shape(run["input"]) if run["input"] else shape,
        dtype=str(run["dtype"]),
        threads=run["threads"],
        budget_s=float(run["budget_s"]),
        metrics=tuple(run["metrics"]),
        channels_last=run["channels_last"],
        mode=run["mode"],
        interleave=bool(run["interleave"]),
        note=note,
        ref=tuple(ref.items()),
        **common,
    )


def make_case_id(name: str, spec: str, device: str, runtime: str, run: dict, point: dict) -> str:
    """Stable id `case/spec/device/b<batch>` plus any swept run setting (`/threads=1`) and the
    runtime unless eager (`/runtime=openvino`), so eager ids are those of earlier runs."""
    extras = [f"/{k}={point[k]}" for k in RUN_SWEEP_KEYS if k in point and k != "batch"]
    if runtime != "eager":
        extras.append(f"/runtime={runtime}")
    return f"{name}/{spec}/{device}/b{run['batch']}" + "".join(extras)


def check_train(loc: Locator, kp: KeyPath, raw: dict, kind: str) -> tuple[tuple[str, Any], ...]:
    """The validated `train:` mapping of a fine-tune case (via bench.train.options)."""
    mapping = raw.get("train")
    if kind != "finetune":
        if mapping is not None:
            raise loc.error((*kp, "train"), "only valid in a case with kind: finetune")
        return ()
    if mapping is None:
        raise loc.error((*kp, "train"), "a kind: finetune case needs a train: mapping")
    line = loc.lines.get((*kp, "train"))
    where = f"{loc.path}:{line}: {format_key_path((*kp, 'train'))}"
    parse_train_options(mapping, where)
    return tuple(mapping.items())


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
    try:
        name, keywords = parse_spec(resolve_file_spec(spec, Path(loc.path).parent))
    except ValueError as exc:
        raise loc.error(kp, str(exc)) from None
    if ":" in name and not name.startswith(ZOO_PREFIXES):  # a user's file or module
        return [ModelItem(format_spec(name, keywords), ref, note, kp)]
    if not any(ch in name for ch in WILDCARD_CHARS):
        return [ModelItem(spec, ref, note, kp)]
    try:
        matches = list_models(name)
    except ValueError as exc:
        raise loc.error(kp, str(exc)) from None
    if not matches:
        raise loc.error(kp, f"wildcard {name!r} matches no model; see `bench list models`")
    return [ModelItem(format_spec(m, keywords), ref, note, kp) for m in matches]


class SpecChecker:
    """Builds each distinct spec once on the meta device (no memory, no weights) to validate it."""

    def __init__(self) -> None:
        self.built: dict[str, tuple[str, tuple[int, ...] | None]] = {}

    def check(
        self, loc: Locator, item: ModelItem, keywords: dict[str, Any]
    ) -> tuple[str, tuple[int, ...] | None]:
        """The canonical spec with swept keywords applied, and the model's input shape."""
        name, base = parse_spec(item.spec)
        spec = format_spec(name, {**base, **keywords})
        if spec not in self.built:
            try:
                model = build_model(spec, meta=True)
            except BenchError as exc:
                raise loc.error(item.key_path, f"model {shown(spec)}: {exc}") from None
            given = getattr(model, "input_shape", None)
            shape = tuple(int(d) for d in given) if given is not None else None
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


def shipped_suites() -> list[tuple[str, str]]:
    """(name, description) of every suite in suites/ (unreadable files say why)."""
    listed = []
    for path in sorted(SUITES_DIR.glob("*.yaml")):
        try:
            data, _ = read_yaml(path)
            description = str(data.get("description", "")) if isinstance(data, dict) else ""
        except BenchError:
            description = "(not valid YAML)"
        listed.append((path.stem, description))
    return listed
