"""The web monitor's actions on Redis, in Chromium, each one then read back by Node BullMQ
(6.7, `ops.cjs`): the monitor uses BullMQ's own operations, so Node (and Bull Board) see the
state the page shows. Screenshots of the Redis views go with the SQLite ones."""

from __future__ import annotations

import asyncio
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "observability"))

from browser import VIEWPORT, Monitor, artifacts, browser
from monitor_server import serving
from node_bullmq import NodeBullMQ
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.errors import NonRetryableError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pikkugen.web_monitor.config import MonitorConfig
from redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

__all__ = ["artifacts", "browser"]  # fixtures


def _processors(card_works: bool) -> list[Processor]:
    async def ship(data: dict[str, int]) -> dict[str, int]:
        if data["n"] == 20 and not card_works:
            raise NonRetryableError("order 20 cannot ship")
        return {"shipped": data["n"]}

    async def pay(data: dict[str, int]) -> str:
        if not card_works:
            raise NonRetryableError(f"card of order {data['n']} declined")
        return "paid"

    return [
        Processor.from_function("orders", ship),
        Processor.from_function(
            "payments", pay, ProcessorOptions(dead_letter_queue="payments-dlq")
        ),
    ]


def _on(url: str, step: Any) -> Any:
    async def run() -> Any:
        backend = RedisBackend(url)
        try:
            return await asyncio.wait_for(step(backend), 60)
        finally:
            await backend.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=90)


def _burst(url: str, card_works: bool) -> None:
    options = WorkerOptions(processors=_processors(card_works), burst=True)
    _on(url, lambda backend: backend.run_worker(options))


def test_each_action_on_redis_is_what_node_bullmq_sees(
    redis_server: RedisServer,
    node_bullmq: NodeBullMQ,
    connection: str,
    prefix: str,
    artifacts: Path,
    browser: Any,
) -> None:
    url = f"{redis_server.url}?prefix={prefix}"

    async def prepare(backend: RedisBackend) -> None:
        for n in range(60):
            await backend.enqueue(EnqueueRequest("orders", {"n": n}, job_id=f"order/{n}"))
        for n in range(3):
            await backend.enqueue(EnqueueRequest("payments", {"n": n}, job_id=f"pay/{n}"))

    async def later(backend: RedisBackend) -> None:
        await backend.enqueue(EnqueueRequest("orders", {"n": 99}, job_id="w/1"))
        await backend.enqueue(
            EnqueueRequest("orders", {"n": 98}, job_id="later", delay_ms=3_600_000)
        )

    _on(url, prepare)
    _burst(url, card_works=False)
    _on(url, later)

    def node(queue: str, *ops: dict[str, Any]) -> list[Any]:
        return list(node_bullmq.run("ops.cjs", connection, prefix, queue, json.dumps(list(ops))))

    config = MonitorConfig(
        url=url,
        queues=["orders", "payments"],
        dead_letter_queues={"orders": None, "payments": "payments-dlq"},
    )
    with serving(config) as base:
        m = Monitor(browser.new_page(viewport=VIEWPORT), base, artifacts)
        m.open("view=overview")
        m.wait_text('tr[data-queue="orders"] td[data-count="completed"]', "59")
        assert m.count("payments", "dead_lettered") == "3"
        m.page.wait_for_selector("#overview-throughput canvas")
        m.shoot("monitor-redis-overview.png")

        # the completed list pages over BullMQ's sorted set
        m.open("view=queue&queue=orders&state=completed&job=order/7")
        m.wait_text("#jobs-range", "1–50 of 59")
        m.page.click("#jobs-older")
        m.wait_text("#jobs-range", "51–59 of 59")
        m.wait_text("#detail [data-detail]", "order/7")

        # retry: Node finds the job waiting again
        m.open("view=queue&queue=orders&state=failed&job=order/20")
        m.wait_text("#detail [data-detail-state]", "failed")
        m.shoot("monitor-redis-failed.png")
        assert "Retried job order/20" in m.act('[data-action="retry"]', "attempts reset")
        m.wait_text("#detail [data-detail-state]", "waiting")
        [job] = node("orders", {"op": "job", "id": "order/20"})
        assert job["state"] == "waiting" and job["attemptsMade"] == 0

        # promote: Node sees it waiting, not delayed
        m.open("view=queue&queue=orders&state=delayed&job=later")
        m.wait_text("#detail [data-detail-state]", "delayed")
        assert "Promoted job later" in m.act('[data-action="promote"]', "runs now")
        m.wait_text("#detail [data-detail-state]", "waiting")
        [job] = node("orders", {"op": "job", "id": "later"})
        assert job["state"] == "waiting"

        # remove: Node finds no such job
        m.open("view=queue&queue=orders&state=completed&job=order/59")
        m.wait_text("#detail [data-detail]", "order/59")
        assert "Removed job order/59" in m.act('[data-action="remove"]', "deleted for good")
        [job] = node("orders", {"op": "job", "id": "order/59"})
        assert job == {"id": "order/59", "missing": True}

        # pause and resume: BullMQ's own flag, as Node's isPaused() reads it
        m.open("view=queue&queue=orders&state=waiting")
        assert "Paused orders" in m.act("#queue-pause", "take no new ones")
        m.page.wait_for_selector("#queue-paused:not([hidden])")
        assert node("orders", {"op": "paused"}) == [{"paused": True}]
        assert "Resumed orders" in m.act("#queue-resume", "Resume orders")
        m.page.wait_for_selector("#queue-paused", state="hidden")
        assert node("orders", {"op": "paused"}) == [{"paused": False}]

        # clean completed: Node counts none
        assert "Cleaned 58 completed" in m.act("#queue-clean-completed", "every completed")
        m.wait_text('[data-state-tab="completed"] .count', "0")
        [counts] = node("orders", {"op": "counts"})
        assert counts["completed"] == 0 and counts["waiting"] == 3

        # replay every dead letter: each job retried in place, waiting for Node too
        m.open("view=dlq&queue=payments-dlq")
        m.page.wait_for_selector("#dlq tr[data-record]")
        m.page.click("#dlq a[data-open-record]")
        m.wait_text("#record-detail", "card of order")
        m.shoot("monitor-redis-dlq.png")
        assert "Replayed 3 record(s)" in m.act("#dlq-replay-all", "every record")
        m.wait_text("#dlq-note", "No dead letters.")
        states = node("payments", *({"op": "job", "id": f"pay/{n}"} for n in range(3)))
        assert [s["state"] for s in states] == ["waiting"] * 3
        _burst(url, card_works=True)
        states = node("payments", *({"op": "job", "id": f"pay/{n}"} for n in range(3)))
        assert [s["state"] for s in states] == ["completed"] * 3
