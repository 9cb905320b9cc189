"""`/api/stats` (every queue's counts and rates, and what this backend lets the monitor do)
and `/api/series` (a queue's chart series).

Every number comes from the backend through `QueueMonitor` / `Backend` methods, with the
counts of `pikku_queue.counts` (the same as the worker's table and `/metrics`).
"""

from __future__ import annotations

import time
from dataclasses import asdict

from pikku_queue import counts
from pikku_queue.adapters import masked_url
from pikku_queue.backend import BucketsFinished, PausesQueues
from pikku_queue.monitor import percentile
from pikku_queue.records import FinishedBucket
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pikkugen.web_monitor.queues import known_queue
from pikkugen.web_monitor.state import ACTION_FEATURES, monitor_state

#: The chart's buckets: 10 s each over the monitor's window.
BUCKET_MS = 10_000


async def stats(request: Request) -> Response:
    """`/api/stats`: a row per queue and dead-letter queue, what the counts mean, and which of
    the monitor's features this backend has (with why not, from its capabilities)."""
    state = monitor_state(request)
    config = state.config
    backend = state.backend
    pauser = backend if "pause_queue" in state.features else None
    rows = []
    for name in state.queue_monitor.queues:
        s = await state.queue_monitor.get_stats(name)
        rows.append(
            {
                **asdict(s),
                "counts": {each: getattr(s, each) for each in counts.STATES},
                "is_dlq": name in config.dlqs,
                "dead_letter_queue": config.dead_letter_queues.get(name),
                "paused": isinstance(pauser, PausesQueues) and await pauser.is_paused(name),
            }
        )
    caps = backend.capabilities
    return JSONResponse(
        {
            "backend": masked_url(config.url),
            "now_ms": int(time.time() * 1000),
            "window_ms": config.window_ms,
            "queues": rows,
            "states": list(counts.STATES),
            "definitions": counts.DEFINITIONS,
            "features": sorted(state.features),
            "missing": {
                feature: caps.notes.get(feature) or f"{caps.title} cannot do this"
                for feature in sorted(ACTION_FEATURES - state.features)
            },
        }
    )


async def series(request: Request) -> Response:
    """`/api/series?queue=`: finished, failed and latency per bucket of the window."""
    state = monitor_state(request)
    name = known_queue(request, request.query_params.get("queue"))
    now = int(time.time() * 1000)
    start = now - state.config.window_ms
    backend = state.backend
    # A bounded read where the backend offers one (SQLite: aggregates and a latency sample
    # per bucket in SQL), so a scrape over a busy window loads no row per finished job.
    if isinstance(backend, BucketsFinished):
        found = {b.start_ms: b for b in await backend.finished_buckets(name, start, BUCKET_MS)}
    else:
        found = FinishedBucket.of(await backend.finished_since(name, start), BUCKET_MS)
    buckets = []
    for begin in range(start - start % BUCKET_MS, now, BUCKET_MS):
        bucket = found.get(begin, FinishedBucket(begin))
        latencies = list(bucket.latencies_ms)
        buckets.append(
            {
                "t": begin,
                "finished": bucket.finished,
                "failed": bucket.failed,
                "per_minute": bucket.finished * 60_000 / BUCKET_MS,
                "failed_per_minute": bucket.failed * 60_000 / BUCKET_MS,
                "p50_ms": percentile(latencies, 0.5),
                "p95_ms": percentile(latencies, 0.95),
            }
        )
    return JSONResponse(
        {
            "queue": name,
            "bucket_ms": BUCKET_MS,
            "buckets": buckets,
            "has_data": any(b["finished"] for b in buckets),
        }
    )
