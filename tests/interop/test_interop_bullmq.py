"""Wire compatibility with Node BullMQ (6.7), both ways, on a real redis-server:

- a Node worker completes jobs enqueued by the generated Python client: the payload arrives
  intact, priorities are served in BullMQ's order and a delay is honoured;
- a Python worker completes jobs a Node producer added, and Node reads back our results.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from node_bullmq import NodeBullMQ
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.context import JobContext
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.processor import Processor
from pikku_queue.records import JobState
from pikkugen.config import Config
from pikkugen.generate import generate
from pikkugen.model import Location, ProcessorDecl, ScanResult, TypeRef
from redis_server import RedisServer

pytestmark = pytest.mark.redis

PAYLOAD = {
    "order": "ÄÖ-42 ✓",
    "lines": [{"sku": "a", "qty": 2, "price": 9.99}, {"sku": "b", "qty": 1, "price": 0.5}],
    "note": None,
    "gift": True,
    "big": 2**53 - 1,
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client module pikkugen generates for a queue named `to-node`."""
    root = tmp_path_factory.mktemp("interop")
    out = root / "src" / "interop_gen"
    out.mkdir(parents=True)
    config = Config(
        root=root,
        paths=(root / "src",),
        out=out,
        out_package="interop_gen",
        exclude=(),
        runtimes=("redis",),
        services=None,
        strict=False,
        backend=None,
        cache=False,
    )
    decl = ProcessorDecl(
        name="to-node",
        function="app.jobs.handled_by_node",
        module="app.jobs",
        input=TypeRef(annotation="dict[str, object]"),
        output=TypeRef(annotation="dict[str, object]"),
        is_async=True,
        location=Location(path="src/app/jobs.py", line=1, column=1),
        options=ProcessorOptions(retry_options=RetryOptions(attempts=4, backoff="fixed", delay=10)),
    )
    result = generate(config, scan=ScanResult(processors=(decl,)))
    assert not result.has_errors, result.diagnostics
    for path, text in result.files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(text)
    sys.path.insert(0, str(root / "src"))
    try:
        yield importlib.import_module("interop_gen.client")
    finally:
        sys.path.remove(str(root / "src"))
        for name in [m for m in sys.modules if m.split(".")[0] == "interop_gen"]:
            del sys.modules[name]


def url_for(server: RedisServer, prefix: str) -> str:
    return f"{server.url}?prefix={prefix}"


async def test_node_worker_completes_jobs_from_the_generated_python_client(
    client: ModuleType,
    node_bullmq: NodeBullMQ,
    redis_server: RedisServer,
    connection: str,
    prefix: str,
) -> None:
    backend = RedisBackend(url_for(redis_server, prefix))
    try:
        handles = []
        for n, priority in ((1, 7), (2, 1), (3, 3)):
            handles.append(
                await client.enqueue_to_node(
                    {**PAYLOAD, "n": n}, priority=priority, backend=backend
                )
            )
        delayed = await client.enqueue_to_node({**PAYLOAD, "n": 4}, delay=800, backend=backend)
        assert await delayed.status() == JobState.DELAYED
        seen = await asyncio.to_thread(
            node_bullmq.run, "worker.cjs", connection, prefix, "to-node", "4"
        )
        # Priority 1 first, then 3, then 7; the delayed job not before its delay. (Where it
        # falls among the others depends on how long Node takes to start: once due it is an
        # unprioritised job, which BullMQ serves before prioritised ones.)
        prioritised = [job for job in seen if job["data"]["n"] != 4]
        assert [job["data"]["n"] for job in prioritised] == [2, 3, 1]
        assert [job["priority"] for job in prioritised] == [1, 3, 7]
        delayed_job = next(job for job in seen if job["data"]["n"] == 4)
        assert all(job["data"] == {**PAYLOAD, "n": job["data"]["n"]} for job in seen)
        assert delayed_job["delay"] == 800
        assert delayed_job["processedOn"] - delayed_job["timestamp"] >= 800
        assert {job["attempts"] for job in seen} == {4}  # our retry policy, in BullMQ's opts
        # The Node worker's return value reaches the typed Python handle.
        assert await handles[1].result(timeout=10) == {
            "echoed": {**PAYLOAD, "n": 2},
            "by": "node",
        }
    finally:
        await backend.close()


async def test_python_worker_completes_jobs_a_node_producer_added(
    node_bullmq: NodeBullMQ, redis_server: RedisServer, connection: str, prefix: str
) -> None:
    backend = RedisBackend(url_for(redis_server, prefix))
    seen: list[dict[str, Any]] = []

    async def handle(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("fail_first") and ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        seen.append(data)
        await ctx.progress.update(processed=1, total=1)
        return {"total": sum(line["qty"] * line["price"] for line in data["lines"])}

    jobs = [
        {"data": {**PAYLOAD, "n": 1}, "opts": {"priority": 2}},
        {"data": {**PAYLOAD, "n": 2, "fail_first": True}, "opts": {"attempts": 3}},
        {"data": {**PAYLOAD, "n": 3}, "opts": {"jobId": "from-node-3", "delay": 200}},
    ]
    producer = node_bullmq.start("producer.cjs", connection, prefix, "from-node", json.dumps(jobs))
    stop = asyncio.Event()
    processor = Processor.from_function(
        "from-node", handle, ProcessorOptions(retry_options=RetryOptions(attempts=3))
    )
    worker = asyncio.ensure_future(
        backend.run_worker(WorkerOptions(processors=[processor], stop=stop))
    )
    try:
        out, err = await asyncio.wait_for(asyncio.to_thread(producer.communicate), 90)
        assert producer.returncode == 0, err
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
        await backend.close()
    results = json.loads(out.strip().splitlines()[-1])
    assert [r["state"] for r in results] == ["completed"] * 3
    assert results[0]["returnvalue"] == {"total": 2 * 9.99 + 0.5}
    assert results[1]["attemptsMade"] == 2  # one failure, retried by our worker
    assert results[2]["id"] == "from-node-3"
    assert results[0]["progress"] == {"processed": 1, "total": 1, "percentage": 100.0}
    assert sorted(data["n"] for data in seen) == [1, 2, 3]
    assert all(
        {k: v for k, v in d.items() if k not in ("n", "fail_first")} == PAYLOAD for d in seen
    )


def test_node_scripts_are_where_the_fixture_expects(node_bullmq: NodeBullMQ) -> None:
    modules = Path(node_bullmq.prefix_dir) / "node_modules"
    assert json.loads((modules / "bullmq" / "package.json").read_text())["version"] == "6.7.0"
    assert (modules / "ioredis").is_dir()
