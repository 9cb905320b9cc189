"""The monitor's protocols on PostgreSQL beyond the conformance scenarios: pages merged across
priorities, deep pages of finished jobs, cursors it never gave, a pause shared by another
process's backend, and the web monitor's actions over HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pikku_queue.adapters.postgresql.backend import PostgresBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.errors import NonRetryableError
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, JobState

pytestmark = pytest.mark.postgresql


async def _pages(backend: PostgresBackend, queue: str, state: JobState, limit: int) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(1000):
        page = await backend.list_jobs(queue, state, limit, cursor)
        assert len(page.jobs) <= limit
        assert all(job.state is state for job in page.jobs), page.jobs
        ids += [job.id for job in page.jobs]
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("the pages never ended")


async def test_waiting_jobs_of_several_priorities_are_listed_newest_first(
    backend: PostgresBackend,
) -> None:
    ids = [f"j{n:02d}" for n in range(23)]
    priorities = [None, 1, 7, 3, 2_097_151]
    requests = [
        EnqueueRequest("q", {"n": n}, job_id=job_id, priority=priorities[n % len(priorities)])
        for n, job_id in enumerate(ids)
    ]
    for request in requests[:10]:  # one statement each, and one of many: same order
        await backend.enqueue(request)
    await backend.enqueue_many(requests[10:])
    await backend.enqueue(EnqueueRequest("q", {"n": -1}, job_id="later", delay_ms=600_000))
    for limit in (1, 4, 50):
        assert await _pages(backend, "q", JobState.WAITING, limit) == ids[::-1]
    assert await _pages(backend, "q", JobState.DELAYED, 2) == ["later"]
    assert await _pages(backend, "other", JobState.WAITING, 2) == []


async def test_finished_jobs_are_listed_newest_finish_first_over_many_pages(
    backend: PostgresBackend,
) -> None:
    async def run(data: dict[str, Any]) -> None:
        if data["n"] % 3 == 0:
            raise NonRetryableError("no")

    await backend.enqueue_many([EnqueueRequest("f", {"n": n}, job_id=f"f{n}") for n in range(30)])
    worker = WorkerOptions(processors=[Processor.from_function("f", run)], burst=True)
    await backend.run_worker(worker)
    completed = await _pages(backend, "f", JobState.COMPLETED, 3)
    failed = await _pages(backend, "f", JobState.FAILED, 4)
    assert sorted(completed) == sorted(f"f{n}" for n in range(30) if n % 3)
    assert sorted(failed) == sorted(f"f{n}" for n in range(0, 30, 3))
    s = backend.settings.schema
    rows = await backend._run(
        lambda tx: tx.rows(
            f"SELECT id FROM {s}.job WHERE name = 'f' AND state = 'completed'"
            " ORDER BY completed_on DESC, seq DESC"
        )
    )
    assert completed == [r[0] for r in rows]


@pytest.mark.parametrize("state", [JobState.WAITING, JobState.COMPLETED, JobState.ACTIVE])
@pytest.mark.parametrize("cursor", ["", "abc", "1|", "|5", "x|y", "x|5", "1|2", "9" * 30])
async def test_a_cursor_it_never_gave_is_a_value_error(
    backend: PostgresBackend, state: JobState, cursor: str
) -> None:
    with pytest.raises(ValueError, match="not a cursor"):
        await backend.list_jobs("q", state, 5, cursor)


async def test_a_pause_holds_every_process_until_resumed(postgres_url: str) -> None:
    """Two backends stand for two processes: one pauses, the other's workers take nothing,
    and a resume wakes its idle worker through LISTEN."""
    ours, theirs = PostgresBackend(postgres_url), PostgresBackend(postgres_url)
    ran: list[int] = []

    async def run(data: dict[str, Any]) -> None:
        ran.append(data["n"])

    try:
        await ours.pause_queue("p")
        assert await theirs.is_paused("p")
        await ours.enqueue(EnqueueRequest("p", {"n": 1}))
        assert await theirs.reserve("p", 10, 30_000, "w") == []
        assert await theirs.pending_count("p") == 0
        options = WorkerOptions(processors=[Processor.from_function("p", run)])
        worker = asyncio.create_task(theirs.run_worker(options))
        await asyncio.sleep(0.5)
        assert ran == []
        await ours.resume_queue("p")
        for _ in range(200):
            if ran:
                break
            await asyncio.sleep(0.05)
        assert ran == [1]
        options.stop.set()
        await asyncio.wait_for(worker, 30)
        await ours.pause_queue("p")
        await ours.pause_queue("p")  # twice is once
        await ours.resume_queue("p")
        assert not await theirs.is_paused("p")
    finally:
        await ours.close()
        await theirs.close()


async def test_clean_honours_the_grace_period_and_chunks(backend: PostgresBackend) -> None:
    async def run(data: dict[str, Any]) -> None:
        return None

    await backend.enqueue_many([EnqueueRequest("c", {"n": n}) for n in range(12)])
    await backend.run_worker(
        WorkerOptions(processors=[Processor.from_function("c", run)], burst=True)
    )
    assert await backend.clean_jobs("c", JobState.COMPLETED, grace_ms=3_600_000) == 0
    assert await backend.clean_jobs("c", JobState.FAILED) == 0
    assert await backend.clean_jobs("c", JobState.COMPLETED) == 12
    assert (await backend.counts("c")).completed == 0


def _call(url: str, body: Any = None, csrf: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if csrf is not None:
        headers["x-csrf-token"] = csrf
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_web_monitor_acts_on_postgresql(postgres_url: str) -> None:
    pytest.importorskip("starlette")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "observability"))
    from monitor_server import serving
    from pikkugen.web_monitor.config import MonitorConfig

    async def prepare() -> None:
        backend = PostgresBackend(postgres_url)

        async def run(data: dict[str, Any]) -> None:
            if data["n"] == 0:
                raise NonRetryableError("broken")

        await backend.enqueue_many([EnqueueRequest("m", {"n": n}, job_id=f"m{n}") for n in (0, 1)])
        await backend.run_worker(
            WorkerOptions(processors=[Processor.from_function("m", run)], burst=True)
        )
        await backend.enqueue(EnqueueRequest("m", {"n": 2}, job_id="later", delay_ms=600_000))
        await backend.close()

    asyncio.run(prepare())
    config = MonitorConfig(url=postgres_url, queues=["m"], dead_letter_queues={"m": None})
    with serving(config) as base:
        stats = _call(base + "api/stats")
        assert {"list_jobs", "retry_job", "pause_queue", "clean_jobs"} <= set(stats["features"])
        [failed] = _call(base + "api/jobs?queue=m&state=failed")["jobs"]
        assert failed["id"] == "m0"
        act = base + "api/actions/"
        assert _call(act + "retry", {"queue": "m", "id": "m0"}, config.csrf)["ok"]
        assert [j["id"] for j in _call(base + "api/jobs?queue=m&state=waiting")["jobs"]] == ["m0"]
        assert _call(act + "promote", {"queue": "m", "id": "later"}, config.csrf)["ok"]
        assert not _call(act + "promote", {"queue": "m", "id": "later"}, config.csrf)["ok"]
        assert _call(act + "remove", {"queue": "m", "id": "later"}, config.csrf)["ok"]
        assert _call(act + "pause", {"queue": "m"}, config.csrf)["ok"]
        assert _call(act + "resume", {"queue": "m"}, config.csrf)["ok"]
        cleaned = _call(act + "clean", {"queue": "m", "state": "completed"}, config.csrf)
        assert cleaned["ok"] and "Cleaned 1 completed" in cleaned["message"]
