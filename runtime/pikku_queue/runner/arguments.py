"""The runner's command line, built from the one declaration (`flags.FLAGS`) with the stdlib's
argparse (the runtime never imports typer or rich): `python -m pikku_queue worker --registry
PKG …`, or, for a generated `redis_worker.py`, the worker's options alone with `--registry`
fixed to its package."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pikku_queue.runner.flags import FLAGS, REGISTRY, Flag, WorkerFlags


def _at_least(kind: type[Any], minimum: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    parse.__name__ = kind.__name__  # argparse's "invalid int value"
    return parse


def add_flag(parser: argparse.ArgumentParser, flag: Flag, *, required: bool = False) -> None:
    """`flag` as an argparse option: a switch is `store_true`, a minimum is checked while
    parsing (argparse's one-line usage error, exit 2)."""
    shown = argparse.SUPPRESS if flag.hidden else flag.help.replace("%", "%%")
    if flag.switch:
        parser.add_argument(flag.name, dest=flag.dest, action="store_true", help=shown)
        return
    kind = flag.kind if flag.minimum is None else _at_least(flag.kind, flag.minimum)
    parser.add_argument(
        flag.name,
        dest=flag.dest,
        type=kind,
        default=flag.default,
        metavar=flag.metavar,
        required=required,
        help=shown,
    )


def parser(prog: str | None = None, *, registry: str | None = None) -> argparse.ArgumentParser:
    """`worker` and its options; with `registry` given (a generated `redis_worker.py`), the
    worker's options alone, `--registry` fixed to it."""
    if registry is not None:
        worker = argparse.ArgumentParser(
            prog=prog, description="Run the generated registry's workers."
        )
        worker.set_defaults(**{REGISTRY.dest: registry})
    else:
        top = argparse.ArgumentParser(prog=prog or "python -m pikku_queue")
        commands = top.add_subparsers(dest="command", required=True)
        worker = commands.add_parser(
            "worker", help="Run the processors of a generated registry until stopped."
        )
        add_flag(worker, REGISTRY, required=True)
    for flag in FLAGS:
        add_flag(worker, flag)
    return worker if registry is not None else top


def worker_flags(args: argparse.Namespace) -> WorkerFlags:
    """The parsed options as the one values object."""
    return WorkerFlags(**{flag.dest: getattr(args, flag.dest) for flag in FLAGS})
