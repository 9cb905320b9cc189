"""Prometheus metrics for a worker process: `/metrics` on `--metrics-port`.

Needs the `prometheus-client` package (`pip install 'pikku-queue[metrics]'`). Everything lives
in a private `CollectorRegistry`, so nothing else in the process (another library's default
registry) is mixed in, and a test can run two workers side by side.

The counters come from the engine's attempt observer (`pikku_queue.observe`), so they count
on every backend and for every processor, `metrics=False` or not: that option only turns on
BullMQ's own per-minute counters in Redis (what Bull Board's charts read) and the CloudWatch
(EMF) lines of the Lambda handler. `pikku_queue_jobs{queue,state}` is read from the backend's
counts (`pikku_queue.counts`, the same numbers as the worker's table and the web monitor) when
Prometheus scrapes, cached for `COUNTS_TTL_S` so frequent scrapes never hammer the backend.

Several worker processes on one host: give each its own `--metrics-port` and scrape each
(the counters are per process; `sum by (queue)` adds them up). `pikku_queue_jobs` is the same
from every process (it is the backend's), so take `max by (queue, state)` of it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from pikku_queue import counts, observe
from pikku_queue.backend import Backend
from pikku_queue.outcomes import Cancelled, Completed, DeadLetter, Delivery, Outcome, Retry
from pikku_queue.processor import Processor
from pikku_queue.records import QueueCounts

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

logger = logging.getLogger("pikku_queue.metrics")

#: How long a scrape reuses the backend's counts (seconds).
COUNTS_TTL_S = 2.0
#: Run time and wait buckets, seconds: from a quick job to a ten-minute one.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

#: (name, type, help) of every metric, for the README's table.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("pikku_jobs_completed_total", "counter", "attempts that completed (label queue)"),
    ("pikku_jobs_failed_total", "counter", "jobs failed for good, no dead-letter queue"),
    ("pikku_jobs_retried_total", "counter", "failed attempts that will be retried"),
    ("pikku_jobs_dead_lettered_total", "counter", "jobs failed for good into the DLQ"),
    ("pikku_jobs_stalled_total", "counter", "jobs whose worker lost its lease"),
    ("pikku_jobs_cancelled_total", "counter", "running jobs stopped by a cancel"),
    ("pikku_job_duration_seconds", "histogram", "run time of one attempt"),
    ("pikku_job_wait_seconds", "histogram", "enqueue → start of the first attempt"),
    ("pikku_jobs_active", "gauge", "attempts running in this process"),
    ("pikku_queue_jobs", "gauge", "the backend's jobs by queue and state (all processes)"),
)


@dataclass
class _CountsCache:
    at: float = 0.0
    values: dict[str, QueueCounts] = field(default_factory=dict)


class QueueJobsCollector(Collector):
    """`pikku_queue_jobs{queue,state}`, read from the backend on the worker's loop at scrape
    time (the HTTP server runs on its own thread), cached briefly."""

    def __init__(
        self,
        backend: Backend,
        queues: Sequence[str],
        loop: asyncio.AbstractEventLoop,
        ttl_s: float = COUNTS_TTL_S,
    ) -> None:
        self.backend = backend
        self.queues = list(queues)
        self.loop = loop
        self.ttl_s = ttl_s
        self._cache = _CountsCache()
        self._lock = threading.Lock()

    def _read(self) -> dict[str, QueueCounts]:
        async def read() -> dict[str, QueueCounts]:
            return {q: await self.backend.counts(q) for q in self.queues}

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(timeout=10)

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "pikku_queue_jobs", "Jobs of the queue by state (the backend's counts)",
            labels=["queue", "state"],
        )  # fmt: skip

    def describe(self) -> Iterator[Metric]:
        """The family without samples: registering must not read the backend (it would wait
        on the loop it runs on)."""
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        with self._lock:
            now = time.monotonic()
            if not self._cache.values or now - self._cache.at > self.ttl_s:
                try:
                    self._cache = _CountsCache(now, self._read())
                except Exception:
                    logger.exception("metrics: reading the backend's counts failed")
            values = self._cache.values
        for queue, queue_counts in values.items():
            for state, value in counts.by_state(queue_counts).items():
                family.add_metric([queue, state], value)
        yield family


#: The `le` label of each bucket, as prometheus_client writes it ("0.005", "1.0", "+Inf").
_LE = (*(repr(float(bound)) for bound in BUCKETS), "+Inf")


class _Histogram:
    """A histogram's buckets (not cumulative: `bisect` finds the one bucket to add to) and sum,
    in plain Python numbers: `observe` is an index and two additions, no lock."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1  # `le` buckets: value <= bound
        self.total += value

    def exposition(self) -> tuple[list[tuple[str, float]], float]:
        """Cumulative `(le, count)` buckets and the sum, as Prometheus wants them."""
        counts, total = list(self.counts), self.total
        buckets, running = [], 0
        for bound, count in zip(_LE, counts, strict=True):
            running += count
            buckets.append((bound, float(running)))
        return buckets, total


class _QueueStats:
    """The counts of one queue in this process: what an attempt adds to."""

    __slots__ = ("active", "cancelled", "completed", "dead_lettered", "duration", "failed",
                 "retried", "stalled", "wait")  # fmt: skip

    def __init__(self) -> None:
        self.active = 0
        self.completed = 0
        self.retried = 0
        self.dead_lettered = 0
        self.failed = 0
        self.stalled = 0
        self.cancelled = 0
        self.duration = _Histogram()
        self.wait = _Histogram()


#: (attribute of `_QueueStats`, metric name without `_total`, help) of the counters.
_COUNTERS = (
    ("completed", "pikku_jobs_completed", "Attempts that completed"),
    ("failed", "pikku_jobs_failed",
     "Jobs failed for good (the processor names no dead-letter queue)"),
    ("retried", "pikku_jobs_retried", "Failed attempts that will be retried"),
    ("dead_lettered", "pikku_jobs_dead_lettered",
     "Jobs failed for good and copied to the dead-letter queue"),
    ("stalled", "pikku_jobs_stalled", "Jobs whose worker lost its lease; they came back"),
    ("cancelled", "pikku_jobs_cancelled", "Running jobs stopped by a cancel (JobHandle.cancel)"),
)  # fmt: skip


class _AttemptsCollector(Collector):
    """The counters, histograms and gauge of `Metrics`, turned into metric families when
    Prometheus scrapes (on the HTTP server's thread), not when a job runs."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        by_queue = list(self.metrics.by_queue.items())  # one atomic copy; the loop adds queues
        for attribute, name, doc in _COUNTERS:
            counter = CounterMetricFamily(name, doc, labels=["queue"])
            for queue, stats in by_queue:
                counter.add_metric([queue], float(getattr(stats, attribute)))
            yield counter
        for attribute, name, doc in (
            ("duration", "pikku_job_duration_seconds", "Run time of one attempt"),
            ("wait", "pikku_job_wait_seconds", "Enqueue to the start of the job's first attempt"),
        ):
            histogram = HistogramMetricFamily(name, doc, labels=["queue"])
            for queue, stats in by_queue:
                buckets, total = getattr(stats, attribute).exposition()
                histogram.add_metric([queue], buckets, total)
            yield histogram
        active = GaugeMetricFamily(
            "pikku_jobs_active", "Attempts running in this process", labels=["queue"]
        )
        for queue, stats in by_queue:
            active.add_metric([queue], float(stats.active))
        yield active


class Metrics:
    """The metrics of one worker process, fed by the engine's attempt observer.

    An attempt costs what counting it costs, nothing more: a few additions to plain Python
    numbers of its queue (no lock, no metric object per job); the Prometheus metric families are
    built from them only when `/metrics` is scraped. The engine runs attempts on the worker's
    event loop thread, the one writer; a scrape reads from its own thread."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        #: The counts of each queue this process ran (or was told of, `for_queues`).
        self.by_queue: dict[str, _QueueStats] = {}
        self.registry.register(_AttemptsCollector(self))
        self._remove: Callable[[], None] | None = None

    # ------------------------------------------------------------------ observer

    def _stats(self, queue: str) -> _QueueStats:
        found = self.by_queue.get(queue)
        if found is None:
            found = self.by_queue[queue] = _QueueStats()
        return found

    def attempt_started(
        self, processor: Processor, deliveries: Sequence[Delivery]
    ) -> observe.AttemptEnd:
        stats = self.by_queue.get(processor.name) or self._stats(processor.name)
        started = len(deliveries)
        stats.active += started
        now_ms = time.time() * 1000
        wait = stats.wait
        for delivery in deliveries:
            if delivery.attempt == 1 and delivery.enqueued_at_ms:
                waited = max(now_ms - delivery.enqueued_at_ms, 0.0) / 1000
                wait.counts[bisect_left(BUCKETS, waited)] += 1  # `_Histogram.observe`, inlined
                wait.total += waited
        has_dlq = processor.options.dead_letter_queue is not None

        def ended(settled: Sequence[tuple[Delivery, Outcome]], elapsed_s: float) -> None:
            stats.active -= started
            duration = stats.duration
            bucket = bisect_left(BUCKETS, elapsed_s)
            for _, outcome in settled:
                duration.counts[bucket] += 1
                duration.total += elapsed_s
                if isinstance(outcome, Completed):
                    stats.completed += 1
                elif isinstance(outcome, Retry):
                    stats.retried += 1
                elif isinstance(outcome, Cancelled):
                    stats.cancelled += 1
                elif isinstance(outcome, DeadLetter) and has_dlq:
                    stats.dead_lettered += 1
                else:
                    stats.failed += 1

        return ended

    def stalled(self, queue: str, count: int) -> None:
        self._stats(queue).stalled += count

    def install(self) -> None:
        """Start counting attempts in this process."""
        if self._remove is None:
            self._remove = observe.add_observer(self)

    def uninstall(self) -> None:
        if self._remove is not None:
            self._remove()
            self._remove = None

    def for_queues(self, queues: Sequence[str]) -> None:
        """Show every queue from the first scrape on (at 0), not only once it ran a job."""
        for queue in queues:
            self._stats(queue)


@dataclass
class MetricsServer:
    metrics: Metrics
    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self.metrics.uninstall()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(
    port: int,
    host: str = "127.0.0.1",
    *,
    backend: Backend,
    queues: Sequence[str],
    loop: asyncio.AbstractEventLoop | None = None,
) -> MetricsServer:
    """Count this process's attempts and serve `/metrics` on `host:port` (port 0: any free
    one, see `.port`) from a thread, until `.close()`. Call it on the worker's event loop."""
    metrics = Metrics()
    metrics.for_queues(queues)
    metrics.registry.register(
        QueueJobsCollector(backend, queues, loop or asyncio.get_running_loop())
    )
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    metrics.install()
    return MetricsServer(metrics, host, int(server.server_port), server, thread)
