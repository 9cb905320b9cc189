"""Serving one worker in this process: load the processors, create the services, open the
backend, install the one signal rule and run `backend.run_worker` until it is stopped (or,
with `burst`, drained); `run_worker` adds the start and done lines and the exit status.

The signal rule lives here because it is the process's: with `--processes N` each child is
one of these, and the parent (`children.run_processes`) only forwards signals to them.
Start-up behaviour (a warning, a metrics server…) is a function in a runtime module and one
call in `_on_start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from pikku_queue import loopwatch
from pikku_queue.adapters import connect, masked_url
from pikku_queue.backend import Backend, WorkerOptions, WorkerReport
from pikku_queue.errors import PikkuQueueError
from pikku_queue.events import subscribe_hook
from pikku_queue.install import install_hint
from pikku_queue.processor import Processor
from pikku_queue.redact import redact_text
from pikku_queue.registry import Registry
from pikku_queue.runner.errors import (
    EXIT_SECOND_SIGNAL,
    EXIT_START_ERROR,
    EXIT_UNDONE,
    StartError,
    described,
)
from pikku_queue.runner.worker_run import WorkerRun

if TYPE_CHECKING:
    from pikku_queue.metrics import MetricsServer

logger = logging.getLogger("pikku_queue")


def start_metrics(
    port: int | None, host: str, backend: Backend, queues: Sequence[str]
) -> MetricsServer | None:
    """`--metrics-port`/`--metrics-host`: serve `/metrics` (None: no port given). Call it on
    the worker's event loop; `.close()` the result when the worker stops. `pikku_queue.metrics`
    needs prometheus-client, an optional dependency: imported only when a port is given."""
    if port is None:
        return None
    try:
        from pikku_queue.metrics import serve
    except ImportError as exc:
        raise PikkuQueueError(
            f"--metrics-port needs the prometheus-client package ({exc}):"
            f" {install_hint('pikku-queue', 'metrics')}"
        ) from None
    try:
        server = serve(port, host, backend=backend, queues=queues)
    except OSError as exc:
        raise PikkuQueueError(f"cannot serve /metrics on {host}:{port}: {exc}") from None
    logger.info("metrics on %s", server.url)
    return server


def load_processors(registry: Registry, names: Sequence[str]) -> list[Processor]:
    """Import the processors of `names`; any error in the user's modules (an exception at
    import, an annotation that does not resolve) is a `StartError`."""
    try:
        return registry.load(list(names))
    except Exception as exc:
        raise StartError(f"cannot load the processors: {described(exc)}") from None


def open_backend(url: str) -> Backend:
    """`connect(url)`, its refusal (unknown scheme, missing extra) as a `StartError`."""
    try:
        return connect(url)
    except PikkuQueueError as exc:
        raise StartError(str(exc)) from None


def install_signals(stop: asyncio.Event, main: asyncio.Task[Any]) -> None:
    """THE signal rule. First SIGTERM/SIGINT: set `stop` (take no new jobs; active ones get
    the grace period). Second: cancel `main`, which skips the grace period; the generic pull
    worker (SQLite, memory) and the SQS long-poll worker still give their jobs back (shielded,
    bounded in time), so those jobs go back to waiting now instead of coming back as stalls
    when their leases expire. The runner then exits `EXIT_SECOND_SIGNAL`."""
    loop = asyncio.get_running_loop()

    def handle(sig: signal.Signals) -> None:
        if stop.is_set():
            logger.warning("%s: stopping now; active jobs are given back", sig.name)
            main.cancel()
            return
        logger.warning("%s: finishing active jobs, then stopping (again to stop now)", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handle, sig)


#: A live display around the run (`pikkugen worker`'s bars): entered once the backend is open
#: and the options are built, left when the worker is done, before the backend closes.
Watch = Callable[[Backend, WorkerOptions, list[str]], AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def _no_watch(
    backend: Backend, options: WorkerOptions, queues: list[str]
) -> AsyncIterator[None]:
    yield


def _on_start(run: WorkerRun, backend: Backend, options: WorkerOptions) -> None:
    """Start-up hooks: one call each, in a runtime module (warnings, servers…)."""
    loopwatch.start(options.stop)  # names an async processor that blocks the loop
    if run.flags.events_hook is not None:
        subscribe_hook(options.events, run.flags.events_hook)


async def serve(run: WorkerRun, watch: Watch | None = None) -> WorkerReport:
    """Load the processors, create the services, open the backend and run the worker until
    it is stopped (or drained, with `burst`), under the one signal rule."""
    processors = load_processors(run.registry, run.queues)
    try:
        services = await run.registry.acreate_services()
    except Exception as exc:  # the user's factory: a database that is down, a bad reference
        raise StartError(f"the services factory failed: {described(exc)}") from None
    backend = open_backend(run.url)
    try:
        options = WorkerOptions(
            processors=processors,
            concurrency=run.flags.concurrency,
            burst=run.flags.burst,
            services=services,
            grace_period_s=run.flags.grace,
            lease_ms=run.flags.lease_ms,
            **run.extra,
        )
        current = asyncio.current_task()
        assert current is not None
        install_signals(options.stop, current)
        _on_start(run, backend, options)
        metrics = start_metrics(run.flags.metrics_port, run.flags.metrics_host, backend, run.queues)
        try:
            async with (watch or _no_watch)(backend, options, run.queues):
                return await backend.run_worker(options)
        finally:
            if metrics is not None:
                metrics.close()
    finally:
        await backend.close()


def run_worker(run: WorkerRun, watch: Watch | None = None) -> int:
    """`serve` from sync code, with the start and done lines; returns the exit status: 0,
    `EXIT_START_ERROR` (an `error:` line on stderr), `EXIT_SECOND_SIGNAL`, or `EXIT_UNDONE`
    (a burst worker that left jobs it could not bring to a verdict, one `undone:` line each)."""
    burst = " (burst)" if run.flags.burst else ""
    print(f"worker on {masked_url(run.url)}: {', '.join(run.queues)}{burst}", flush=True)
    try:
        report = asyncio.run(serve(run, watch))
    except PikkuQueueError as exc:  # StartError, or the backend refusing to start
        print(f"error: {redact_text(str(exc), run.url)}", file=sys.stderr, flush=True)
        return EXIT_START_ERROR
    except asyncio.CancelledError:  # a second SIGTERM/SIGINT: not a crash, no traceback
        print("worker stopped at once (second signal): active jobs were given back", flush=True)
        return EXIT_SECOND_SIGNAL
    undone = f" undone={len(report.undone)}" if report.undone else ""
    print(
        f"worker done: completed={report.completed} retried={report.retried}"
        f" dead_lettered={report.dead_lettered} failed={report.failed} stalled={report.stalled}"
        f"{undone}",
        flush=True,
    )
    for line in report.undone:
        print(f"undone: {line}", flush=True)
    return EXIT_UNDONE if report.undone else 0
