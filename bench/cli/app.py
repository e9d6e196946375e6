"""The `bench` command: a thin typer app over the bench library, with the one error boundary."""

from __future__ import annotations

import re
import sys
from typing import Any

import typer
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from bench.cli import count, gate, report, runs, timing, training
from bench.cli.common import print_error
from bench.core.errors import BenchError

EXIT_BAD_INPUT = 2
_CHOICE_MESSAGE = re.compile(
    r"^(?:Value error, )?'(?P<value>.*)' is not one of (?P<choices>.*?)\.?$"
)


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


class BenchGroup(TyperGroup):
    """The app's command group: every error a user can cause ends as one line, never a traceback."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the command; bad input prints one `error:` line and exits with code 2."""
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click_errors.NoArgsIsHelpError as exc:  # the help text is already printed
            sys.exit(exc.exit_code)
        except click_errors.ClickException as exc:
            print_error(usage_message(exc))
            sys.exit(exc.exit_code)
        except typer.Abort:
            print_error("interrupted")
            sys.exit(130)
        except (BenchError, ValueError, FileNotFoundError) as exc:
            print_error(str(exc))
            sys.exit(EXIT_BAD_INPUT)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="bench",
    cls=BenchGroup,
    help="What does this CNN cost, here? Count, time, run suites, fine-tune, compare, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for area in (count, timing, runs, training, gate, report):
    area.register(app)


def main() -> None:
    """Entry point of the console script (`bench`) and of `python -m bench`."""
    app()
