"""The `pikkugen` command: a thin typer shell over the library.

Generate-time commands (scan, list, watch, client) live in `commands/scan.py`, the run-time
ones each in its own module (`commands/worker.py`, `enqueue.py`, `dlq.py`, `monitor.py`, on
the shared `commands/project.py`); this module only assembles them, adds `--version` and
shell completion (`--install-completion`, `--show-completion`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from pikkugen.commands import scan


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


def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """Typed background job queues: generate clients and wiring, run workers."""


def build_app(argv: Sequence[str] | None = None) -> typer.Typer:
    """The typer app. With `argv` naming a generate-time command (scan, list, watch, client),
    only that group is registered: the run-time commands import the runtime's client, monitor
    and adapters and rich's live display, which `pikkugen scan` (a pre-commit hook, an editor
    on save) should not wait for. Anything else (no command, --help, completion, a run-time
    command) gets every command."""
    built = typer.Typer(
        name="pikkugen",
        help="Typed background job queues: generate clients and wiring, run workers.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
    )
    built.callback()(_main)
    scan.register(built)
    wanted = None if argv is None else _command_in(argv)
    if wanted is None or wanted not in {info.name for info in built.registered_commands}:
        from pikkugen.commands import dlq, enqueue, monitor, worker

        for group in (worker, enqueue, dlq, monitor):
            group.register(built)
    return built


def _command_in(argv: Sequence[str]) -> str | None:
    """The command `argv` runs (its first word that is not an option); None while the shell
    asks for completions."""
    if any(key.startswith("_PIKKUGEN_COMPLETE") or key == "COMP_WORDS" for key in os.environ):
        return None
    return next((arg for arg in argv if not arg.startswith("-")), None)


_every_command: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    """`app`: the app with every command (tests, docs, completion), built on first use."""
    global _every_command
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _every_command is None:
        _every_command = build_app()
    return _every_command


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
            # click-style `QUEUE`, `[PATHS]...` in the usage line, not typer's `{queue}`
            param.metavar = param.name.upper()
            usage = param.metavar if param.required else f"[{param.metavar}]"
            usage += "..." if param.nargs != 1 else ""
            param._usage_display_name = lambda usage=usage: usage
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


def command(argv: Sequence[str] | None = None) -> Any:
    """The click command `main` runs (tests and completion use the same one); `argv`, when
    given, may narrow the commands registered (`build_app`)."""
    built = typer.main.get_command(build_app(argv) if argv is not None else __getattr__("app"))
    plain_metavars(built)
    return built


def main() -> None:
    command(sys.argv[1:])(prog_name="pikkugen")
