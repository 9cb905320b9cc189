"""Faults on real processes: a worker SIGKILLed again and again, a Redis restarted under a
running worker. Every job must complete; none may be lost. (An invalid payload added by raw
bullmq and a password-protected Redis are covered in test_redis_backend.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pikku_queue.adapters.redis.backend import RedisBackend
from redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

FAULT_WORKER = Path(__file__).with_name("fault_worker.py")
DEADLINE_S = 60


def start_worker(url: str, queue: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, str(FAULT_WORKER), url, queue],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    return process


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


async def enqueue_all(backend: RedisBackend, queue: str, count: int, sleep_ms: int) -> None:
    client = await backend.client()
    bull = await backend.queue(queue)
    jobs = [{"name": queue, "data": {"n": n, "sleep_ms": sleep_ms}} for n in range(count)]
    for start in range(0, count, 500):
        await bull.addBulk(jobs[start : start + 500])
    assert await client.llen(backend.key(queue, "wait")) == count


async def completed(backend: RedisBackend, queue: str) -> int:
    return (await backend.counts(queue)).completed


async def wait_for_completed(backend: RedisBackend, queue: str, target: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while await completed(backend, queue) < target:
        if loop.time() > deadline:
            client = await backend.client()
            failed = await client.zrange(backend.key(queue, "failed"), 0, 5)
            reasons = [await client.hget(backend.key(queue, j), "failedReason") for j in failed]
            raise AssertionError(f"{await backend.counts(queue)} {reasons}")
        await asyncio.sleep(0.1)


async def ran(backend: RedisBackend, queue: str) -> list[int]:
    client = await backend.client()
    return [int(n) for n in await client.lrange(backend.key(queue, "done"), 0, -1)]


@pytest.fixture
async def own_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.close()


async def test_sigkilled_worker_loses_no_job(redis_url: str) -> None:
    queue = "killed"
    total = 1000
    backend = RedisBackend(redis_url)
    try:
        await enqueue_all(backend, queue, total, sleep_ms=20)
        kills = 0
        worker = start_worker(redis_url, queue)
        try:
            for target in (150, 350, 550, 750):
                await wait_for_completed(backend, queue, target)
                worker.kill()  # SIGKILL: no cleanup, its active jobs keep their locks
                worker.wait()
                kills += 1
                assert (await backend.counts(queue)).completed < total
                worker.stdout.close()  # type: ignore[union-attr]
                worker = start_worker(redis_url, queue)
            await wait_for_completed(backend, queue, total)
        finally:
            stop_worker(worker)
        counts = await backend.counts(queue)
        assert (counts.completed, counts.failed, counts.waiting, counts.active) == (total, 0, 0, 0)
        assert kills == 4
        done = await ran(backend, queue)
        assert set(done) == set(range(total))  # every job ran; some twice (at-least-once)
    finally:
        await backend.close()


async def test_worker_survives_a_redis_restart(own_server: RedisServer) -> None:
    queue = "restarted"
    total = 300
    url = f"{own_server.url}?prefix=r{uuid.uuid4().hex[:8]}"
    backend = RedisBackend(url)
    worker = None
    try:
        await enqueue_all(backend, queue, total, sleep_ms=30)
        await backend.close()
        worker = start_worker(url, queue)
        await wait_for_completed(backend, queue, 60)
        await backend.close()
        await asyncio.to_thread(own_server.restart, 1.0)
        done_at_restart = await completed(backend, queue)
        assert done_at_restart < total  # the restart happened mid-run
        await wait_for_completed(backend, queue, total)
        assert worker.poll() is None  # the same worker process carried on by itself
        counts = await backend.counts(queue)
        assert (counts.completed, counts.failed, counts.waiting, counts.active) == (total, 0, 0, 0)
        assert set(await ran(backend, queue)) == set(range(total))
    finally:
        if worker is not None:
            stop_worker(worker)
        await backend.close()
