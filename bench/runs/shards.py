"""Which shard of a suite this process runs: `K/N`, or read from a cluster's job array.

`--shard auto` reads a Slurm job array (`SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT`, with
`SLURM_ARRAY_TASK_MIN`, `_MAX` and `_STEP` when the array does not start at 0 or steps by more
than 1) or a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`; the Job's completions are not in
the pod's environment, so give them: `--shard auto/N`). Each shard writes its own run folder;
`bench merge` joins them. Missing or inconsistent variables are one line naming them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from bench.core.errors import BenchError
from bench.runs.suite import parse_shard

SLURM_ID = "SLURM_ARRAY_TASK_ID"
SLURM_COUNT = "SLURM_ARRAY_TASK_COUNT"
SLURM_MIN = "SLURM_ARRAY_TASK_MIN"
SLURM_MAX = "SLURM_ARRAY_TASK_MAX"
SLURM_STEP = "SLURM_ARRAY_TASK_STEP"
K8S_INDEX = "JOB_COMPLETION_INDEX"


def resolve_shard(
    text: str | None, environ: Mapping[str, str] | None = None
) -> tuple[int, int] | None:
    """`K/N`, `auto` or `auto/N` -> (K, N); None stays None."""
    if text is None:
        return None
    head, _, tail = str(text).partition("/")
    if head.strip().lower() != "auto":
        return parse_shard(text)
    env = os.environ if environ is None else environ
    count = _given_count(text, tail) if tail else None
    if SLURM_ID in env:
        return _slurm_shard(env, count)
    if K8S_INDEX in env:
        return _indexed_job_shard(env, count, text)
    raise BenchError(
        f"--shard {text}: neither {SLURM_ID} (a Slurm job array) nor {K8S_INDEX} "
        "(a Kubernetes Indexed Job) is set; outside a job array give --shard K/N"
    )


def _given_count(text: str, tail: str) -> int:
    """N of `auto/N` (a positive integer)."""
    try:
        count = int(tail)
    except ValueError:
        count = 0
    if count < 1:
        raise BenchError(f"--shard {text}: expected auto, or auto/N with N a positive integer")
    return count


def _int_var(env: Mapping[str, str], name: str) -> int | None:
    """An integer environment variable (None when unset; BenchError when not an integer)."""
    if name not in env:
        return None
    try:
        return int(env[name])
    except ValueError:
        raise BenchError(f"--shard auto: {name}={env[name]!r} is not an integer") from None


def _slurm_shard(env: Mapping[str, str], given: int | None) -> tuple[int, int]:
    """The shard of a Slurm array task: (ID - MIN) / STEP of the array's task count."""
    task = _int_var(env, SLURM_ID)
    low, high = _int_var(env, SLURM_MIN), _int_var(env, SLURM_MAX)
    step = _int_var(env, SLURM_STEP) or 1
    count = _int_var(env, SLURM_COUNT)
    if count is None and low is not None and high is not None:
        count = (high - low) // step + 1
    count = count if count is not None else given
    if count is None:
        raise BenchError(
            f"--shard auto: {SLURM_ID} is set but {SLURM_COUNT} is not "
            f"(nor {SLURM_MIN}/{SLURM_MAX}); give the count with --shard auto/N"
        )
    low = 0 if low is None else low
    return _check_slurm(task, low, high, step, count, given)


def _check_slurm(
    task: int, low: int, high: int | None, step: int, count: int, given: int | None
) -> tuple[int, int]:
    """(K, N) after checking the Slurm variables agree with each other and with auto/N."""
    where = f"{SLURM_ID}={task}, {SLURM_MIN}={low}, {SLURM_STEP}={step}, {SLURM_COUNT}={count}"
    if step < 1 or count < 1:
        raise BenchError(f"--shard auto: inconsistent Slurm array ({where})")
    if high is not None and (high - low) // step + 1 != count:
        raise BenchError(
            f"--shard auto: {SLURM_MIN}..{SLURM_MAX} = {low}..{high} step {step} holds "
            f"{(high - low) // step + 1} tasks, not {SLURM_COUNT}={count}: an irregular "
            "array (a list of ids); give --shard K/N per task instead"
        )
    index, off_step = divmod(task - low, step)
    if off_step or not 0 <= index < count:
        raise BenchError(f"--shard auto: task {task} is not in the array ({where})")
    if given is not None and given != count:
        raise BenchError(f"--shard auto/{given}: the Slurm array has {count} tasks ({where})")
    return index, count


def _indexed_job_shard(env: Mapping[str, str], count: int | None, text: str) -> tuple[int, int]:
    """The shard of a Kubernetes Indexed Job pod: JOB_COMPLETION_INDEX of the N given."""
    index = _int_var(env, K8S_INDEX)
    if count is None:
        raise BenchError(
            f"--shard {text}: {K8S_INDEX}={index} is set but the pod does not know the Job's "
            "completions; give them with --shard auto/N"
        )
    if not 0 <= index < count:
        raise BenchError(f"--shard {text}: {K8S_INDEX}={index} is outside 0..{count - 1}")
    return index, count
