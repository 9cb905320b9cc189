"""Faults on real processes: worker processes on two "machines" (separate processes, separate
connections) SIGKILLed again and again during 1,000 jobs, and a PostgreSQL restarted under a
running worker. Every job must complete; none may be lost."""

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
from pg_server import PostgresServer
from pikku_queue.adapters.postgresql.backend import PostgresBackend
from pikku_queue.records import EnqueueRequest

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]

FAULT_WORKER = Path(__file__).with_name("fault_worker.py")
DEADLINE_S = 120


def start_worker(url: str, queue: str, machine: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, str(FAULT_WORKER), url, queue, machine],
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


async def prepare(backend: PostgresBackend, queue: str, count: int, sleep_ms: int) -> None:
    await backend.migrate()
    s = backend.settings.schema
    await backend._run(lambda tx: tx.run(f"CREATE TABLE {s}.ran (n int NOT NULL)"))
    requests = [
        EnqueueRequest(queue=queue, payload={"n": n, "sleep_ms": sleep_ms}) for n in range(count)
    ]
    await backend.enqueue_many(requests)
    assert (await backend.counts(queue)).waiting == count


async def wait_for_completed(backend: PostgresBackend, queue: str, target: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while True:
        try:
            if (await backend.counts(queue)).completed >= target:
                return
        except Exception:  # the server is restarting: ask again
            pass
        if loop.time() > deadline:
            raise AssertionError(f"{await backend.counts(queue)}")
        await asyncio.sleep(0.1)


async def ran(backend: PostgresBackend) -> list[int]:
    s = backend.settings.schema
    rows = await backend._run(lambda tx: tx.rows(f"SELECT n FROM {s}.ran"))
    return [int(n) for (n,) in rows]


async def test_sigkilled_workers_on_two_machines_lose_no_job(postgres_url: str) -> None:
    queue = "killed"
    total = 1000
    backend = PostgresBackend(postgres_url)
    machines = ["machine-a", "machine-b"]
    workers = {}
    try:
        await prepare(backend, queue, total, sleep_ms=500)
        workers = {m: [start_worker(postgres_url, queue, m) for _ in range(2)] for m in machines}
        kills = 0
        for round_, target in enumerate((150, 350, 550, 750)):
            await wait_for_completed(backend, queue, target)
            machine = machines[round_ % 2]
            victim = workers[machine].pop(0)
            victim.kill()  # SIGKILL: no cleanup, its active jobs keep their leases
            victim.wait()
            assert victim.stdout is not None
            victim.stdout.close()
            kills += 1
            assert (await backend.counts(queue)).completed < total
            workers[machine].append(
                await asyncio.to_thread(start_worker, postgres_url, queue, machine)
            )
        await wait_for_completed(backend, queue, total)
        counts = await backend.counts(queue)
        assert (counts.completed, counts.failed, counts.waiting, counts.active) == (total, 0, 0, 0)
        assert kills == 4
        assert set(await ran(backend)) == set(range(total))  # every job ran; some twice
    finally:
        for group in workers.values():
            for worker in group:
                stop_worker(worker)
        await backend.close()


@pytest.fixture
async def own_server() -> AsyncIterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


async def test_worker_survives_a_postgresql_restart(own_server: PostgresServer) -> None:
    queue = "restarted"
    total = 300
    url = f"{own_server.url}?schema=r{uuid.uuid4().hex[:8]}"
    backend = PostgresBackend(url)
    worker = None
    try:
        await prepare(backend, queue, total, sleep_ms=30)
        worker = start_worker(url, queue, "machine-a")
        await wait_for_completed(backend, queue, 60)
        await backend.close()
        await asyncio.to_thread(own_server.restart, 1.0)
        backend = PostgresBackend(url)
        assert (await backend.counts(queue)).completed < total  # the restart was mid-run
        await wait_for_completed(backend, queue, total)
        assert worker.poll() is None  # the same worker process carried on by itself
        counts = await backend.counts(queue)
        assert (counts.completed, counts.failed, counts.waiting, counts.active) == (total, 0, 0, 0)
        assert set(await ran(backend)) == set(range(total))
    finally:
        if worker is not None:
            stop_worker(worker)
        await backend.close()
