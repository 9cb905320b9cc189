"""The `pikkugen` command: a thin typer shell over the library.

Generate-time commands (scan, list, watch, client) live in `commands/generate.py`, run-time
commands (worker, enqueue, dlq) in `commands/runtime.py`; this module only assembles them,
adds `--version` and shell completion (`--install-completion`, `--show-completion`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pikkugen.commands import generate, monitor, runtime

app = typer.Typer(
    name="pikkugen",
    help="Typed background job queues: generate clients and wiring, run workers.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("pikkugen")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"pikkugen {version()}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Typed background job queues: generate clients and wiring, run workers."""


generate.register(app)
runtime.register(app)
monitor.register(app)


_METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "Path": "PATH"}


def plain_metavars(command: Any) -> None:
    """Flags show no type in `--help` and valued options a click-style one (`TEXT`, `INTEGER`,
    `PATH`), instead of typer's `<bool>` / `<str>` after every flag; a metavar an option sets
    itself is kept. (Typer builds on its own copy of click: duck-typed.)"""
    for param in command.params:
        kind = getattr(param, "param_type_name", "")
        if kind not in ("option", "argument") or param.metavar is not None:
            continue
        if kind == "argument":
            param.display_type_rich = lambda ctx: None  # its name and help say it
            continue
        if param.is_flag:
            param.metavar = ""
            continue
        bare = str(param.bare_type())
        if bare.startswith("list[") and bare.endswith("]"):
            bare = bare[5:-1]  # a repeatable option: the type of one value
        if bare in _METAVARS:
            param.metavar = _METAVARS[bare]
    original = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = original(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""  # `--help` is a flag too
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)


def command() -> Any:
    """The click command `main` runs (tests and completion use the same one)."""
    built = typer.main.get_command(app)
    plain_metavars(built)
    return built


def main() -> None:
    command()(prog_name="pikkugen")
