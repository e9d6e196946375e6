"""Units of measurement: the cases measured together, their re-measurement and their trust.

A unit is one case, or, for cases with `interleave: true`, the cases of one group that differ
only in the model (one guideline table column: same suite case, device, runtime, batch, dtype,
threads, mode, memory format and `ref.column`), measured together in interleaved rounds so the
machine's drift and bursts hit every configuration alike. Every unit is measured under a
`ContentionProbe`; a unit whose contention exceeded the limit is measured again (at most
MAX_REMEASURES times, the least contended attempt kept) and its latency rows are flagged
`noisy` when the machine stayed busy or their statistics say the number cannot be trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from bench.measure.contention import CONTENTION_LIMIT, Contention, ContentionProbe, is_contended
from bench.measure.trust import noise_reasons
from bench.runs.suite import Case

MAX_REMEASURES = 2
T = TypeVar("T")
ProbeFactory = Callable[[], Any]  # a context manager with `.result: Contention | None` after it


def unit_key(case: Case) -> tuple | None:
    """What the cases of one interleaved unit share (None: the case is a unit of its own)."""
    if not case.interleave or case.kind != "measure" or "latency" not in case.metrics:
        return None
    column = dict(case.ref).get("column")
    return (
        case.case, case.group, case.device, case.runtime, case.batch, case.dtype,
        case.threads, case.mode, case.channels_last, column,
    )  # fmt: skip


def plan_units(cases: Iterable[Case]) -> list[list[Case]]:
    """The cases grouped into units, in the order each unit's first case appears."""
    units: list[list[Case]] = []
    by_key: dict[tuple, list[Case]] = {}
    for case in cases:
        key = unit_key(case)
        if key is None:
            units.append([case])
        elif key in by_key:
            by_key[key].append(case)
        else:
            by_key[key] = [case]
            units.append(by_key[key])
    return units


def shard_units(units: Sequence[list[Case]], shard: tuple[int, int] | None) -> list[Case]:
    """The cases of every N-th unit from the K-th (a unit is never split between shards)."""
    chosen = units[shard[0] :: shard[1]] if shard else units
    return [case for unit in chosen for case in unit]


def with_remeasures(
    attempt: Callable[[], T],
    probe: ProbeFactory = ContentionProbe,
    worth_repeating: Callable[[T], bool] = lambda _: True,
    limit: float | None = None,
) -> tuple[T, Contention | None, int, bool]:
    """Run `attempt` under a probe, again while contended (at most MAX_REMEASURES times).

    Returns the least contended attempt, its contention, how many times it was re-measured
    and whether even that one stayed contended.
    """
    limit = CONTENTION_LIMIT.value() if limit is None else limit
    attempts: list[tuple[T, Contention | None]] = []
    while len(attempts) <= MAX_REMEASURES:
        with probe() as watched:
            outcome = attempt()
        attempts.append((outcome, watched.result))
        if not is_contended(watched.result, limit) or not worth_repeating(outcome):
            break
    best = attempts[0]
    for candidate in attempts[1:]:
        if _less(candidate[1], best[1]):
            best = candidate
    return best[0], best[1], len(attempts) - 1, is_contended(best[1], limit)


def measure_trusted(attempt: Callable[[], list[Any]], probe: ProbeFactory) -> list[Any]:
    """Measurements (objects with `.row` and `.samples_ms`) of a unit with trust columns added."""
    measured, found, remeasured, contended = with_remeasures(attempt, probe, _timed)
    for item in measured:
        item.row.update(trust_columns(item.row, found, remeasured, contended))
    return measured


def _timed(measured: list[Any]) -> bool:
    """Whether any of the measurements timed something (only those are worth repeating)."""
    return any(
        m.row.get("status") == "ok" and m.row.get("latency_ms_median") is not None for m in measured
    )


def _less(found: Contention | None, than: Contention | None) -> bool:
    """Whether one attempt was less contended than another (unknown counts as worse)."""
    if found is None:
        return False
    return than is None or found.contention <= than.contention


def trust_columns(
    row: dict[str, Any], found: Contention | None, remeasured: int, contended: bool
) -> dict[str, Any]:
    """The contention, re-measurement and noise columns of one row."""
    columns: dict[str, Any] = {"remeasured": remeasured, **(found.as_row() if found else {})}
    if row.get("status") != "ok" or row.get("latency_ms_median") is None:
        return columns
    paired = None
    if row.get("rounds") is not None:
        paired = (row.get("paired_ratio"), row.get("paired_low"), row.get("paired_high"))
    busy = found.contention if contended and found is not None else None
    reasons = noise_reasons(
        row.get("cv"), row.get("stop_reason"), row.get("rel_halfwidth"), paired, busy
    )
    columns.update(noisy=bool(reasons), noise="; ".join(reasons) or None)
    return columns
