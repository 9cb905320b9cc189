"""Run-time commands: `worker`, `enqueue`, `dlq list`, `dlq replay`.

They work from the generated registry (`<out_package>.registry.REGISTRY`), found through the
same `[tool.pikkugen]` config as `scan`, so the worker serves exactly the queues the generator
found, with the options it validated. `worker` is the runtime's one runner
(`pikku_queue.runner`, also `python -m pikku_queue worker`) plus the rich live display, which
lives here: the runtime never imports typer or rich. Registry import, user-code error lines,
the backend URL order and the signal rule are the runner's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pikku_queue import counts, runner
from pikku_queue.adapters import (
    DEFAULT_URL,
    URL_ENVIRONMENT_VARIABLE,
    masked_url,
    resolve_url,
)
from pikku_queue.backend import Backend, DeadLetterRecord, WorkerOptions
from pikku_queue.client import TypedQueue, enqueue_options
from pikku_queue.engine import Processor
from pikku_queue.errors import PikkuQueueError
from pikku_queue.events import EventBus, JobEvent
from pikku_queue.monitor import QueueMonitor, QueueStats
from pikku_queue.redact import redact_text
from pikku_queue.registry import Registry
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from pikkugen.config import Config, ConfigError, load_config

dlq_app = typer.Typer(help="Inspect and redrive dead-letter queues.", no_args_is_help=True)

BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help=f"Backend URL (default: ${URL_ENVIRONMENT_VARIABLE}, \\[tool.pikkugen] backend, "
        f"then {DEFAULT_URL}).",
    ),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _config() -> Config:
    try:
        return load_config()
    except ConfigError as exc:
        raise _fail(exc.message) from None


def import_roots(config: Config) -> list[Path]:
    """Folders that must be on sys.path to import the generated package and the processors."""
    from pikkugen.scanner.modules import import_root_for

    roots = [config.out.parents[config.out_package.count(".")]]
    for path in config.paths:
        roots.append(import_root_for(path / "__init__.py" if path.is_dir() else path))
    roots.append(config.root)
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def load_registry(config: Config, package: str | None = None) -> tuple[Registry, str | None]:
    """The generated REGISTRY and default backend URL of `package` (default: the configured
    `out` package), with the project's import roots on sys.path (the runtime's importer)."""
    for root in reversed(import_roots(config)):
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
    try:
        return runner.import_registry(package or config.out_package)
    except runner.StartError as exc:
        from pikkugen.config import PYPROJECT, SECTION, find_pyproject

        if package is None and find_pyproject(Path.cwd()) is None:
            raise _fail(
                f"no {PYPROJECT} with a [{SECTION}] table in {Path.cwd()} or any folder above:"
                " run pikkugen inside your project (or add the table to its pyproject.toml)"
            ) from None
        raise _fail(str(exc)) from None


def load_processors(registry: Registry, names: list[str]) -> list[Processor]:
    """Import the processors of `names`; an error in the user's modules is one line, exit 2."""
    try:
        return runner.load_processors(registry, names)
    except runner.StartError as exc:
        raise _fail(str(exc)) from None


def backend_url(flag: str | None, config: Config, generated: str | None) -> str:
    """The backend URL by the one order (`pikku_queue.adapters.resolve_url`; the project's
    live `[tool.pikkugen] backend` before the registry's copy of it), a relative SQLite path
    anchored at the project root (whatever the current folder), so worker, enqueue, dlq and
    the generated client open one file."""
    from pikku_queue.project import anchor_url

    return anchor_url(resolve_url(flag, config.backend or generated), config.root)


T = TypeVar("T")


def _on_backend(url: str, action: Callable[[Backend], Awaitable[T]]) -> T:
    """Open the backend, run `action` on it and close it again; a backend that cannot be
    reached (or refuses the password…) is one `error:` line and exit 2, not a traceback."""

    async def run() -> T:
        target = runner.open_backend(url)
        try:
            return await action(target)
        finally:
            await target.close()

    try:
        return asyncio.run(run())
    except PikkuQueueError as exc:
        raise _fail(redact_text(str(exc), url)) from None


# ---------------------------------------------------------------------- worker display


def _stats_table(stats: list[QueueStats]) -> Table:
    table = Table(title="queue stats")
    for column in (
        "queue",
        "waiting",
        "active",
        "delayed",
        "completed",
        "failed",
        "dead-lettered",
        "jobs/min",
        "p50 ms",
        "p95 ms",
        "error rate",
    ):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for s in stats:
        table.add_row(*_stats_cells(s))
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _stats_cells(s: QueueStats) -> list[str]:
    return [
        s.queue,
        str(s.waiting),
        str(s.active),
        str(s.delayed),
        str(s.completed),
        str(s.failed),
        str(s.dead_lettered),
        f"{s.throughput_per_minute:.1f}",
        _ms(s.latency_p50_ms),
        _ms(s.latency_p95_ms),
        f"{s.error_rate:.1%}",
    ]


def print_stats(stats: list[QueueStats], console: Console, tty: bool) -> None:
    if tty:
        console.print(_stats_table(stats))
        return
    for s in stats:
        typer.echo(
            f"stats {s.queue}: waiting={s.waiting} active={s.active} delayed={s.delayed}"
            f" completed={s.completed} failed={s.failed} dead_lettered={s.dead_lettered}"
            f" throughput_per_min={s.throughput_per_minute:.1f}"
            f" p50_ms={_ms(s.latency_p50_ms)} p95_ms={_ms(s.latency_p95_ms)}"
            f" error_rate={s.error_rate:.4f}"
        )


class JobProgress:
    """The latest `ctx.progress.update(...)` of each queue's running jobs, from the worker's
    events, so the live display shows how far a long job is, not only how many jobs are done."""

    def __init__(self, events: EventBus) -> None:
        self._running: dict[str, dict[str, dict[str, Any]]] = {}
        events.subscribe("progress", self._update)
        for name in ("completed", "failed", "dead_lettered", "retrying", "stalled"):
            events.subscribe(name, self._finish)

    def _update(self, event: JobEvent) -> None:
        data = event.data.get("progress")
        if isinstance(data, dict):
            self._running.setdefault(event.queue, {})[event.job_id] = data

    def _finish(self, event: JobEvent) -> None:
        self._running.get(event.queue, {}).pop(event.job_id, None)

    def describe(self, queue: str) -> str:
        """E.g. `job 3f2a9c1b 40% (80/200)` for each running job that reported progress."""
        parts = []
        for job_id, data in sorted(self._running.get(queue, {}).items()):
            text = f"job {job_id[:8]}"
            if isinstance(data.get("percentage"), int | float):
                text += f" {data['percentage']:.0f}%"
            if data.get("processed") is not None and data.get("total") is not None:
                text += f" ({data['processed']}/{data['total']})"
            parts.append(text)
        return ", ".join(parts)


async def _watch(
    monitor: QueueMonitor,
    stop: asyncio.Event,
    console: Console,
    tty: bool,
    interval: float,
    job_progress: JobProgress | None = None,
) -> None:
    """Live display until `stop`: bars on a terminal, a log line per change otherwise."""
    baseline: dict[str, int] = {}
    for name in monitor.queues:
        c = await monitor.backend.counts(name)
        baseline[name] = counts.finished(c)
    progress: Progress | None = None
    tasks: dict[str, TaskID] = {}
    if tty:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
            transient=False,
        )
        progress.start()
        tasks = {q: progress.add_task(q, total=None, detail="") for q in monitor.queues}
    last: dict[str, tuple[int | str, ...]] = {}
    try:
        while True:
            for name in monitor.queues:
                c = await monitor.backend.counts(name)
                # One definition of each count (pikku_queue.counts), as in the final table.
                done = counts.finished(c) - baseline[name]
                pending = counts.pending(c)
                detail = counts.describe(c)
                running = job_progress.describe(name) if job_progress is not None else ""
                if progress is not None:
                    progress.update(
                        tasks[name],
                        completed=done,
                        total=done + pending,
                        detail=f"{detail} · {running}" if running else detail,
                    )
                else:
                    snapshot = (done, *counts.by_state(c).values(), c.scheduled)
                    if last.get(name) != (*snapshot, running):
                        last[name] = (*snapshot, running)
                        states = " ".join(f"{k}={v}" for k, v in counts.by_state(c).items())
                        typer.echo(
                            f"{time.strftime('%H:%M:%S')} {name}: done_since_start={done}"
                            f" {states} scheduled={c.scheduled}"
                            + (f" running: {running}" if running else "")
                        )
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        if progress is not None:
            progress.stop()


def _display(console: Console, tty: bool) -> runner.Watch:
    """The live display around the runner's run: bars (or log lines), then the stats table."""

    @contextlib.asynccontextmanager
    async def watch(
        backend: Backend, options: WorkerOptions, queues: list[str]
    ) -> AsyncIterator[None]:
        monitor = QueueMonitor(queues=queues, backend=backend)
        display_stop = asyncio.Event()
        job_progress = JobProgress(options.events)
        display = asyncio.create_task(
            _watch(monitor, display_stop, console, tty, 0.5 if tty else 2.0, job_progress)
        )
        try:
            yield
        finally:
            display_stop.set()
            with contextlib.suppress(Exception):
                await display
            with contextlib.suppress(Exception):
                print_stats(await monitor.all_stats(), console, tty)

    return watch


def worker(
    backend: BackendOption = None,
    queues: Annotated[
        str | None, typer.Option("--queues", help="Comma-separated queues (default: all).")
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, help="Jobs at once per queue (default: each processor's)."
        ),
    ] = None,
    burst: Annotated[
        bool, typer.Option("--burst", help="Exit when the queues are drained.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option("--grace", min=0, help="Seconds active jobs get to finish on stop."),
    ] = runner.DEFAULT_GRACE_S,
    lease_ms: Annotated[
        int,
        typer.Option(
            "--lease-ms", min=100, help="Job lease; a dead worker's jobs return after it."
        ),
    ] = runner.DEFAULT_LEASE_MS,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            help="Serve Prometheus /metrics on this port (needs the \\[metrics] extra).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address of the /metrics server.")
    ] = runner.DEFAULT_METRICS_HOST,
    registry_package: Annotated[
        str | None,
        typer.Option(
            "--registry",
            metavar="PKG",
            help="The generated package to serve (default: the one \\[tool.pikkugen] out names).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="The generated package's folder, if `pikkugen scan --out` put it there."
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Refuse to start on a registry older than its sources (else warn)."
        ),
    ] = False,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            help="Run N worker processes, each with its own backend connection; with N > 1 "
            "their plain log lines, prefixed \\[i], replace the live display; --metrics-port "
            "PORT serves process i on PORT+i.",
        ),
    ] = 1,
) -> None:
    """Run the processors of the generated registry until stopped (or drained, with --burst).

    The same runner as `python -m pikku_queue worker`, plus a live display."""
    try:
        config = load_config(out=str(out) if out is not None else None)
    except ConfigError as exc:
        raise _fail(exc.message) from None
    registry, generated_url = load_registry(config, registry_package)
    flags = runner.WorkerFlags(
        backend=backend_url(backend, config, generated_url),
        queues=queues,
        concurrency=concurrency,
        burst=burst,
        strict=strict,
        grace=grace,
        lease_ms=lease_ms,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        processes=processes,
        events_hook=config.events,  # [tool.pikkugen] events: the user's hook
    )
    try:
        run = runner.prepare(registry, None, flags)
    except runner.StartError as exc:
        raise _fail(str(exc)) from None
    if processes > 1:  # the runner's children; their lines, prefixed, instead of the display
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        package = registry_package or config.out_package
        roots = [str(root) for root in import_roots(config)]
        code = runner.run_processes(run, package, path=roots)
        if code:
            raise typer.Exit(code)
        return
    console = Console(stderr=False)
    tty = console.is_terminal
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s" if tty else "%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False)] if tty else None,
    )
    code = runner.run_worker(run, _display(console, tty))
    if code:
        raise typer.Exit(code)


# ---------------------------------------------------------------------- enqueue


def enqueue(
    queue: Annotated[str, typer.Argument(help="Queue name.")],
    data: Annotated[str, typer.Option("--data", help="The payload as JSON.")] = "{}",
    delay: Annotated[int | None, typer.Option("--delay", help="Delay in ms.")] = None,
    priority: Annotated[
        int | None,
        typer.Option("--priority", help="1 (the highest) to 2097151 (the lowest)."),
    ] = None,
    job_id: Annotated[
        str | None,
        typer.Option(
            "--job-id",
            help="Idempotency key (an existing id is reused), e.g. order-123: at most 128 "
            "ASCII letters, digits and punctuation, no ':', not an integer.",
        ),
    ] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Repeat on a cron schedule.")] = None,
    every: Annotated[int | None, typer.Option("--every", help="Repeat every N ms.")] = None,
    backend: BackendOption = None,
) -> None:
    """Validate a payload against the queue's input type and enqueue it."""
    config = _config()
    registry, generated_url = load_registry(config)
    try:
        registry.get(queue)
        payload = json.loads(data)
    except json.JSONDecodeError as exc:
        raise _fail(f"--data is not valid JSON: {exc}") from None
    except PikkuQueueError as exc:
        raise _fail(str(exc)) from None
    repeat = {"cron": cron, "every": every} if cron is not None or every is not None else None
    try:  # the one per-job options model every enqueue path validates with
        options = enqueue_options(delay=delay, priority=priority, job_id=job_id, repeat=repeat)
    except PikkuQueueError as exc:
        raise _fail(str(exc)) from None
    [processor] = load_processors(registry, [queue])
    typed: TypedQueue[Any, Any] = TypedQueue(
        queue, processor.input_adapter, processor.output_adapter, processor.options
    )
    url = backend_url(backend, config, generated_url)

    async def send(target: Backend) -> str:
        handle = await typed.enqueue(
            payload,
            delay=options.delay,
            priority=options.priority,
            job_id=options.job_id,
            repeat=options.repeat,
            backend=target,
        )
        return handle.id

    typer.echo(_on_backend(url, send))
    typer.echo(f"enqueued on {queue!r} in {masked_url(url)}", err=True)


# ---------------------------------------------------------------------- dlq


def _dlq_for(registry: Registry, queue: str) -> tuple[str, str | None]:
    """(dead-letter queue, source queue filter): QUEUE may name a processor's queue or a DLQ."""
    if queue in registry.names():
        dlq = registry.get(queue).options.dead_letter_queue
        if dlq is None:
            raise _fail(f"queue {queue!r} has no dead_letter_queue: its failed jobs end 'failed'")
        return dlq, queue
    return queue, None


def _one_line(text: str) -> str:
    """A multi-line message (pydantic's validation errors) on one line: `; ` between lines."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


@dlq_app.command("list")
def dlq_list(
    queue: Annotated[str, typer.Argument(help="A queue with a dead_letter_queue, or a DLQ name.")],
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    backend: BackendOption = None,
) -> None:
    """List dead-lettered jobs: id, queue, job id, attempts, reason, error."""
    config = _config()
    registry, generated_url = load_registry(config)
    dlq, source = _dlq_for(registry, queue)
    url = backend_url(backend, config, generated_url)

    async def read(target: Backend) -> list[DeadLetterRecord]:
        return await target.dead_letters(dlq, limit)

    records = [r for r in _on_backend(url, read) if source is None or r.queue == source]
    for record in records:
        if as_json:
            typer.echo(json.dumps({"id": record.id, **record.as_payload()}, sort_keys=True))
        else:
            typer.echo(
                f"{record.id}  {record.queue}/{record.job_id}  attempts={record.attempts}"
                f"  reason={record.reason}  {record.error.type}: {_one_line(record.error.message)}"
                f"  payload={json.dumps(record.payload, sort_keys=True)}"
            )
    typer.echo(f"{len(records)} record(s) in {dlq} ({masked_url(url)})", err=True)


@dlq_app.command("replay")
def dlq_replay(
    queue: Annotated[str, typer.Argument(help="A queue with a dead_letter_queue, or a DLQ name.")],
    ids: Annotated[
        list[str] | None,
        typer.Option("--id", help="Record id to replay (repeatable; default all)."),
    ] = None,
    backend: BackendOption = None,
) -> None:
    """Move dead-lettered jobs back to their queue, attempts reset."""
    config = _config()
    registry, generated_url = load_registry(config)
    dlq, source = _dlq_for(registry, queue)
    url = backend_url(backend, config, generated_url)

    async def replay(target: Backend) -> int:
        chosen: list[str] | None = list(ids) if ids else None
        if chosen is None and source is not None:
            records = await target.dead_letters(dlq, 1_000_000)
            chosen = [r.id for r in records if r.queue == source]
        return await target.replay(dlq, chosen)

    count = _on_backend(url, replay)
    typer.echo(f"replayed {count} job(s) from {dlq} ({masked_url(url)})")


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""
    app.command("worker")(worker)
    app.command("enqueue")(enqueue)
    app.add_typer(dlq_app, name="dlq")
