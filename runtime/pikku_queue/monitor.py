"""Queue statistics with one interface on every backend.

Built only on `Backend.counts` and `Backend.finished_since` (or, where a backend offers it,
`finished_summary`: the same figures without a row per job), so a new backend gets the monitor
for free, and the numbers mean the same thing everywhere (each count: `pikku_queue.counts`):
latency is enqueue → finish (what a user waits), throughput counts finished jobs in the window,
error rate is the share of them that failed for good.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pikku_queue import counts as count_rules
from pikku_queue.backend import Backend, HasClock, SummarisesFinished
from pikku_queue.client import BackendArg, backend_for, known_queues
from pikku_queue.errors import UnknownQueueError
from pikku_queue.records import FinishedSummary


@dataclass(frozen=True)
class QueueStats:
    queue: str
    waiting: int
    active: int
    delayed: int
    completed: int
    failed: int
    dead_lettered: int
    #: Of `delayed`, the next runs of repeat schedules.
    scheduled: int
    #: Jobs finished per minute over the window.
    throughput_per_minute: float
    #: Enqueue → finish latency of jobs finished in the window, ms (None: nothing finished).
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    #: Share of jobs finished in the window that failed for good (0.0–1.0).
    error_rate: float
    #: Jobs still to run (`pikku_queue.counts.pending`: a schedule's next run is not one).
    queue_size: int
    window_ms: int
    #: Stopped while running by a cancel (`pikku_queue.counts`).
    cancelled: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


class QueueMonitor:
    """Stats for the given queues over a sliding window (default: the last 5 minutes)."""

    def __init__(
        self,
        queues: Sequence[str],
        backend: BackendArg = None,
        *,
        window_ms: int = 300_000,
    ) -> None:
        self.queues = list(queues)
        self._given = backend
        self._backend: Backend | None = None
        self.window_ms = window_ms

    @property
    def backend(self) -> Backend:
        """The given backend (or the one its URL opens); else the one the producer of these
        queues uses: the generated client's queues carry the project's configured URL, which
        `$PIKKU_QUEUE_URL` and `set_default_backend` still override (the same order as
        enqueueing)."""
        if self._backend is None:
            known = next((known_queues[q] for q in self.queues if q in known_queues), None)
            # the queue's project root too: a relative SQLite path is the project's file
            self._backend = backend_for(
                self._given, known.backend_url if known else None, known.root if known else None
            )
        return self._backend

    def _now_ms(self) -> int:
        backend = self.backend
        if isinstance(backend, HasClock):
            return int(backend.clock.now_ms())
        return time.time_ns() // 1_000_000

    async def get_stats(self, name: str) -> QueueStats:
        if name not in self.queues:
            raise UnknownQueueError(f"queue {name!r} is not monitored; monitored: {self.queues}")
        backend = self.backend
        counts = await backend.counts(name)
        now = self._now_ms()
        since = now - self.window_ms
        if isinstance(backend, SummarisesFinished):  # no row per job in memory (a busy window)
            summary: FinishedSummary = await backend.finished_summary(name, since)
        else:
            summary = FinishedSummary.of(await backend.finished_since(name, since))

        # Throughput over the part of the window that saw work, so a burst a minute ago is not
        # diluted by an idle window: from the first finish (or window start) to now.
        finished = summary.succeeded + summary.failed
        firsts = [t for t in (summary.first_succeeded_ms, summary.first_failed_ms) if t is not None]
        span_ms = self.window_ms
        if firsts:
            span_ms = max(now - min(min(firsts), now), 1000)  # one job is not "infinite"
        throughput = finished * 60_000 / span_ms if finished else 0.0
        latencies = list(summary.latencies_ms)
        return QueueStats(
            queue=name,
            waiting=counts.waiting,
            active=counts.active,
            delayed=counts.delayed,
            completed=counts.completed,
            failed=counts.failed,
            dead_lettered=counts.dead_lettered,
            scheduled=counts.scheduled,
            throughput_per_minute=round(throughput, 2),
            latency_p50_ms=percentile(latencies, 0.50),
            latency_p95_ms=percentile(latencies, 0.95),
            error_rate=round(summary.failed / finished, 4) if finished else 0.0,
            queue_size=count_rules.pending(counts),
            window_ms=self.window_ms,
            cancelled=counts.cancelled,
        )

    async def all_stats(self) -> list[QueueStats]:
        return [await self.get_stats(name) for name in self.queues]
