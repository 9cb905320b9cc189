"""The numbers: `/api/stats` (every queue's counts and rates) and a queue's chart series.

Every number comes from the backend through `QueueMonitor` / `Backend` methods, with the
counts of `pikku_queue.counts` (the same as the worker's table and `/metrics`).
"""

from __future__ import annotations

import time
from dataclasses import asdict

from pikku_queue import counts
from pikku_queue.adapters import masked_url
from pikku_queue.backend import BucketsFinished
from pikku_queue.monitor import percentile
from pikku_queue.records import FinishedBucket
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pikkugen.web_monitor.state import monitor_state

#: The chart's buckets: 10 s each over the monitor's window.
BUCKET_MS = 10_000


async def stats(request: Request) -> Response:
    """`/api/stats`: a row per queue and dead-letter queue, and what the counts mean."""
    state = monitor_state(request)
    config = state.config
    lister = getattr(state.backend, "recent_jobs", None)
    rows = []
    for name in state.queue_monitor.queues:
        s = await state.queue_monitor.get_stats(name)
        rows.append(
            {
                **asdict(s),
                "counts": {each: getattr(s, each) for each in counts.STATES},
                "is_dlq": name in config.dlqs,
                "dead_letter_queue": config.dead_letter_queues.get(name),
                "can_list": lister is not None,
            }
        )
    return JSONResponse(
        {
            "backend": masked_url(config.url),
            "now_ms": int(time.time() * 1000),
            "queues": rows,
            "states": list(counts.STATES),
            "definitions": counts.DEFINITIONS,
            "lists_jobs": lister is not None,
            "list_note": None
            if lister is not None
            else "this backend cannot list jobs (SQS keeps no job records): counts, "
            "throughput and the dead-letter queue are shown",
        }
    )


async def series(request: Request) -> Response:
    """`/api/queues/{queue}/series`: finished, failed and latency per bucket of the window."""
    state = monitor_state(request)
    config = state.config
    name = request.path_params["queue"]
    if name not in config.queues + config.dlqs:
        return JSONResponse({"error": f"unknown queue {name!r}"}, status_code=404)
    now = int(time.time() * 1000)
    start = now - config.window_ms
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
                "p50_ms": percentile(latencies, 0.5),
                "p95_ms": percentile(latencies, 0.95),
            }
        )
    return JSONResponse({"queue": name, "bucket_ms": BUCKET_MS, "buckets": buckets})
