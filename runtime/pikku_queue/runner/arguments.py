"""The runner's command line (stdlib argparse: the runtime never imports typer or rich):
`python -m pikku_queue worker --registry PKG …`, or, for a generated `redis_worker.py`, the
worker's options alone with `--registry` fixed to its package."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pikku_queue.runner.flags import (
    BACKEND_HELP,
    DEFAULT_GRACE_S,
    DEFAULT_LEASE_MS,
    DEFAULT_METRICS_HOST,
)


def split_queues(text: str | None) -> list[str] | None:
    """`--queues a,b` as a list (None: every queue)."""
    if not text:
        return None
    return [q.strip() for q in text.split(",") if q.strip()] or None


def _positive(kind: type[int] | type[float], minimum: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    parse.__name__ = kind.__name__
    return parse


def parser(prog: str | None = None, *, registry: str | None = None) -> argparse.ArgumentParser:
    """`worker` and its options; with `registry` given (a generated `redis_worker.py`), the
    worker's options alone, `--registry` fixed to it."""
    if registry is not None:
        worker = argparse.ArgumentParser(
            prog=prog, description="Run the generated registry's workers."
        )
        _worker_arguments(worker, registry)
        return worker
    top = argparse.ArgumentParser(prog=prog or "python -m pikku_queue")
    commands = top.add_subparsers(dest="command", required=True)
    worker = commands.add_parser(
        "worker", help="Run the processors of a generated registry until stopped."
    )
    worker.add_argument(
        "--registry",
        required=True,
        metavar="PKG",
        help="The generated package (e.g. shop.generated); it must be importable.",
    )
    _worker_arguments(worker, None)
    return top


def _worker_arguments(worker: argparse.ArgumentParser, registry: str | None) -> None:
    if registry is not None:
        worker.set_defaults(registry=registry)
    worker.add_argument("--backend", metavar="URL", help=BACKEND_HELP)
    worker.add_argument("--queues", metavar="A,B", help="Comma-separated queues (default: all).")
    worker.add_argument(
        "--concurrency",
        type=_positive(int, 1),
        metavar="N",
        help="Jobs at once per queue (default: each processor's).",
    )
    worker.add_argument("--burst", action="store_true", help="Exit when the queues are drained.")
    worker.add_argument(
        "--strict",
        action="store_true",
        help="Refuse to start on a registry older than its sources (else a warning).",
    )
    worker.add_argument(
        "--grace",
        type=_positive(float, 0),
        default=DEFAULT_GRACE_S,
        metavar="S",
        help=f"Seconds active jobs get to finish on stop (default {DEFAULT_GRACE_S:g}).",
    )
    worker.add_argument(
        "--lease-ms",
        type=_positive(int, 100),
        default=DEFAULT_LEASE_MS,
        metavar="MS",
        help=f"Job lease; a dead worker's jobs return after it (default {DEFAULT_LEASE_MS}).",
    )
    worker.add_argument(
        "--metrics-port",
        type=_positive(int, 0),
        metavar="PORT",
        help="Serve Prometheus /metrics on this port (needs the [metrics] extra).",
    )
    worker.add_argument(
        "--metrics-host",
        default=DEFAULT_METRICS_HOST,
        metavar="HOST",
        help=f"Address of the /metrics server (default {DEFAULT_METRICS_HOST}).",
    )
    worker.add_argument(
        "--processes",
        type=_positive(int, 1),
        default=1,
        metavar="N",
        help="Run N worker processes, each with its own backend connection (default 1: this "
        "process); --metrics-port PORT serves process i on PORT+i.",
    )
    worker.add_argument("--log-level", default="INFO", help="Logging level (default INFO).")
    # `pkg.module:function` called with every worker event: how `pikkugen worker --processes`
    # hands its children `[tool.pikkugen] events`.
    worker.add_argument("--events-hook", metavar="PKG.MOD:FUNC", help=argparse.SUPPRESS)
