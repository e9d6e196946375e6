"""The `bench` command: a thin typer app over the bench library, with the one error boundary.

`BenchGroup.main` is where every exception a user can cause ends: a BenchError (bad input, a
full disk, a locked run folder) is its own one line with exit code 2; an OSError, KeyError,
AttributeError, refused pickle, OverflowError, RecursionError, MemoryError or torch allocation
error that escaped the library becomes one line too (exit 2), and anything else one `internal
error` line (exit 1). `bench --debug ...` or BENCH_DEBUG=1 prints the traceback first. Library
warnings print as one `warning:` line each.
"""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import re
import sys
import traceback
import warnings
from typing import Annotated, Any

import typer
from typer._click import core as click_core
from typer._click import exceptions as click_errors
from typer.core import TyperGroup, TyperOption

from bench.cli import count, gate, profile, report, runs, show, timing, training
from bench.cli.common import print_error, print_warning
from bench.cli.imports import IMPORT_FLAG, IMPORT_HELP, take_imports
from bench.core.errors import BenchError, clipped, first_line, one_line, unpickling_detail
from bench.core.io import no_space_reason

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
DEBUG_VARIABLE = "BENCH_DEBUG"
DISTRIBUTION = "cnn-bench"
MAX_MESSAGE_CHARS = 1000
DEBUG_HINT = f"(bench --debug or {DEBUG_VARIABLE}=1 shows the traceback)"
_CHOICE_MESSAGE = re.compile(
    r"^(?:Value error, )?'(?P<value>.*)' is not one of (?P<choices>.*?)\.?$"
)
_ALLOCATION_TEXTS = ("can't allocate memory", "out of memory", "Cannot allocate memory")


def usage_message(exc: click_errors.ClickException) -> str:
    """A usage error as one line; a bad choice says `unknown <option> 'x'; choose one of: ...`."""
    param = getattr(exc, "param", None)
    match = _CHOICE_MESSAGE.match(str(getattr(exc, "message", "")))
    if param is not None and match:
        name = str(param.name).replace("_", " ")
        choices = match["choices"].replace("'", "")
        flag = f"{param.opts[0]}: " if param.opts and param.opts[0].startswith("-") else ""
        return f"{flag}unknown {name} {match['value']!r}; choose one of: {choices}"
    return exc.format_message()


def os_error_message(exc: OSError) -> str:
    """An OSError as one line: a full disk says so; others give the reason and the file."""
    where = " ".join(str(f) for f in (exc.filename, exc.filename2) if f)
    reason = no_space_reason(exc)
    if reason is not None:
        return f"cannot write {where}: {reason}" if where else f"no space left ({reason})"
    return f"{exc.strerror or first_line(exc)}" + (f": {where}" if where else "")


def failure_message(exc: Exception) -> tuple[str, int]:
    """The one line and exit code an exception that reached the boundary becomes."""
    if isinstance(exc, BenchError):
        return str(exc), EXIT_BAD_INPUT
    if isinstance(exc, UnicodeError):
        return f"text that is not valid UTF-8 ({first_line(exc)}) {DEBUG_HINT}", EXIT_BAD_INPUT
    if isinstance(exc, ValueError | FileNotFoundError):
        return str(exc), EXIT_BAD_INPUT
    return f"{_safety_net_message(exc)} {DEBUG_HINT}", _safety_net_code(exc)


def _safety_net_message(exc: Exception) -> str:
    """The line for an exception the library should have turned into a BenchError itself."""
    if isinstance(exc, OSError):
        return os_error_message(exc)
    if isinstance(exc, pickle.UnpicklingError):
        detail = unpickling_detail(exc)
        return f"refused to unpickle a file ({detail}); loading such a file can run code"
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r} (KeyError)" if exc.args else "KeyError"
    if isinstance(exc, OverflowError):
        return f"a number too large ({first_line(exc)})"
    if isinstance(exc, RecursionError):
        return "input nested too deeply (RecursionError)"
    if isinstance(exc, MemoryError) or _is_allocation_error(exc):
        return f"out of memory ({first_line(exc) if str(exc) else type(exc).__name__})"
    if isinstance(exc, AttributeError):
        return one_line(exc)
    return f"internal error: {one_line(exc)}"


def _safety_net_code(exc: Exception) -> int:
    """Exit 2 for the mapped kinds of error; 1 for anything else (an internal error)."""
    mapped = (OSError, pickle.UnpicklingError, KeyError, OverflowError, MemoryError)
    if isinstance(exc, (*mapped, AttributeError, RecursionError)) or _is_allocation_error(exc):
        return EXIT_BAD_INPUT
    return EXIT_INTERNAL


def _is_allocation_error(exc: Exception) -> bool:
    """torch's allocation failures: torch.OutOfMemoryError, or the CPU allocator's message."""
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(t in str(exc) for t in _ALLOCATION_TEXTS)


def debug_requested() -> bool:
    """Whether `--debug` or BENCH_DEBUG=1 asked for tracebacks."""
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """warnings.showwarning for the CLI: one `warning:` line, without the source line."""
    print_warning(clipped(str(message), MAX_MESSAGE_CHARS))


def _fail(exc: Exception) -> None:
    """Print the exception's one line (after its traceback when debugging) and exit."""
    message, code = failure_message(exc)
    if debug_requested():
        traceback.print_exception(exc, file=sys.stderr)
    print_error(clipped(message, MAX_MESSAGE_CHARS))
    sys.exit(code)


def hide_flag_types(command: click_core.Command) -> None:
    """Show flags in help without a `<bool>` type (they take no value); subcommands too."""
    options = [p for p in command.params if isinstance(p, TyperOption) and p.is_flag]
    help_option = command.get_help_option(click_core.Context(command))  # created once, cached
    for option in [*options, *([help_option] if help_option else [])]:
        option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        hide_flag_types(sub)


class BenchGroup(TyperGroup):
    """The app's command group: every error a user can cause ends as one line, never a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hide_flag_types(self)

    def main(
        self, args: Any = None, *rest: Any, standalone_mode: bool = True, **kwargs: Any
    ) -> Any:
        """Run the command; bad input prints one `error:` line and exits with code 2."""
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                args = take_imports(sys.argv[1:] if args is None else list(args))
                code = super().main(args, *rest, standalone_mode=False, **kwargs)
            except click_errors.NoArgsIsHelpError as exc:  # the help text is already printed
                sys.exit(exc.exit_code)
            except click_errors.ClickException as exc:
                print_error(usage_message(exc))
                sys.exit(exc.exit_code)
            except typer.Abort:
                print_error("interrupted")
                sys.exit(130)
            except Exception as exc:
                _fail(exc)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="bench",
    cls=BenchGroup,
    help="What does this CNN cost, here? Count, time, run suites, fine-tune, compare, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def print_version(requested: bool) -> None:
    """`bench --version`: the installed cnn-bench version, then exit."""
    if requested:
        try:
            version = importlib.metadata.version(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        print(f"bench (cnn-bench) {version}")
        raise typer.Exit()


@app.callback()
def global_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, print its traceback before the line.")
    ] = False,
    imports: Annotated[  # taken out of the arguments by BenchGroup.main (shown here for --help)
        list[str] | None, typer.Option(IMPORT_FLAG, help=IMPORT_HELP, metavar="MODULE")
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options for every command (given before it: `bench --debug run ...`)."""
    if debug:
        os.environ[DEBUG_VARIABLE] = "1"


for area in (count, timing, profile, runs, show, training, gate, report):
    area.register(app)


def main() -> None:
    """Entry point of the console script (`bench`) and of `python -m bench`."""
    app()
