"""`pikkugen worker`: the runtime's one runner (`pikku_queue.runner`, also `python -m
pikku_queue worker`) on the project's generated registry, plus the rich live display
(`commands.display`). Registry import, user-code error lines, the backend URL order and the
signal rule are the runner's; this module only finds the project's registry and backend.

Its options are the runner's declaration (`pikku_queue.runner.FLAGS`: the same names, types,
defaults, minimums and help as `python -m pikku_queue worker`) plus `PROJECT_FLAGS`, the
only ones of its own. typer reads a command's options from its function's signature, so the
signature of `worker` is built from those declarations (`typer_parameter`).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import typer
from pikku_queue import runner
from rich.console import Console
from rich.logging import RichHandler

from pikkugen.commands.display import live_display
from pikkugen.commands.project import (
    backend_url,
    complete_queue_list,
    fail,
    import_roots,
    load_registry,
    project_config,
)


@dataclass(frozen=True)
class ProjectFlags:
    """Which of the project's generated packages to serve: `pikkugen worker`'s own flags, on
    top of the runner's (which takes `--registry PKG` and nothing else for that)."""

    registry: str | None = field(
        default=None,
        metadata=runner.about(
            "The generated package to serve (default: the one [tool.pikkugen] out names).",
            metavar="PKG",
        ),
    )
    out: Path | None = field(
        default=None,
        metadata=runner.about(
            "The generated package's folder, if `pikkugen scan --out` put it there."
        ),
    )


#: The flags `pikkugen worker` has beyond the runner's, in `--help` order (before them).
PROJECT_FLAGS = runner.flags_of(ProjectFlags)


def typer_parameter(flag: runner.Flag) -> inspect.Parameter:
    """`flag` as a keyword parameter typer turns into an option: the declared name, type,
    default, metavar, minimum (typer shows it, `[x>=1]`) and hidden-ness; the help with rich
    markup escaped (`[metrics]` is text) and no `[default: …]`, which the help text says."""
    option = typer.Option(
        flag.default,
        flag.name,
        help=flag.help.replace("[", "\\["),
        metavar=flag.metavar,
        min=flag.minimum,
        hidden=flag.hidden,
        show_default=False,
        autocompletion=complete_queue_list if flag.dest == "queues" else None,
    )
    return inspect.Parameter(
        flag.dest, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=flag.annotation
    )


def register(app: typer.Typer) -> None:
    """Add this command to `app`."""
    app.command("worker")(worker)


def worker(**given: Any) -> None:
    """Run the processors of the generated registry until stopped (or drained, with --burst).

    The same runner as `python -m pikku_queue worker`, plus a live display."""
    project = ProjectFlags(**{flag.dest: given.pop(flag.dest) for flag in PROJECT_FLAGS})
    flags = runner.WorkerFlags(**given)
    config = project_config(project.out)
    registry, generated_url = load_registry(config, project.registry)
    flags = replace(
        flags,
        backend=backend_url(flags.backend, config, generated_url),
        # [tool.pikkugen] events: the user's hook, unless the (hidden) flag names one
        events_hook=flags.events_hook or config.events,
    )
    try:
        run = runner.prepare(registry, None, flags)
    except runner.StartError as exc:
        raise fail(str(exc)) from None
    if flags.processes > 1:  # the runner's children; their lines, prefixed, instead of the display
        logging.basicConfig(
            level=flags.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        package = project.registry or config.out_package
        roots = [str(root) for root in import_roots(config)]
        code = runner.run_processes(run, package, path=roots)
        if code:
            raise typer.Exit(code)
        return
    console = Console(stderr=False)
    tty = console.is_terminal
    logging.basicConfig(
        level=flags.log_level.upper(),
        format="%(message)s" if tty else "%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False)] if tty else None,
    )
    code = runner.run_worker(run, live_display(console, tty))
    if code:
        raise typer.Exit(code)


cast(Any, worker).__signature__ = inspect.Signature(
    [typer_parameter(flag) for flag in (*PROJECT_FLAGS, *runner.FLAGS)], return_annotation=None
)
