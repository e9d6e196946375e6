"""`--import MODULE` on every command: a user's package that registers networks, imported first.

The option may stand anywhere before `--` (`bench --import mypkg count mynet` or `bench count
mynet --import mypkg`): the group takes every `--import` out of the arguments and imports the
modules before any command parses its own. Importing a module or `.py` file runs its code, as
pytest does.
"""

from __future__ import annotations

from bench.core.errors import BenchError

IMPORT_FLAG = "--import"
IMPORT_HELP = (
    "Import this module (or .py file) first, e.g. a package that registers networks with "
    "netdefs.register_model; repeatable, accepted by every command. Its code runs."
)


def split_imports(argv: list[str]) -> tuple[list[str], list[str]]:
    """(modules named by `--import`, the other arguments); nothing after `--` is looked at."""
    modules: list[str] = []
    rest: list[str] = []
    items = iter(argv)
    for item in items:
        if item == "--":
            rest += [item, *items]
        elif item == IMPORT_FLAG:
            value = next(items, None)
            if value is None or value.startswith("-"):
                raise BenchError(f"{IMPORT_FLAG} needs a module name or a .py file")
            modules.append(value)
        elif item.startswith(IMPORT_FLAG + "="):
            modules.append(item.partition("=")[2])
        else:
            rest.append(item)
    return modules, rest


def take_imports(argv: list[str]) -> list[str]:
    """Import the modules that `--import` names; return the arguments without them."""
    modules, rest = split_imports(argv)
    if modules:
        from netdefs.userspec import import_user_modules

        import_user_modules(modules)
    return rest
