"""How `bench run` ends when it does not end well: interrupted, or with failed fine-tunes.

Ctrl-C prints one line with the cases kept and the exact command that continues the run; a run
whose fine-tunes failed (missing data among them) exits non-zero after its table.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core.errors import BenchError

if TYPE_CHECKING:
    from bench.runs.folder import Run
    from bench.runs.suite import Case

EXIT_INTERRUPTED = 130
MAX_LISTED = 3


class RunWatcher:
    """The runner's observer for the CLI: remembers the run folder, drives the progress bar."""

    def __init__(self, bar: Any = None) -> None:
        self.bar = bar
        self.run_dir: Path | None = None

    def started(self, run_dir: Path, *details: Any) -> None:
        """Note the run folder; the bar (if any) gets the runner's whole message."""
        self.run_dir = run_dir
        if self.bar is not None:
            self.bar.started(run_dir, *details)

    def case_done(self, case: Case, row: dict[str, Any]) -> None:
        """Pass the finished case on to the bar."""
        if self.bar is not None:
            self.bar.case_done(case, row)


def resume_command(suite: str, run_dir: Path, options: dict[str, Any]) -> str:
    """The shell command that continues a run: the same suite and case selection, `--resume`."""
    words = ["bench", "run", suite]
    for flag, value in options.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is True:
                words.append(flag)
            elif item not in (None, False):
                words += [flag, str(item)]
    return shlex.join([*words, "--resume", str(run_dir)])


def kept_cases(run_dir: Path) -> int:
    """Rows a run folder holds that a resume keeps (ok or skipped); 0 when unreadable."""
    from bench.runs.folder import read_rows
    from bench.runs.schema import FINISHED

    try:
        rows = read_rows(run_dir)
    except (BenchError, OSError):
        return 0
    return int(rows["status"].isin(FINISHED).sum()) if "status" in rows else 0


def interrupted_message(suite: str, run_dir: Path, options: dict[str, Any]) -> str:
    """The line Ctrl-C prints: how many cases the folder keeps and how to go on."""
    kept = kept_cases(run_dir)
    return (
        f"interrupted: {kept} finished case(s) kept in {run_dir}; continue with "
        f"`{resume_command(suite, run_dir, options)}`"
    )


def failed_finetunes(run: Run) -> list[tuple[str, str]]:
    """(case id, error) of every fine-tune case of the run whose row is an error."""
    kinds = {c.get("case_id"): c.get("kind") for c in run.suite.get("cases", []) or []}
    if "status" not in run.rows:
        return []
    failed = run.rows[run.rows["status"] == "error"]
    return [
        (str(row["case_id"]), str(row.get("error", "")))
        for _, row in failed.iterrows()
        if kinds.get(row["case_id"]) == "finetune"
    ]


def check_finetunes(run: Run) -> None:
    """BenchError (exit 2) naming the failed fine-tunes and the first one's reason."""
    failed = failed_finetunes(run)
    if not failed:
        return
    names = ", ".join(cid for cid, _ in failed[:MAX_LISTED])
    names += ", ..." if len(failed) > MAX_LISTED else ""
    raise BenchError(
        f"{len(failed)} fine-tune case(s) failed ({names}); {failed[0][0]}: {failed[0][1]}"
    )
