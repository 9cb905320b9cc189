"""The web monitor reads a Redis backend too: counts, a queue's jobs by state (`list_jobs` over
BullMQ's lists and sets) and a dead-lettered job with its error."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "observability"))

from monitor_server import serving
from pikku_queue.adapters import connect
from pikku_queue.backend import WorkerOptions
from pikkugen.web_monitor.config import MonitorConfig
from support import QUEUES, enqueue_known, processors

pytestmark = pytest.mark.redis


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_the_monitor_on_redis(redis_server: Any) -> None:
    url = f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:10]}"

    async def prepare() -> None:
        backend = connect(url)
        await enqueue_known(backend)
        await backend.run_worker(WorkerOptions(processors=processors("redis-mon"), burst=True))
        await backend.close()

    asyncio.run(prepare())
    dlqs = {"obs-ok": None, "obs-doomed": "obs-dlq", "obs-lost": None}
    with serving(MonitorConfig(url=url, queues=QUEUES, dead_letter_queues=dlqs)) as base:
        stats = {q["queue"]: q for q in _get(base + "api/stats")["queues"]}
        assert stats["obs-ok"]["counts"]["completed"] == 6
        assert stats["obs-doomed"]["counts"]["dead_lettered"] == 2
        assert stats["obs-lost"]["counts"]["failed"] == 1
        listed = _get(base + "api/jobs?queue=obs-ok&state=completed")
        assert [j["state"] for j in listed["jobs"]] == ["completed"] * 6
        assert listed["next_cursor"] is None
        [lost] = _get(base + "api/jobs?queue=obs-lost&state=failed")["jobs"]
        detail = _get(base + f"api/job?queue=obs-lost&id={lost['id']}")
        assert detail["state"] == "failed" and detail["payload"] == {"n": 0}
        assert detail["error"]["type"] == "NonRetryableError"
        assert len(_get(base + "api/dlq?queue=obs-dlq")["records"]) == 2
        dead = _get(base + "api/jobs?queue=obs-doomed&state=dead_lettered")["jobs"]
        assert len(dead) == 2 and all(j["error"]["type"] == "NonRetryableError" for j in dead)
