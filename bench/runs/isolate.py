"""`--isolate`: measure a case in a fresh child process, so no state is carried between cases.

The child is started with multiprocessing's `spawn` (a new interpreter: no allocator caches,
cuDNN autotuner choices, compiled graphs or thread pools of earlier cases); it runs the
measurement and sends back what it measured, or the exception it raised. The parent writes the
row as without isolation, so resume and error rows are unchanged. A child that dies without an
answer (killed, out of memory, a crash in native code) becomes an error naming its exit code.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from bench.core.errors import one_line


class IsolatedChildDied(RuntimeError):
    """The isolated child process ended without sending a result."""


def _child(conn: Connection, fn: Callable[..., Any], args: tuple) -> None:
    """Run fn(*args) and send ("ok", result) or ("error", exception) to the parent."""
    try:
        message: tuple[str, Any] = ("ok", fn(*args))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        message = ("error", exc)
    try:
        conn.send(message)
    except (pickle.PicklingError, TypeError, AttributeError):  # an unpicklable exception
        text = one_line(message[1]) if message[0] == "error" else "an unpicklable result"
        conn.send(("error", RuntimeError(text)))
    conn.close()


def run_isolated(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in a fresh spawned process; its result, or its exception raised here."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, fn, args), daemon=True)
    process.start()
    send.close()
    try:
        status, value = receive.recv()
    except EOFError:
        process.join()
        raise IsolatedChildDied(
            f"the isolated child process exited with code {process.exitcode} "
            "before sending its measurement"
        ) from None
    finally:
        receive.close()
    process.join()
    if status == "error":
        raise value
    return value
