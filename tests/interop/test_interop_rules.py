"""One set of rules with Node BullMQ (6.7) on the same redis-server: job ids and
priorities refused alike, a Node producer's attempts/backoff under the attempts rule, a Python
worker visible to BullMQ's tooling (getWorkers, processedBy, job logs), pikkugen's bookkeeping
after Node's obliterate, and a burst worker on a queue Node paused."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from node_bullmq import NodeBullMQ
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.client import TypedQueue, known_queues
from pikku_queue.context import JobContext
from pikku_queue.errors import InvalidEnqueueOptionsError, NonRetryableError
from pikku_queue.options import (
    MAX_PRIORITY,
    BatchOptions,
    ProcessorOptions,
    RetryOptions,
    job_id_problem,
)
from pikku_queue.processor import Processor
from pikku_queue.records import JobState
from pydantic import TypeAdapter
from redis_server import RedisServer

pytestmark = pytest.mark.redis

Payload = dict[str, Any]


@pytest.fixture
async def backend(redis_server: RedisServer, prefix: str) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(f"{redis_server.url}?prefix={prefix}")
    yield backend
    await backend.close()


@pytest.fixture
def queue() -> str:
    return f"rules-{uuid.uuid4().hex[:8]}"


def typed(name: str, options: ProcessorOptions | None = None) -> TypedQueue[Payload, Any]:
    return TypedQueue(name, TypeAdapter(Payload), TypeAdapter(Any), options)


@pytest.fixture(autouse=True)
def _forget_queues() -> Any:
    yield
    for name in [n for n in known_queues if n.startswith("rules-")]:
        known_queues.pop(name, None)


def node_ops(
    node: NodeBullMQ, connection: str, prefix: str, queue: str, *ops: dict[str, Any]
) -> list[Any]:
    result: list[Any] = node.run("ops.cjs", connection, prefix, queue, json.dumps(list(ops)))
    return result


async def in_thread(node: NodeBullMQ, *args: Any) -> list[Any]:
    return await asyncio.to_thread(node_ops, node, *args)


async def test_item_1_repro_keeps_every_payload_or_refuses_the_id(
    backend: RedisBackend, node_bullmq: NodeBullMQ, connection: str, prefix: str, queue: str
) -> None:
    """Python job_id="3", two auto-id jobs, job_id="5", two Node jobs: the integer ids are
    refused (nothing sent), the four other jobs keep their own ids and payloads."""
    client = typed(queue)
    with pytest.raises(InvalidEnqueueOptionsError, match=r"cannot be an integer.*order-123"):
        await client.enqueue({"custom": 3}, job_id="3", backend=backend)
    auto = [await client.enqueue({"auto": n}, backend=backend) for n in (1, 2)]
    with pytest.raises(InvalidEnqueueOptionsError, match="cannot be an integer"):
        await client.enqueue({"custom": 5}, job_id="5", backend=backend)
    node = await in_thread(
        node_bullmq, connection, prefix, queue,
        {"op": "add", "data": {"node": 1}}, {"op": "add", "data": {"node": 2}},
        {"op": "jobs"},
    )  # fmt: skip
    waiting = {job["id"]: job["data"] for job in node[2]}
    assert waiting == {
        auto[0].id: {"auto": 1},
        auto[1].id: {"auto": 2},
        node[0]["id"]: {"node": 1},
        node[1]["id"]: {"node": 2},
    }
    assert len(waiting) == 4  # four distinct ids: nothing overwritten
    # A prefixed id (the hint) goes through, beside BullMQ's own numbering.
    custom = await client.enqueue({"custom": 3}, job_id="order-3", backend=backend)
    assert custom.id == "order-3"
    info = await custom.info()
    assert info is not None and info.payload == {"custom": 3}


async def test_every_id_node_refuses_is_refused_here_too(
    node_bullmq: NodeBullMQ, connection: str, prefix: str, queue: str
) -> None:
    candidates = ["3", "-3", "12345678901234567890", "a:b", "pikku:dead", "order-7", "7a", "x.y"]
    added = await in_thread(
        node_bullmq, connection, prefix, queue,
        *({"op": "add", "data": {}, "opts": {"jobId": c}} for c in candidates),
    )  # fmt: skip
    node_refuses = {c for c, result in zip(candidates, added, strict=True) if "error" in result}
    assert node_refuses >= {"3", "a:b", "pikku:dead"}
    assert {c for c in candidates if job_id_problem(c) is not None} >= node_refuses
    assert {c for c in candidates if job_id_problem(c) is None} == {"order-7", "7a", "x.y"}


async def test_priority_range_is_bullmqs(
    backend: RedisBackend, node_bullmq: NodeBullMQ, connection: str, prefix: str, queue: str
) -> None:
    client = typed(queue)
    lowest = await client.enqueue({"n": 1}, priority=MAX_PRIORITY, backend=backend)
    with pytest.raises(InvalidEnqueueOptionsError, match="priority"):
        await client.enqueue({"n": 2}, priority=MAX_PRIORITY + 1, backend=backend)
    node = await in_thread(
        node_bullmq, connection, prefix, queue,
        {"op": "add", "data": {"n": 3}, "opts": {"priority": MAX_PRIORITY}},
        {"op": "add", "data": {"n": 4}, "opts": {"priority": MAX_PRIORITY + 1}},
        {"op": "jobs"},
    )  # fmt: skip
    assert "id" in node[0]
    assert "error" in node[1] and "Priority" in node[1]["error"]
    assert sorted(job["data"]["n"] for job in node[2]) == [1, 3]
    assert (await backend.counts(queue)).waiting == 2
    assert lowest.id in {job["id"] for job in node[2]}


async def test_node_producer_attempts_and_backoff_follow_the_declaration(
    backend: RedisBackend,
    node_bullmq: NodeBullMQ,
    connection: str,
    prefix: str,
    queue: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The attempts rule: the processor's declaration decides retries and backoff; a job whose
    stored opts differ (Node's attempts: 2, fixed 50 ms) runs as declared, and the worker's
    log says so."""
    tries: list[int] = []

    async def always_fails(ctx: JobContext, data: Payload) -> None:
        tries.append(ctx.attempt)
        raise RuntimeError("still down")

    [added] = await in_thread(
        node_bullmq, connection, prefix, queue,
        {"op": "add", "data": {"n": 1},
         "opts": {"attempts": 2, "backoff": {"type": "fixed", "delay": 50}}},
    )  # fmt: skip
    declared = ProcessorOptions(retry_options=RetryOptions(attempts=3, backoff="fixed", delay=10))
    processor = Processor.from_function(queue, always_fails, declared)
    with caplog.at_level(logging.WARNING, logger="pikku_queue.redis"):
        report = await asyncio.wait_for(
            backend.run_worker(WorkerOptions(processors=[processor], burst=True)), 60
        )
    assert tries == [1, 2, 3]
    assert (report.retried, report.failed) == (2, 1)
    warnings = [r.getMessage() for r in caplog.records if r.name == "pikku_queue.redis"]
    [warning] = [w for w in warnings if f"job {added['id']}" in w]
    assert "attempts=2 (declared 3)" in warning
    assert "backoff=fixed 50 ms (declared fixed 10 ms)" in warning
    assert "the processor's declaration decides" in warning
    [job] = await in_thread(
        node_bullmq, connection, prefix, queue, {"op": "job", "id": added["id"]}
    )
    assert (job["state"], job["attemptsMade"]) == ("failed", 3)


async def test_node_sees_a_running_python_worker_its_jobs_and_their_logs(
    backend: RedisBackend, node_bullmq: NodeBullMQ, connection: str, prefix: str, queue: str
) -> None:
    async def charge(ctx: JobContext, data: Payload) -> Payload:
        ctx.logger.warning("charging order %s", data["n"])
        ctx.logger.info("charged")  # below the default console level, still in the job's log
        return {"ok": data["n"]}

    processor = Processor.from_function(queue, charge, ProcessorOptions())
    stop = asyncio.Event()
    worker = asyncio.ensure_future(
        backend.run_worker(
            WorkerOptions(processors=[processor], stop=stop, worker_id="pikku-interop-1")
        )
    )
    try:
        handle = await typed(queue).enqueue({"n": 7}, backend=backend)
        assert await handle.result(timeout=30) == {"ok": 7}
        workers, job = await in_thread(
            node_bullmq, connection, prefix, queue,
            {"op": "workers"}, {"op": "job", "id": handle.id},
        )  # fmt: skip
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
    # BullMQ's naming, `<prefix>:<base64 queue>:w:<worker name>`, on each of the worker's
    # connections (bullmq-python names its blocking connection too).
    encoded = base64.b64encode(queue.encode()).decode()
    assert workers["count"] >= 1
    assert set(workers["names"]) == {f"{prefix}:{encoded}:w:pikku-interop-1"}
    assert job["processedBy"] == "pikku-interop-1"
    assert job["logs"] == ["WARNING charging order 7", "INFO charged"]
    # Once the worker has stopped, Node lists none.
    [after] = await in_thread(node_bullmq, connection, prefix, queue, {"op": "workers"})
    assert after["count"] == 0


async def test_bookkeeping_after_node_obliterate_does_not_mislabel_new_jobs(
    backend: RedisBackend, node_bullmq: NodeBullMQ, connection: str, prefix: str, queue: str
) -> None:
    async def refuses(data: Payload) -> None:
        raise NonRetryableError("no")

    dlq = f"{queue}-dlq"
    with_dlq = Processor.from_function(queue, refuses, ProcessorOptions(dead_letter_queue=dlq))
    first = await typed(queue).enqueue({"n": 1}, backend=backend)
    await asyncio.wait_for(backend.run_worker(WorkerOptions(processors=[with_dlq], burst=True)), 60)
    assert (await backend.counts(queue)).dead_lettered == 1

    [done] = await in_thread(node_bullmq, connection, prefix, queue, {"op": "obliterate"})
    assert done == {"obliterated": True}
    assert (await backend.counts(queue)).dead_lettered == 0

    # Ids restart at 1: the new job has the old one's id, and fails without a DLQ.
    without = Processor.from_function(queue, refuses, ProcessorOptions())
    again = await typed(queue).enqueue({"n": 2}, backend=backend)
    assert again.id == first.id
    await asyncio.wait_for(backend.run_worker(WorkerOptions(processors=[without], burst=True)), 60)
    counts = await backend.counts(queue)
    assert (counts.failed, counts.dead_lettered) == (1, 0)
    assert await again.status() == JobState.FAILED


async def test_burst_worker_on_a_queue_node_paused_reports_it_and_exits(
    backend: RedisBackend,
    node_bullmq: NodeBullMQ,
    connection: str,
    prefix: str,
    queue: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[int] = []

    async def record(data: Payload) -> None:
        ran.append(data["n"])

    for n in (1, 2):
        await typed(queue).enqueue({"n": n}, backend=backend)
    [paused] = await in_thread(node_bullmq, connection, prefix, queue, {"op": "pause"})
    assert paused == {"paused": True}
    processor = Processor.from_function(queue, record, ProcessorOptions())
    with caplog.at_level(logging.WARNING, logger="pikku_queue.redis"):
        report = await asyncio.wait_for(
            backend.run_worker(WorkerOptions(processors=[processor], burst=True)), 60
        )
    assert ran == [] and report.completed == 0
    [message] = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
    assert f"{queue}: the queue is paused" in message and "leaves 2 job(s) waiting" in message
    assert (await backend.counts(queue)).waiting == 2

    await in_thread(node_bullmq, connection, prefix, queue, {"op": "resume"})
    report = await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True)), 60
    )
    assert sorted(ran) == [1, 2]


CLI_JOBS = """
from pydantic import BaseModel
from pikku_queue import JobContext


class Order(BaseModel):
    id: int


async def charge(ctx: JobContext, data: Order) -> dict[str, int]:
    ctx.logger.warning("charging order %s", data.id)
    return {"order": data.id}
"""

CLI_REGISTRY = """
from pikku_queue.options import ProcessorOptions
from pikku_queue.registry import QueueEntry, Registry

BACKEND_URL: str | None = None

REGISTRY = Registry(
    [
        QueueEntry(
            name="charge",
            function="shop.jobs.charge",
            options=ProcessorOptions(),
            input="shop.jobs.Order",
        ),
    ],
)
"""


PIKKUGEN = [str(Path(sys.executable).parent / "pikkugen")]


def cli_project(root: Path) -> Path:
    """A project folder with a `charge` queue, as `pikkugen worker` runs in it."""
    (root / "pyproject.toml").write_text(
        '[tool.pikkugen]\npaths = ["src"]\nout = "src/shop/generated"\n'
    )
    package = root / "src" / "shop"
    (package / "generated").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "generated" / "__init__.py").write_text("")
    (package / "jobs.py").write_text(CLI_JOBS)
    (package / "generated" / "registry.py").write_text(CLI_REGISTRY)
    return root


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PIKKU_QUEUE_URL"}


def test_pikkugen_worker_burst_on_a_paused_queue_says_so_and_exits(
    tmp_path: Path, node_bullmq: NodeBullMQ, redis_server: RedisServer, connection: str, prefix: str
) -> None:
    paused = node_ops(
        node_bullmq, connection, prefix, "charge",
        {"op": "add", "data": {"id": 1}}, {"op": "pause"},
    )  # fmt: skip
    assert paused[1] == {"paused": True}
    url = f"{redis_server.url}?prefix={prefix}"
    done = subprocess.run(
        [*PIKKUGEN, "worker", "--burst", "--backend", url], cwd=cli_project(tmp_path),
        capture_output=True, text=True, env=cli_env(), timeout=120,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "charge: the queue is paused" in out
    assert "leaves 1 job(s) waiting and exits" in out
    [job] = node_ops(node_bullmq, connection, prefix, "charge", {"op": "jobs"})
    assert [j["data"] for j in job] == [{"id": 1}]


def test_node_lists_a_running_pikkugen_worker_process(
    tmp_path: Path, node_bullmq: NodeBullMQ, redis_server: RedisServer, connection: str, prefix: str
) -> None:
    """`pikkugen worker` as a user runs it: Node's getWorkers() lists it while it runs, and the
    job it ran names it in processedBy and carries its ctx.logger line."""
    url = f"{redis_server.url}?prefix={prefix}"
    worker = subprocess.Popen(
        [*PIKKUGEN, "worker", "--backend", url], cwd=cli_project(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cli_env(),
    )  # fmt: skip
    try:
        listed: dict[str, Any] = {"count": 0, "names": []}
        deadline = time.monotonic() + 60
        while listed["count"] == 0 and time.monotonic() < deadline and worker.poll() is None:
            [listed] = node_ops(node_bullmq, connection, prefix, "charge", {"op": "workers"})
        assert listed["count"] >= 1, worker.stdout.read() if worker.poll() is not None else ""
        encoded = base64.b64encode(b"charge").decode()
        [name] = set(listed["names"])
        assert name.startswith(f"{prefix}:{encoded}:w:")
        added, _ = node_ops(
            node_bullmq, connection, prefix, "charge",
            {"op": "add", "data": {"id": 5}}, {"op": "workers"},
        )  # fmt: skip
        job: dict[str, Any] = {"state": "waiting"}
        while job.get("state") != "completed" and time.monotonic() < deadline:
            [job] = node_ops(
                node_bullmq, connection, prefix, "charge", {"op": "job", "id": added["id"]}
            )
        assert job["state"] == "completed"
        assert job["processedBy"] == name.split(":w:", 1)[1]
        assert job["logs"] == ["WARNING charging order 5"]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
    [after] = node_ops(node_bullmq, connection, prefix, "charge", {"op": "workers"})
    assert after["count"] == 0


async def test_a_batch_calls_log_reaches_each_of_its_jobs(
    backend: RedisBackend, node_bullmq: NodeBullMQ, connection: str, prefix: str, queue: str
) -> None:
    async def handle_batch(ctx: JobContext, data: list[Payload]) -> list[Payload]:
        ctx.logger.warning("batch of %d", len(data))
        return [{"ok": item["n"]} for item in data]

    options = ProcessorOptions(batch=BatchOptions(size=2, timeout=5000))
    processor = Processor.from_function(queue, handle_batch, options)
    handles = [await typed(queue).enqueue({"n": n}, backend=backend) for n in (1, 2)]
    report = await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True)), 60
    )
    assert report.completed == 2
    jobs = await in_thread(
        node_bullmq, connection, prefix, queue, *({"op": "job", "id": h.id} for h in handles)
    )
    assert [job["logs"] for job in jobs] == [["WARNING batch of 2"], ["WARNING batch of 2"]]


async def test_jobs_at_the_lowest_priority_keep_their_order(
    backend: RedisBackend, queue: str
) -> None:
    """At the very end of the range BullMQ's sort scores (priority * 2**32 + a counter) stay
    exact: equal priorities run in the order they were added. One past the end they pass 2**53
    and round together, and BullMQ breaks the tie by id as text: job 100 before job 99."""
    ran: list[int] = []

    async def record(data: Payload) -> None:
        ran.append(data["n"])

    client = typed(queue)
    await client.enqueue_many(
        [{"n": n} for n in range(110)], priority=MAX_PRIORITY, backend=backend
    )
    await client.enqueue({"n": 110}, priority=1, backend=backend)
    processor = Processor.from_function(queue, record, ProcessorOptions(concurrency=1))
    await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True)), 120
    )
    assert ran == [110, *range(110)]
