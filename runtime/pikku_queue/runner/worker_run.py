"""From a command line's values to a `WorkerRun`: the queues checked against the registry,
the registry checked against its sources, the backend URL resolved by the one order.

The refusals that need neither the user's processors nor a backend are made here, before any
`--processes` child is started, so a bad `--queues` or a stale registry under `--strict` is
one `error:` line, once. (Loading the processors, the services factory and opening the
backend are `serving`'s, in the process that serves.)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pikku_queue.adapters import URL_ENVIRONMENT_VARIABLE, masked_url, resolve_url
from pikku_queue.errors import PikkuQueueError
from pikku_queue.project import stale_message
from pikku_queue.registry import Registry
from pikku_queue.runner.errors import StartError
from pikku_queue.runner.flags import WorkerFlags, split_queues


def select_queues(registry: Registry, queues: Sequence[str] | None) -> list[str]:
    """`queues` (default: every registered queue), each checked against the registry."""
    names = list(queues) if queues else registry.names()
    try:
        for name in names:
            registry.get(name)
    except PikkuQueueError as exc:
        raise StartError(str(exc)) from None
    if not names:
        raise StartError("the registry has no queues; declare a processor and run `pikkugen scan`")
    return names


@dataclass
class WorkerRun:
    """One worker run: what to serve (the registry, its checked queues), where (the resolved
    URL) and how (the command line's values, `flags`)."""

    registry: Registry
    url: str
    queues: list[str]
    flags: WorkerFlags = field(default_factory=WorkerFlags)
    #: Extra options the caller wants on `WorkerOptions` (e.g. a worker id).
    extra: dict[str, Any] = field(default_factory=dict)


def prepare(
    registry: Registry,
    generated_url: str | None,
    flags: WorkerFlags | None = None,
    *,
    schemes: Sequence[str] | None = None,
) -> WorkerRun:
    """A `WorkerRun` from a command line's values: the queues checked, the URL resolved (and,
    with `schemes`, refused unless it has one of them)."""
    flags = flags or WorkerFlags()
    check_log_level(flags.log_level)
    names = select_queues(registry, split_queues(flags.queues))
    check_fresh(registry, flags.strict)
    # A relative SQLite path is the project's file, whatever the current folder.
    url = registry.url(resolve_url(flags.backend, generated_url))
    if schemes is not None and url.partition("://")[0] not in schemes:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise StartError(
            f"this worker needs a {wanted} URL, got {masked_url(url)!r}: pass --backend or "
            f"set {URL_ENVIRONMENT_VARIABLE}"
        )
    return WorkerRun(registry=registry, url=url, queues=names, flags=flags)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def check_log_level(level: str) -> None:
    """`--log-level` names one of logging's levels (any case), else a `StartError`."""
    if level.upper() not in LOG_LEVELS:
        raise StartError(
            f"--log-level {level!r} is not a logging level: use one of {', '.join(LOG_LEVELS)}"
            " (any case)"
        )


def check_fresh(registry: Registry, strict: bool) -> None:
    """A registry older than the files it was generated from (an edited `attempts=`, a new
    processor) would run the old options: a warning at start, a `StartError` under strict."""
    stale = registry.stale_sources()
    if stale and strict:
        raise StartError(f"{stale_message(stale)} (--strict)")
    if stale:
        print(f"warning: {stale_message(stale)}", file=sys.stderr, flush=True)
