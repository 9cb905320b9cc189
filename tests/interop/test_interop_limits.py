"""Rate limits and deduplication shared with Node BullMQ (6.7) on one real redis-server:

- a Node worker with no limiter of its own keeps the rate limit a Python worker declared
  (BullMQ's global rate limit, in the queue's meta hash);
- Node and Python producers deduplicate against each other (BullMQ's `deduplication` option:
  one `de:<id>` key), in drop and in replace (debounce) mode.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from node_bullmq import NodeBullMQ
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.client import TypedQueue
from pikku_queue.conformance.limits import windows_of
from pikku_queue.options import Dedupe, ProcessorOptions, RateLimit
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pydantic import TypeAdapter
from redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

JOBS = 9
LIMIT = RateLimit(max=3, per_ms=500)


def url_for(server: RedisServer, prefix: str) -> str:
    return f"{server.url}?prefix={prefix}"


async def test_node_worker_keeps_the_rate_limit_a_python_worker_declared(
    node_bullmq: NodeBullMQ, redis_server: RedisServer, connection: str, prefix: str
) -> None:
    backend = RedisBackend(url_for(redis_server, prefix))

    async def never_runs(data: dict[str, Any]) -> None:
        raise AssertionError("the queue was empty")

    try:
        processor = Processor.from_function(
            "limited", never_runs, ProcessorOptions(rate_limit=LIMIT)
        )
        # A Python worker starts (and, its queue empty, ends): it declares the limit.
        await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
        for n in range(JOBS):
            await backend.enqueue(EnqueueRequest(queue="limited", payload={"n": n}))
    finally:
        await backend.close()
    seen = await asyncio.to_thread(
        node_bullmq.run, "worker.cjs", connection, prefix, "limited", str(JOBS)
    )
    assert sorted(job["data"]["n"] for job in seen) == list(range(JOBS))
    windows = windows_of([job["processedOn"] for job in seen], LIMIT.per_ms)
    # one Node worker, one slot, jobs that take no time: only the limit spaces them out
    assert max(len(w) for w in windows) <= LIMIT.max, windows
    assert len(windows) >= JOBS // LIMIT.max


def _ops(node_bullmq: NodeBullMQ, connection: str, prefix: str, queue: str, *ops: Any) -> Any:
    return node_bullmq.run("ops.cjs", connection, prefix, queue, json.dumps(list(ops)))


async def test_node_and_python_producers_deduplicate_against_each_other(
    node_bullmq: NodeBullMQ, redis_server: RedisServer, connection: str, prefix: str
) -> None:
    backend = RedisBackend(url_for(redis_server, prefix))
    signups: TypedQueue[dict[str, str], None] = TypedQueue(
        "signups", TypeAdapter(dict[str, str]), TypeAdapter(type(None))
    )
    welcome = Dedupe(key="welcome-{user_id}", ttl_ms=60_000)
    try:
        [from_node] = await asyncio.to_thread(
            _ops,
            node_bullmq,
            connection,
            prefix,
            "signups",
            {
                "op": "add",
                "data": {"user_id": "u1"},
                "opts": {"deduplication": {"id": "welcome-u1", "ttl": 60_000}},
            },
        )
        # Python's job for u1 is Node's: dropped, the handle points to Node's job
        again = await signups.enqueue({"user_id": "u1"}, dedupe=welcome, backend=backend)
        assert again.id == from_node["id"]
        # and the other way round
        first = await signups.enqueue({"user_id": "u2"}, dedupe=welcome, backend=backend)
        node_again, counts = await asyncio.to_thread(
            _ops,
            node_bullmq,
            connection,
            prefix,
            "signups",
            {
                "op": "add",
                "data": {"user_id": "u2"},
                "opts": {"deduplication": {"id": "welcome-u2", "ttl": 60_000}},
            },
            {"op": "counts"},
        )
        assert node_again["id"] == first.id
        assert counts["waiting"] == 2

        # debounce: a Node producer's later job replaces Python's delayed one
        digest = Dedupe(key="digest", ttl_ms=60_000, mode="replace")
        pending = await signups.enqueue(
            {"user_id": "u3"}, delay=5000, dedupe=digest, backend=backend
        )
        replaced, job, counts = await asyncio.to_thread(
            _ops,
            node_bullmq,
            connection,
            prefix,
            "signups",
            {
                "op": "add",
                "data": {"user_id": "u4"},
                "opts": {
                    "delay": 5000,
                    "deduplication": {
                        "id": "digest",
                        "ttl": 60_000,
                        "extend": True,
                        "replace": True,
                    },
                },
            },
            {"op": "job", "id": pending.id},
            {"op": "counts"},
        )
        assert replaced["id"] != pending.id
        assert job.get("missing") is True  # Python's delayed job is gone
        assert counts["delayed"] == 1
        assert await backend.get_job("signups", pending.id) is None
        info = await backend.get_job("signups", replaced["id"])
        assert info is not None and info.payload == {"user_id": "u4"}
        # and Python's next one replaces Node's, the same way
        last = await signups.enqueue({"user_id": "u5"}, delay=5000, dedupe=digest, backend=backend)
        assert last.id != replaced["id"]
        assert await backend.get_job("signups", replaced["id"]) is None
    finally:
        await backend.close()
