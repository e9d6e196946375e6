"""Suite files: validation messages, sweep and wildcard expansion, the shipped suites."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bench.core.errors import BenchError
from bench.runs.suite import load_suite, parse_shard, select_cases
from netdefs import list_models
from netdefs.guidelines import paper_configs

SUITES = Path(__file__).resolve().parent.parent / "suites"


def write_suite(tmp_path: Path, text: str) -> Path:
    """A suite file in tmp_path from dedented YAML text."""
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    """The BenchError message loading this suite text raises."""
    with pytest.raises(BenchError) as info:
        load_suite(write_suite(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return message


BASE = """
name: t
cases:
  - name: a
    models: ["g2:c=8,groups=2,layers=1,size=8"]
"""


def test_minimal_suite_expands_with_defaults(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, BASE))
    (case,) = suite.cases
    assert case.case_id == "a/g2:c=8,groups=2,layers=1,size=8/cpu/b1"
    assert (case.device, case.batch, case.dtype, case.mode) == ("cpu", 1, "float32", "infer")
    assert case.input == (8, 8, 8)
    assert case.group == "a"
    assert case.metrics == ("count", "latency")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\ncolour: red\ncases: []\n", ["s.yaml:2", "colour", "unknown key", "cases"]),
        (BASE + "    bogus: 1\n", ["s.yaml:5", "cases[0].bogus", "valid keys", "models"]),
        (BASE + "    batch: two\n", ["cases[0].batch", "'two'", "positive integer"]),
        (BASE + "    batch: 0\n", ["cases[0].batch", "positive integer"]),
        (BASE + "    dtype: float8\n", ["cases[0].dtype", "float8", "float32", "bfloat16"]),
        (BASE + "    mode: eval\n", ["cases[0].mode", "infer, train"]),
        (BASE + "    metrics: [speed]\n", ["cases[0].metrics", "count, latency"]),
        (BASE + "    input: 3x224\n", ["cases[0].input", "CxHxW"]),
        (BASE + "    budget_s: -1\n", ["cases[0].budget_s", "number > 0"]),
        (BASE + "    devices: [tpu]\n", ["s.yaml:5", "cases[0].devices[0]", "cpu, cuda, auto"]),
        (BASE + "    devices: []\n", ["cases[0].devices", "non-empty"]),
        (BASE + "    sweep: {size: []}\n", ["cases[0].sweep.size", "empty"]),
        (BASE + "    sweep: {size: 8}\n", ["cases[0].sweep.size", "non-empty list"]),
        (BASE + "    sweep: {batch: [1, -2]}\n", ["cases[0].sweep.batch[1]", "positive"]),
        (BASE + "    sweep: {device: [cpu]}\n", ["cases[0].sweep.device", "devices"]),
        (BASE + "    kind: train\n", ["cases[0].kind", "measure, finetune"]),
        (BASE + "    kind: finetune\n", ["cases[0].train", "needs a train"]),
        (BASE + "    train: {epochs: 1}\n", ["cases[0].train", "kind: finetune"]),
        (BASE + "    ref: {paper: [1, 2]}\n", ["cases[0].ref.paper", "scalar"]),
        ("name: t\ndefaults: {device: gpu}\ncases: []\n", ["defaults.device", "'gpu'", "cuda"]),
        ("name: t\ncases: []\n", ["s.yaml:2", "cases", "non-empty list"]),
        ("name: 'a b'\ncases: [1]\n", ["name", "'a b'", "letters"]),
        ("cases: [1]\n", ["name", "non-empty string"]),
        ("name: t\ncases: [3]\n", ["cases[0]", "expected a mapping"]),
        ("- 1\n- 2\n", ["(top level)", "expected a mapping"]),
    ],
)
def test_validation_errors_name_file_key_value_and_choices(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    message = error_of(tmp_path, text)
    assert str(tmp_path / "s.yaml") in message
    for part in expected:
        assert part in message


def test_unknown_model_names_the_closest(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE.replace("g2:c=8,groups=2,layers=1,size=8", "resnet19"))
    assert "s.yaml:4" in message and "cases[0].models[0]" in message
    assert "'resnet19'" in message and "resnet18" in message


def test_impossible_parameters_are_caught_at_load(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE.replace("c=8,groups=2", "c=180,groups=8"))
    assert "cases[0].models[0]" in message and "180" in message and "8" in message


def test_impossible_swept_parameter_is_caught(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE + "    sweep: {groups: [2, 3]}\n")
    assert "groups=3" in message and "cases[0].models[0]" in message


def test_unknown_spec_option_lists_allowed(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE.replace("layers=1", "depth=1"))
    assert "'depth'" in message and "allowed" in message


def test_wildcard_without_match(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE.replace("g2:c=8,groups=2,layers=1,size=8", "nonet_*"))
    assert "'nonet_*'" in message and "matches no model" in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "name: t\ncases: [\n  - {a: 1\n")
    assert "not valid YAML" in message and str(tmp_path / "s.yaml") in message


def test_missing_file() -> None:
    with pytest.raises(BenchError, match="does not exist"):
        load_suite("/nonexistent/suite.yaml")


def test_duplicate_case_ids(tmp_path: Path) -> None:
    text = BASE + "  - name: a\n    models: ['g2:c=8,groups=2,layers=1,size=8']\n"
    assert "duplicate case id" in error_of(tmp_path, text)


def test_finetune_train_options_validated_by_train_module(tmp_path: Path) -> None:
    text = BASE + "    kind: finetune\n    train: {epochs: many}\n"
    message = error_of(tmp_path, text)
    assert "s.yaml:6" in message and "cases[0].train.epochs" in message


def test_sweep_is_a_product_into_spec_and_run_settings(tmp_path: Path) -> None:
    text = BASE + "    sweep: {groups: [1, 2, 4], batch: [1, 8]}\n    devices: [cpu, cuda]\n"
    suite = load_suite(write_suite(tmp_path, text))
    assert len(suite.cases) == 3 * 2 * 2
    ids = {c.case_id for c in suite.cases}
    assert "a/g2:c=8,groups=4,layers=1,size=8/cuda/b8" in ids
    assert len(ids) == 12
    assert {c.batch for c in suite.cases} == {1, 8}


def test_swept_run_setting_other_than_batch_enters_the_id(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, BASE + "    sweep: {threads: [1, 2]}\n"))
    assert [c.case_id.rsplit("/", 1)[-1] for c in suite.cases] == ["threads=1", "threads=2"]
    assert [c.threads for c in suite.cases] == [1, 2]


def test_wildcard_expands_via_list_models(tmp_path: Path) -> None:
    text = "name: t\ncases:\n  - name: v1\n    models: [shufflenet_v1_g*_x1_0]\n"
    suite = load_suite(write_suite(tmp_path, text))
    assert [c.model for c in suite.cases] == list_models("shufflenet_v1_g*_x1_0")
    assert len(suite.cases) == 5


def test_refs_merge_case_then_model_and_notes_join(tmp_path: Path) -> None:
    text = """
    name: t
    cases:
      - name: a
        ref: {unit: images/s, throughput: 1}
        note: case note
        models:
          - {model: "g2:c=8,groups=2,layers=1,size=8", ref: {throughput: 5.5}, note: own}
    """
    (case,) = load_suite(write_suite(tmp_path, text)).cases
    row = case.base_row()
    assert row["ref_throughput"] == 5.5 and row["ref_unit"] == "images/s"
    assert row["note"] == "case note; own"


def test_device_override_changes_only_the_default(tmp_path: Path) -> None:
    text = BASE + "  - name: b\n    devices: [cpu]\n    models: ['g2:c=8,groups=1,size=8']\n"
    suite = load_suite(write_suite(tmp_path, text), device="cuda")
    assert [c.device for c in suite.cases] == ["cuda", "cpu"]
    with pytest.raises(BenchError, match="--device 'tpu'"):
        load_suite(write_suite(tmp_path, BASE), device="tpu")


def test_guidelines_suite_is_exactly_the_paper_tables() -> None:
    suite = load_suite(SUITES / "guidelines.yaml")
    cells = paper_configs()
    assert len(suite.cases) == len(cells) == 102
    got = {
        (c.group, c.model, c.device, c.batch, c.threads, dict(c.ref)["throughput"])
        for c in suite.cases
    }
    want = {
        (
            f"G{p.table[1]}",
            p.spec,
            "cuda" if p.platform == "gpu" else "cpu",
            8 if p.platform == "gpu" else 1,
            None if p.platform == "gpu" else 1,
            p.throughput,
        )
        for p in cells
    }
    assert got == want
    units = {dict(c.ref)["unit"] for c in suite.cases if c.device == "cpu"}
    assert units == {"images/s"}
    g8 = [c for c in suite.cases if c.model == "g2:c=184,groups=8"]
    assert len(g8) == 1 and "c=184" in g8[0].note and "180" in g8[0].note


def test_architectures_and_smoke_suites_load() -> None:
    arch = load_suite(SUITES / "architectures.yaml")
    models = {c.model for c in arch.cases}
    for name in ("resnet152", "resnext101_64x4d", "shufflenet_v2_x2_0", "torchvision:mobilenet_v2"):
        assert name in models
    assert set(list_models("shufflenet_v1_g*_x1_0")) <= models
    assert {c.batch for c in arch.cases} == {1, 8}
    smoke = load_suite(SUITES / "smoke.yaml")
    assert any(c.device == "cuda" for c in smoke.cases)


def test_shard_and_filter_selection(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, BASE + "    sweep: {groups: [1, 2, 4, 8]}\n"))
    shards = [select_cases(suite.cases, shard=(k, 3)) for k in range(3)]
    assert sorted(c.case_id for s in shards for c in s) == sorted(c.case_id for c in suite.cases)
    assert [len(s) for s in shards] == [2, 1, 1]
    assert len(select_cases(suite.cases, pattern="*groups=8*")) == 1
    with pytest.raises(BenchError, match="matches no case"):
        select_cases(suite.cases, pattern="nothing*")


@pytest.mark.parametrize("text", ["4/4", "-1/2", "a/b", "3", "0/0"])
def test_bad_shard(text: str) -> None:
    with pytest.raises(BenchError, match="K/N"):
        parse_shard(text)
    assert parse_shard("1/4") == (1, 4)
