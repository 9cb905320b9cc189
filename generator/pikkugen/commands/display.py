"""`pikkugen worker`'s live display: what the runner's `Watch` hook shows around a run.

On a terminal, one rich progress bar per queue (jobs done since the start out of done plus
pending, the counts by state, the latest `ctx.progress.update(...)` of each running job);
otherwise one log line per change. When the worker is done, the stats table (`QueueMonitor`).
It lives in the generator: the runtime never imports rich.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import typer
from pikku_queue import counts, runner
from pikku_queue.backend import Backend, WorkerOptions
from pikku_queue.events import EventBus, JobEvent
from pikku_queue.monitor import QueueMonitor, QueueStats
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

_STATS_COLUMNS = (
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
)


def _stats_width(stats: list[QueueStats]) -> int:
    """The columns the stats table needs with no cell cut: each column's widest cell, padded
    by 1 on both sides, and n + 1 borders."""
    rows = [_stats_cells(s) for s in stats]
    widths = [
        max(len(cell) for cell in [header, *(row[i] for row in rows)])
        for i, header in enumerate(_STATS_COLUMNS)
    ]
    return sum(widths) + 3 * len(widths) + 1


def _stats_table(stats: list[QueueStats]) -> Table:
    table = Table(title="queue stats")
    for column in _STATS_COLUMNS:
        table.add_column(column, justify="left" if column == "queue" else "right", no_wrap=True)
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
    """The final stats: a table on a terminal wide enough for every queue name whole, else
    one line per queue (the format a log file gets)."""
    if tty and _stats_width(stats) <= console.width:
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


def live_display(console: Console, tty: bool) -> runner.Watch:
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
