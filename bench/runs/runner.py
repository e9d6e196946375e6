"""Run a suite: one row per case, written atomically as each case finishes; resumable, shardable.

`run_suite` expands the suite, picks this shard's cases, skips those a resumed run already
finished (status ok or skipped with complete data; error rows, torn rows and ok rows whose raw
samples are missing are measured again and replaced), measures each one (counts + latency, or a
fine-tune), turns any exception into an `error` row and CUDA cases on a machine without CUDA into
`skipped` rows, and rewrites samples.jsonl, epochs.csv and then results.csv/parquet after every
case (the row last: it commits the case). The run folder is locked for the whole run (one writer
at a time). A full disk stops the run with one line naming the folder; every row finished before
it stays on disk. The measurement function is injectable so tests can use tiny fakes.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import torch

from bench.core.errors import BenchError, one_line
from bench.core.io import DiskFullError, remove_temp_files, write_json, write_yaml
from bench.core.options import parse_dtype, pin_cpus
from bench.core.paths import resolve_suite_path
from bench.measure.contention import CONTENTION_LIMIT, ContentionProbe
from bench.measure.counting import count
from bench.measure.env import collect_env
from bench.measure.interleaved import measure_interleaved
from bench.measure.profile import PROFILED_RUNTIMES, profile_model
from bench.measure.timing import measure_latency
from bench.runs.folder import (
    incomplete_cases,
    read_epochs,
    read_json,
    read_rows,
    read_sample_rounds,
    read_samples,
    write_epochs,
    write_rows,
    write_samples,
)
from bench.runs.isolate import run_isolated
from bench.runs.locations import default_run_dir, resume_dir
from bench.runs.lock import run_folder_lock
from bench.runs.schema import (
    ENV_JSON,
    FINISHED,
    RESULTS_FORMAT_VERSION,
    SUITE_YAML,
    count_row,
    env_row,
    latency_row,
    profile_row,
)
from bench.runs.shards import resolve_shard
from bench.runs.suite import (
    Case,
    Suite,
    load_suite,
    select_cases,
)
from bench.runs.units import ProbeFactory, measure_trusted, plan_units, shard_units
from bench.runtimes import describe_runtimes
from bench.train.loop import finetune
from bench.train.options import parse_train_options
from bench.train.state import discard_train_state

QUICK_BUDGET_S = 0.3


class RunObserver(Protocol):
    """What a caller (the CLI's progress bar) is told while a run goes on."""

    def started(self, run_dir: Path, pending: int, total: int, plans: dict[str, CasePlan]) -> None:
        """The run folder is ready; `pending` of `total` cases are left, planned as `plans`."""

    def case_done(self, case: Case, row: dict[str, Any]) -> None:
        """One case finished (its row is already on disk)."""


@dataclass(frozen=True)
class RunContext:
    """What a measurement needs besides its case."""

    run_dir: Path
    quick: bool = False
    data: str | None = None
    tensorboard: str | None = None
    isolate: bool = False


@dataclass
class Measurement:
    """A measured case: result columns, raw latency samples (ms) and fine-tune epochs."""

    row: dict[str, Any]
    samples_ms: list[float] | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    sample_rounds: list[int] | None = None  # interleaved: the round of each raw sample


Measure = Callable[[Case, RunContext], Measurement]
MeasureGroup = Callable[[list[Case], RunContext], list[Measurement]]


def case_budget(case: Case, quick: bool) -> float:
    """The case's latency budget in seconds (shrunk to QUICK_BUDGET_S by --quick)."""
    return min(case.budget_s, QUICK_BUDGET_S) if quick else case.budget_s


@dataclass(frozen=True)
class CasePlan:
    """What a pending case is expected to take: its budgets in seconds, before it runs.

    `budget_s` is the latency budget plus a fine-tune's time budget (None: a fine-tune without
    one, whose length is not known beforehand); `skipped` cases run nothing.
    """

    budget_s: float | None
    skipped: bool = False


def case_plan(case: Case, quick: bool, cuda: bool) -> CasePlan:
    """The plan of one case (`cuda`: whether this machine has CUDA)."""
    if case.device == "cuda" and not cuda:
        return CasePlan(0.0, skipped=True)
    latency = case_budget(case, quick) if "latency" in case.metrics else 0.0
    if case.kind != "finetune":
        return CasePlan(latency)
    train = dict(case.train).get("time_budget_s")
    return CasePlan(None if train is None else latency + float(train))


def count_columns(case: Case) -> dict[str, Any]:
    """params, mult_adds, flops, mac_elements, mac_bytes per image (batch 1) via counting."""
    result = count(case.model, input_shape=case.input, batch=1, dtype=parse_dtype(case.dtype))
    return count_row(result)


def latency_columns(case: Case, quick: bool) -> tuple[dict[str, Any], list[float]]:
    """Latency statistics (ms), throughput (images/s), batches/s and the raw samples."""
    budget = case_budget(case, quick)
    result = measure_latency(case.model, case.input, budget_s=budget, **timing_settings(case))
    return latency_row(result), list(result.samples_ms)


def timing_settings(case: Case) -> dict[str, Any]:
    """The keyword arguments of a case's latency measurement besides model, input, budget."""
    return {
        "batch": case.batch,
        "device": case.device,
        "threads": case.threads,
        "dtype": parse_dtype(case.dtype),
        "channels_last": case.channels_last,
        "mode": case.mode,
        "runtime": case.runtime,
    }


def profile_columns(case: Case, quick: bool) -> dict[str, Any]:
    """Category time shares beside mult-adds and MAC shares (`metrics: [..., profile]`)."""
    if case.runtime not in PROFILED_RUNTIMES or case.mode != "infer":
        return {"profile_note": f"not profiled per op: runtime {case.runtime}, mode {case.mode}"}
    result = profile_model(
        case.model, input_shape=case.input, batch=case.batch, device=case.device,
        threads=case.threads, dtype=parse_dtype(case.dtype), runtime=case.runtime,
        iterations=3 if quick else 20, latency_budget_s=min(case_budget(case, quick), 2.0),
    )  # fmt: skip
    return profile_row(result)


def measure_case(case: Case, ctx: RunContext) -> Measurement:
    """The real measurement: counts and latency, or a fine-tune plus both."""
    row: dict[str, Any] = {}
    epochs: list[dict[str, Any]] = []
    if case.kind == "finetune":
        row, epochs = finetune_columns(case, ctx)
    if "count" in case.metrics:
        row.update(count_columns(case))
    samples = None
    if "latency" in case.metrics:
        timing, samples = latency_columns(case, ctx.quick)
        row.update(timing)
    if "profile" in case.metrics:
        row.update(profile_columns(case, ctx.quick))
    return Measurement(row, samples, epochs)


def measure_group(cases: list[Case], ctx: RunContext) -> list[Measurement]:
    """The real measurement of an interleaved unit: counts per case, latency in rounds."""
    members = [(case.model, case.input) for case in cases]
    budget = sum(case_budget(case, ctx.quick) for case in cases)
    results = measure_interleaved(members, budget_s=budget, **timing_settings(cases[0]))
    measured = []
    for case, result in zip(cases, results, strict=True):
        row = count_columns(case) if "count" in case.metrics else {}
        row.update(latency_row(result))
        if "profile" in case.metrics:
            row.update(profile_columns(case, ctx.quick))
        measured.append(Measurement(row, list(result.samples_ms), [], result.sample_rounds))
    return measured


def finetune_columns(case: Case, ctx: RunContext) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the fine-tune of a `kind: finetune` case; its row and epoch rows."""
    options = parse_train_options(dict(case.train), f"{case.case_id}: train")
    if ctx.tensorboard:  # one log folder per case under the --tensorboard root
        log_dir = Path(ctx.tensorboard) / re.sub(r"[^\w.=-]+", "_", case.case_id)
        options = dataclasses.replace(options, tensorboard=str(log_dir))
    outcome = finetune(case.model, options, ctx.run_dir, case.device, ctx.data, keep_state=True)
    epochs = [{"case_id": case.case_id, **epoch} for epoch in outcome.epochs]
    return dict(outcome.row), epochs


def run_case(case: Case, ctx: RunContext, measure: Measure, env_row: dict) -> Measurement:
    """Measure one case; CUDA-less cuda cases are skipped, exceptions become error rows.

    A full disk is not one case's failure: DiskFullError goes up to stop the run.
    """
    base = {**case.base_row(), **env_row}
    if case.device == "cuda" and not torch.cuda.is_available():
        reason = "CUDA is not available on this machine"
        return Measurement({**base, "status": "skipped", "error": reason})
    try:
        measured = measure(case, ctx)
    except DiskFullError:
        raise
    except Exception as exc:  # any failure of one case must not stop the run
        return error_measurement(base, exc)
    return ok_measurement(base, measured)


def ok_measurement(base: dict[str, Any], measured: Measurement) -> Measurement:
    """A measured case's row: its base columns, the measured values that are set, status ok."""
    row = {**base, **{k: v for k, v in measured.row.items() if v is not None}, "status": "ok"}
    return Measurement(row, measured.samples_ms, measured.epochs, measured.sample_rounds)


def run_group(
    unit: list[Case], ctx: RunContext, measures: tuple[Measure, MeasureGroup], env_row: dict
) -> list[Measurement]:
    """Measure a unit: together in rounds, else (one case, no CUDA, or a failure) one by one.

    When the unit fails as a whole, each case is measured alone, so one broken model's error
    stays its own row.
    """
    measure, group = measures
    cuda_missing = unit[0].device == "cuda" and not torch.cuda.is_available()
    if len(unit) > 1 and not cuda_missing:
        try:
            measured = group(unit, ctx)
        except DiskFullError:
            raise
        except Exception:  # noqa: BLE001 - measured again one by one just below
            measured = None
        if measured is not None:
            bases = [{**case.base_row(), **env_row} for case in unit]
            return [ok_measurement(b, m) for b, m in zip(bases, measured, strict=True)]
    return [run_case(case, ctx, measure, env_row) for case in unit]


def run_unit(
    unit: list[Case],
    ctx: RunContext,
    measures: tuple[Measure, MeasureGroup],
    env_row: dict,
    probe: ProbeFactory,
) -> list[Measurement]:
    """Measure a unit (in a child with --isolate) under a contention probe; see `units`."""
    if ctx.isolate:
        measures = (partial(run_isolated, measures[0]), partial(run_isolated, measures[1]))
    return measure_trusted(partial(run_group, unit, ctx, measures, env_row), probe)


def error_measurement(base: dict[str, Any], exc: BaseException) -> Measurement:
    """The error row of a case that raised `exc` (its one-line message in `error`)."""
    return Measurement({**base, "status": "error", "error": one_line(exc)})


class RunState:
    """The rows, samples and epochs of one run folder, rewritten atomically after each case.

    A case's samples and epochs are written before its row, so a row on disk always has them;
    a row whose samples are missing anyway (a folder written by an older bench, or damaged)
    counts as unfinished.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        frame = read_rows(run_dir)
        self.rows: dict[str, dict] = {r["case_id"]: r for r in frame.to_dict("records")}
        self.samples = read_samples(run_dir)
        self.rounds = read_sample_rounds(run_dir)
        epochs = read_epochs(run_dir)
        self.epochs = [] if epochs is None else epochs.to_dict("records")
        self.incomplete = incomplete_cases(self.rows.values(), self.samples)

    def finished(self) -> set[str]:
        """Case ids that need no new measurement (ok or skipped, with all their data)."""
        return {
            cid
            for cid, row in self.rows.items()
            if row.get("status") in FINISHED and cid not in self.incomplete
        }

    def record(self, case: Case, measured: Measurement) -> None:
        """Add (or replace) one case's samples, epochs and then its row, rewriting the files."""
        cid = case.case_id
        if measured.samples_ms is not None or cid in self.samples:
            self.rounds.pop(cid, None)
            if measured.samples_ms is None:
                del self.samples[cid]  # left by an earlier attempt of a case now failed
            else:
                self.samples[cid] = measured.samples_ms
            if measured.sample_rounds is not None:
                self.rounds[cid] = measured.sample_rounds
            write_samples(self.run_dir, self.samples, self.rounds)
        if measured.epochs:
            self.epochs = [e for e in self.epochs if e.get("case_id") != cid]
            self.epochs += measured.epochs
            write_epochs(self.run_dir, self.epochs)
        self.rows[cid] = measured.row
        write_rows(self.run_dir, self.rows.values())
        self.incomplete.pop(cid, None)


def start_run(
    run_dir: Path, suite: Suite, cases: list[Case], calibrate: bool, meta: dict[str, Any]
) -> dict:
    """Fill the (locked) run folder with env.json (calibrated) and suite.yaml; return the env."""
    if (run_dir / ENV_JSON).exists():
        raise BenchError(f"{run_dir} already holds a run; continue it with --resume {run_dir}")
    wants_cuda = any(c.device == "cuda" for c in cases) and torch.cuda.is_available()
    env = collect_env(calibrate=calibrate, device="cuda" if wants_cuda else "cpu")
    env["runtimes"] = describe_runtimes([c.runtime for c in cases])
    write_json(run_dir / ENV_JSON, {**env, **meta})
    write_yaml(run_dir / SUITE_YAML, suite.to_dict())
    return env


def note_resume(run_dir: Path) -> dict:
    """Record this resume in env.json (time and host); return this process's light env."""
    env = collect_env(calibrate=False)
    stored = read_json(run_dir / ENV_JSON)
    resumes = [*stored.get("resumes", []), {k: env[k] for k in ("timestamp", "hostname")}]
    write_json(run_dir / ENV_JSON, {**stored, "resumes": resumes})
    return env


def run_suite(
    suite_path: str | Path,
    out: str | Path | None = None,
    device: str | None = None,
    filter: str | None = None,
    quick: bool = False,
    resume: str | Path | None = None,
    shard: str | tuple[int, int] | None = None,
    data: str | None = None,
    calibrate: bool = True,
    measure: Measure | None = None,
    tensorboard: str | None = None,
    observer: RunObserver | None = None,
    runtimes: list[str] | None = None,
    isolate: bool = False,
    cpus: list[int] | None = None,
    probe: ProbeFactory = ContentionProbe,
    group: MeasureGroup | None = None,
) -> Path:
    """Run (or resume) a suite and return its run folder; `runtimes` replaces the suite's.

    `isolate` measures every unit in a fresh child process; `cpus` pins this process (and its
    threads, and so the children) to those CPUs; `measure`, `group` and `probe` are the
    injectable measurement of one case, of an interleaved unit, and the contention probe.
    """
    suite = load_suite(resolve_suite_path(suite_path), device=device, runtimes=runtimes)
    shard_kn = resolve_shard(shard) if isinstance(shard, str) or shard is None else shard
    units = plan_units(suite.cases)
    cases = select_cases(tuple(shard_units(units, shard_kn)), filter)
    if cpus:
        pin_cpus(cpus)
    if resume is not None:
        run_dir = resume_dir(suite, resume)
    else:
        run_dir = Path(out) if out else default_run_dir(suite.name, shard_kn)
        run_dir.mkdir(parents=True, exist_ok=True)
    with run_folder_lock(run_dir), full_disk_stops_the_run(run_dir, suite):
        remove_temp_files(run_dir)  # left by a writer killed mid-write
        if resume is not None:
            env = note_resume(run_dir)
        else:
            meta = run_meta(suite, shard_kn, filter, quick)
            meta.update(isolate=isolate, cpus=cpus, contention_limit=CONTENTION_LIMIT.value())
            env = start_run(run_dir, suite, cases, calibrate, meta)
        ctx = RunContext(run_dir, quick, data, tensorboard, isolate)
        measures = (measure or measure_case, group or (measure_group if measure is None else None))
        measure_pending(cases, ctx, env, measures, observer, probe)
    return run_dir


@contextmanager
def full_disk_stops_the_run(run_dir: Path, suite: Suite) -> Iterator[None]:
    """A DiskFullError inside becomes one line naming the run folder and how to go on."""
    try:
        yield
    except DiskFullError as exc:
        raise BenchError(
            f"{exc}: the run stopped; every case finished before it is kept in {run_dir}; "
            f"free some space, then continue with `bench run {suite.path} --resume {run_dir}`"
        ) from None


def measure_pending(
    cases: list[Case],
    ctx: RunContext,
    env: dict,
    measures: tuple[Measure, MeasureGroup | None],
    observer: RunObserver | None,
    probe: ProbeFactory = ContentionProbe,
) -> None:
    """Measure the cases the run folder does not hold yet, recording each row as it finishes.

    An interleaved unit is measured again as a whole when any of its cases is pending. Without
    a group measurement (a test's fake `measure`) a unit's cases are measured one by one.
    """
    state = RunState(ctx.run_dir)
    warn_incomplete(ctx.run_dir, cases, state)
    finished = state.finished()
    units = plan_units(cases)
    if measures[1] is None:
        units = [[case] for unit in units for case in unit]
    pending = [u for u in units if any(c.case_id not in finished for c in u)]
    if observer is not None:
        cuda = torch.cuda.is_available()
        plans = {c.case_id: case_plan(c, ctx.quick, cuda) for u in pending for c in u}
        observer.started(ctx.run_dir, sum(len(u) for u in pending), len(cases), plans)
    for unit in pending:
        base = env_row(env)
        try:
            measured = run_unit(unit, ctx, measures, base, probe)  # type: ignore[arg-type]
        except DiskFullError as exc:  # keep the cases' error rows if rows still fit
            for case in unit:
                state.record(case, error_measurement({**case.base_row(), **base}, exc))
            raise
        for case, item in zip(unit, measured, strict=True):
            record_case(state, case, item, ctx, observer)


def warn_incomplete(run_dir: Path, cases: list[Case], state: RunState) -> None:
    """Warn once when ok rows of these cases lack data (they are measured again)."""
    again = [c.case_id for c in cases if c.case_id in state.incomplete]
    if again:
        warnings.warn(
            f"{run_dir}: {len(again)} ok row(s) have incomplete data "
            f"(e.g. {again[0]}: {state.incomplete[again[0]]}); they are measured again",
            stacklevel=3,
        )


def record_case(
    state: RunState,
    case: Case,
    measured: Measurement,
    ctx: RunContext,
    observer: RunObserver | None,
) -> None:
    """Write one case's row (and data), drop its training state, tell the observer."""
    state.record(case, measured)
    if case.kind == "finetune" and measured.row.get("status") == "ok":
        discard_train_state(ctx.run_dir, case.model)  # its row is on disk now
    if observer is not None:
        observer.case_done(case, measured.row)


def run_meta(
    suite: Suite, shard: tuple[int, int] | None, pattern: str | None, quick: bool
) -> dict[str, Any]:
    """The run-level fields stored in env.json beside collect_env()."""
    return {
        "results_format_version": RESULTS_FORMAT_VERSION,
        "suite": suite.name,
        "suite_file": str(suite.path),
        "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "filter": pattern,
        "quick": quick,
        "quick_budget_s": QUICK_BUDGET_S if quick else None,
    }
