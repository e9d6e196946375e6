"""Measurements in a child process of their own, for runtimes that fix process-wide state.

TensorFlow sets its intra- and inter-op thread pools once per process, before it first runs, so
a case with another thread count cannot run where TensorFlow already ran. The engine hands
such a measurement (`Runtime.own_process`) to a child process, spawned fresh and kept for the
next case of the same runtime and thread count: the child pays the imports (torch, TensorFlow)
once, not once per case. One child lives at a time (memory); a child that dies becomes one
error line and is replaced on the next case.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from bench.core.errors import BenchError

Result = TypeVar("Result")
_STATE: dict[str, Any] = {"owned": False, "key": None, "pool": None}


def claim_process() -> None:
    """Mark this process as one an own-process runtime may fix its state in (children, scripts)."""
    _STATE["owned"] = True


def process_is_owned() -> bool:
    """Whether own-process runtimes measure here (True in the children and after claim_process)."""
    return bool(_STATE["owned"])


def child_pool(key: tuple[str, Any]) -> ProcessPoolExecutor:
    """The live child for `key` (runtime, threads), replacing a child kept for another key."""
    if _STATE["key"] != key or _STATE["pool"] is None:
        close_child()
        context = multiprocessing.get_context("spawn")  # fresh: no TensorFlow state inherited
        pool = ProcessPoolExecutor(1, mp_context=context, initializer=claim_process)
        _STATE.update(key=key, pool=pool)
    return _STATE["pool"]


def close_child() -> None:
    """Shut the kept child down (it also ends when this process exits)."""
    pool, _STATE["pool"], _STATE["key"] = _STATE["pool"], None, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def measure_in_child(
    function: Callable[..., Result], arguments: dict[str, Any], key: tuple[str, Any]
) -> Result:
    """`function(**arguments)` in the child kept for `key`; its exceptions come back as raised."""
    try:
        return child_pool(key).submit(function, **arguments).result()
    except BrokenProcessPool:
        close_child()
        raise BenchError(
            f"the child process measuring runtime {key[0]} died (out of memory or killed); "
            "the next case starts a new one"
        ) from None
