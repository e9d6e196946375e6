"""--shard auto from Slurm job arrays and Kubernetes Indexed Jobs; one clear line otherwise."""

from __future__ import annotations

import pytest

from bench.core.errors import BenchError
from bench.runs.shards import resolve_shard


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("0/4", {}, (0, 4)),
        (None, {}, None),
        ("auto", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}, (2, 4)),
        (
            "auto",
            {
                "SLURM_ARRAY_TASK_ID": "5",
                "SLURM_ARRAY_TASK_COUNT": "4",
                "SLURM_ARRAY_TASK_MIN": "3",
                "SLURM_ARRAY_TASK_MAX": "9",
                "SLURM_ARRAY_TASK_STEP": "2",
            },
            (1, 4),
        ),
        (
            "auto",
            {
                "SLURM_ARRAY_TASK_ID": "12",
                "SLURM_ARRAY_TASK_MIN": "10",
                "SLURM_ARRAY_TASK_MAX": "13",
            },
            (2, 4),
        ),
        ("auto/3", {"SLURM_ARRAY_TASK_ID": "1"}, (1, 3)),
        ("auto/8", {"JOB_COMPLETION_INDEX": "7"}, (7, 8)),
        ("AUTO/8", {"JOB_COMPLETION_INDEX": "0"}, (0, 8)),
    ],
)
def test_shards_are_read_from_each_variable_set(
    text: str | None, env: dict[str, str], expected: tuple[int, int] | None
) -> None:
    assert resolve_shard(text, env) == expected


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("auto", {}, "neither SLURM_ARRAY_TASK_ID .* nor JOB_COMPLETION_INDEX"),
        ("auto", {"SLURM_ARRAY_TASK_ID": "1"}, "SLURM_ARRAY_TASK_COUNT is not"),
        ("auto", {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"}, "'x' is not an int"),
        ("auto", {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, "not in the array"),
        (
            "auto",
            {
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_ARRAY_TASK_COUNT": "3",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_MAX": "7",
            },
            "holds 7 tasks, not SLURM_ARRAY_TASK_COUNT=3: an irregular array",
        ),
        (
            "auto",
            {
                "SLURM_ARRAY_TASK_ID": "4",
                "SLURM_ARRAY_TASK_COUNT": "3",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_STEP": "2",
            },
            "task 4 is not in the array",
        ),
        ("auto/2", {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, "has 4 tasks"),
        ("auto", {"JOB_COMPLETION_INDEX": "3"}, "give them with --shard auto/N"),
        ("auto/3", {"JOB_COMPLETION_INDEX": "3"}, "outside 0..2"),
        ("auto/0", {"JOB_COMPLETION_INDEX": "0"}, "auto/N with N a positive integer"),
        ("4/4", {}, "expected K/N with 0 <= K < N"),
    ],
)
def test_missing_or_inconsistent_variables_are_one_line(
    text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(BenchError, match=message) as caught:
        resolve_shard(text, env)
    assert "\n" not in str(caught.value)
