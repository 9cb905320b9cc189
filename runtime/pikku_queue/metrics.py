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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
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


@dataclass(frozen=True)
class _QueueMetrics:
    active: Any
    wait: Any
    duration: Any
    completed: Any
    retried: Any
    dead_lettered: Any
    failed: Any
    cancelled: Any


class Metrics:
    """The metrics of one worker process, fed by the engine's attempt observer."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, ["queue"], registry=r)

        self.completed = counter("pikku_jobs_completed", "Attempts that completed")
        self.failed = counter(
            "pikku_jobs_failed", "Jobs failed for good (the processor names no dead-letter queue)"
        )
        self.retried = counter("pikku_jobs_retried", "Failed attempts that will be retried")
        self.dead_lettered = counter(
            "pikku_jobs_dead_lettered", "Jobs failed for good and copied to the dead-letter queue"
        )
        self.cancelled = counter(
            "pikku_jobs_cancelled", "Running jobs stopped by a cancel (JobHandle.cancel)"
        )
        self.stalled_total = counter(
            "pikku_jobs_stalled", "Jobs whose worker lost its lease; they came back"
        )
        self.duration = Histogram(
            "pikku_job_duration_seconds", "Run time of one attempt", ["queue"],
            buckets=BUCKETS, registry=r,
        )  # fmt: skip
        self.wait = Histogram(
            "pikku_job_wait_seconds", "Enqueue to the start of the job's first attempt",
            ["queue"], buckets=BUCKETS, registry=r,
        )  # fmt: skip
        self.active = Gauge(
            "pikku_jobs_active", "Attempts running in this process", ["queue"], registry=r
        )
        self._remove: Callable[[], None] | None = None
        self._by_queue: dict[str, _QueueMetrics] = {}

    # ------------------------------------------------------------------ observer

    def _children(self, queue: str) -> _QueueMetrics:
        """The queue's labelled metrics, looked up once (`labels()` takes a lock each call)."""
        found = self._by_queue.get(queue)
        if found is None:
            found = self._by_queue[queue] = _QueueMetrics(
                active=self.active.labels(queue),
                wait=self.wait.labels(queue),
                duration=self.duration.labels(queue),
                completed=self.completed.labels(queue),
                retried=self.retried.labels(queue),
                dead_lettered=self.dead_lettered.labels(queue),
                failed=self.failed.labels(queue),
                cancelled=self.cancelled.labels(queue),
            )
        return found

    def attempt_started(
        self, processor: Processor, deliveries: Sequence[Delivery]
    ) -> observe.AttemptEnd:
        m = self._children(processor.name)
        m.active.inc(len(deliveries))
        now_ms = time.time() * 1000
        for delivery in deliveries:
            if delivery.attempt == 1 and delivery.enqueued_at_ms:
                m.wait.observe(max(now_ms - delivery.enqueued_at_ms, 0.0) / 1000)
        has_dlq = processor.options.dead_letter_queue is not None

        def ended(settled: Sequence[tuple[Delivery, Outcome]], elapsed_s: float) -> None:
            m.active.dec(len(deliveries))
            for _, outcome in settled:
                m.duration.observe(elapsed_s)
                if isinstance(outcome, Completed):
                    m.completed.inc()
                elif isinstance(outcome, Retry):
                    m.retried.inc()
                elif isinstance(outcome, Cancelled):
                    m.cancelled.inc()
                elif isinstance(outcome, DeadLetter) and has_dlq:
                    m.dead_lettered.inc()
                else:
                    m.failed.inc()

        return ended

    def stalled(self, queue: str, count: int) -> None:
        self.stalled_total.labels(queue).inc(count)

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
            for metric in (
                self.completed, self.failed, self.retried, self.dead_lettered,
                self.cancelled, self.stalled_total, self.active, self.duration, self.wait,
            ):  # fmt: skip
                metric.labels(queue)


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
