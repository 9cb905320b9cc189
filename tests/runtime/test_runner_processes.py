"""`--processes N` of the one runner (`python -m pikku_queue worker`) and of `pikkugen worker`:
N child runners on one real SQLite file, the signal rule forwarded to them, the worst child
exit status."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from pikku_queue.adapters import connect
from pikku_queue.monitor import QueueMonitor
from pikku_queue.records import EnqueueRequest, QueueCounts
from redis_server import RedisServer
from test_cli import project, run
from test_runner import python_m

__all__ = ["project"]  # the fixture, shared with test_cli

JOBS = 200


def url_of(project: Path) -> str:
    return f"sqlite:///{(project / 'queue.db').as_posix()}"


def enqueue(url: str, queue: str, count: int) -> None:
    async def send() -> None:
        backend = connect(url)
        try:
            for start in range(0, count, 50):
                requests = [
                    EnqueueRequest(queue=queue, payload={"id": i}, job_id=f"job-{i}")
                    for i in range(start, min(start + 50, count))
                ]
                await backend.enqueue_many(requests)  # type: ignore[attr-defined]
        finally:
            await backend.close()

    asyncio.run(send())


def rows(project: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(project / "queue.db") as db:
        return list(db.execute(sql))


def completed_per_process(stdout: str) -> list[int]:
    """The `completed=` of each child's `[i] worker done:` line."""
    return [
        int(line.split("completed=")[1].split()[0])
        for line in stdout.splitlines()
        if line.startswith("[") and "] worker done: completed=" in line
    ]


def test_two_burst_processes_complete_every_job_once(project: Path) -> None:
    url = url_of(project)
    enqueue(url, "charge", JOBS)
    done = python_m(
        project, "worker", "--registry", "shop.generated", "--backend", url,
        "--queues", "charge", "--processes", "2", "--burst", "--lease-ms", "30000",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 worker processes on" in done.stdout
    assert "worker processes done: exit statuses 0 0" in done.stdout
    # Every job ran exactly once: the children's own counts add up, each row finished once.
    per_process = completed_per_process(done.stdout)
    assert len(per_process) == 2 and sum(per_process) == JOBS, done.stdout
    assert rows(project, "SELECT state, attempts, COUNT(*) FROM jobs GROUP BY 1, 2") == [
        ("completed", 1, JOBS)
    ]

    async def stats() -> tuple[int, int, int]:
        backend = connect(url)
        try:
            [charge] = await QueueMonitor(queues=["charge"], backend=backend).all_stats()
        finally:
            await backend.close()
        return charge.completed, charge.waiting, charge.active

    assert asyncio.run(stats()) == (JOBS, 0, 0)


def test_pikkugen_worker_processes_prefixes_each_process(project: Path) -> None:
    enqueue(url_of(project), "charge", 20)
    done = run(project, "worker", "--burst", "--queues", "charge", "--processes", "2")
    assert "worker processes done: exit statuses 0 0" in done.stdout
    assert sum(completed_per_process(done.stdout)) == 20, done.stdout
    assert {line[:3] for line in done.stdout.splitlines() if "worker on sqlite:" in line} == {
        "[0]",
        "[1]",
    }


def test_a_bad_process_count_is_one_error_and_exit_2(project: Path) -> None:
    bad = python_m(project, "worker", "--registry", "shop.generated", "--processes", "0")
    assert bad.returncode == 2
    assert "argument --processes: must be at least 1" in bad.stderr
    assert "Traceback" not in bad.stderr
    typer_bad = run(project, "worker", "--processes", "0", ok=False)
    assert typer_bad.returncode == 2 and "--processes" in typer_bad.stderr


def start(project: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    env.pop("PIKKU_QUEUE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pikku_queue", "worker", "--registry", "shop.generated", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def active_ids(project: Path, want: int, worker: subprocess.Popen[str]) -> list[str]:
    """Wait (generously) until `want` jobs are active, one per child; their ids."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert worker.poll() is None, worker.communicate()
        found = rows(project, "SELECT id FROM jobs WHERE state = 'active'")
        workers = rows(project, "SELECT DISTINCT worker FROM jobs WHERE state = 'active'")
        if len(found) >= want and len(workers) >= want:
            return sorted(str(r[0]) for r in found)
        time.sleep(0.1)
    worker.kill()
    raise AssertionError(f"never {want} active jobs: {worker.communicate()}")


def long_jobs(project: Path) -> None:
    """The fixture's `slow` processor, slow enough to be caught running."""
    jobs = project / "src" / "shop" / "jobs.py"
    jobs.write_text(jobs.read_text().replace("asyncio.sleep(1.0)", "asyncio.sleep(4.0)"))


@pytest.mark.slow
def test_one_sigterm_lets_both_processes_finish_their_jobs(project: Path) -> None:
    long_jobs(project)
    enqueue(url_of(project), "slow", 6)
    worker = start(
        project, "--backend", url_of(project), "--queues", "slow", "--concurrency", "1",
        "--processes", "2", "--grace", "120",
    )  # fmt: skip
    running = active_ids(project, 2, worker)
    worker.send_signal(signal.SIGTERM)  # the parent only: it forwards to its children
    stdout, stderr = worker.communicate(timeout=180)
    assert worker.returncode == 0, stdout + stderr
    assert "worker processes done: exit statuses 0 0" in stdout
    assert len(completed_per_process(stdout)) == 2, stdout
    finished = dict(rows(project, "SELECT id, state FROM jobs"))
    assert all(finished[job] == "completed" for job in running), finished
    assert "active" not in finished.values()


def test_a_second_sigterm_gives_the_jobs_back_and_exits_130(project: Path) -> None:
    long_jobs(project)
    enqueue(url_of(project), "slow", 4)
    worker = start(
        project, "--backend", url_of(project), "--queues", "slow", "--concurrency", "1",
        "--processes", "2", "--grace", "120",
    )  # fmt: skip
    running = active_ids(project, 2, worker)
    worker.send_signal(signal.SIGTERM)
    # The second signal once both children have taken the first (each logs it).
    deadline = time.monotonic() + 60
    assert worker.stderr is not None
    seen = 0
    while seen < 2 and time.monotonic() < deadline:
        line = worker.stderr.readline()
        seen += "finishing active jobs, then stopping" in line
    worker.send_signal(signal.SIGTERM)
    stdout, stderr = worker.communicate(timeout=180)
    assert worker.returncode == 130, stdout + stderr
    assert "worker processes done: exit statuses 130 130" in stdout
    states = dict(rows(project, "SELECT id, state FROM jobs"))
    assert "active" not in states.values()
    assert all(states[job] in {"waiting", "completed"} for job in running), states


def _two_free_ports() -> int:
    """A loopback port P with P+1 free too (checked, then released)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise AssertionError("no two consecutive free ports")


def test_each_process_serves_metrics_on_port_plus_its_index(project: Path) -> None:
    pytest.importorskip("prometheus_client")
    port = _two_free_ports()
    done = python_m(
        project, "worker", "--registry", "shop.generated", "--backend", url_of(project),
        "--queues", "charge", "--burst", "--processes", "2", "--metrics-port", str(port),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    for index in (0, 1):
        served = f"metrics on http://127.0.0.1:{port + index}/metrics"
        assert any(line.startswith(f"[{index}] ") and served in line for line in lines), lines


def counts_of(url: str, queue: str) -> QueueCounts:
    async def read() -> QueueCounts:
        backend = connect(url)
        try:
            return await backend.counts(queue)
        finally:
            await backend.close()

    return asyncio.run(read())


def test_two_burst_processes_on_redis(project: Path, redis_server: RedisServer) -> None:
    """Each child opens its own Redis connection; BullMQ's locks share the jobs out."""
    url = f"{redis_server.url}?prefix=procs{uuid.uuid4().hex[:8]}"
    enqueue(url, "charge", 100)
    done = python_m(
        project, "worker", "--registry", "shop.generated", "--backend", url,
        "--queues", "charge", "--processes", "2", "--burst",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert sum(completed_per_process(done.stdout)) == 100, done.stdout
    counts = counts_of(url, "charge")
    assert (counts.completed, counts.waiting, counts.active) == (100, 0, 0)


def test_the_worst_child_status_is_the_exit_status(project: Path) -> None:
    """Both children refuse the backend at start: each one `error:` line, the parent exits 2."""
    done = python_m(
        project, "worker", "--registry", "shop.generated", "--backend", "nope://x",
        "--processes", "2", "--burst",
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "worker processes done: exit statuses 2 2" in done.stdout
    failed = [line for line in done.stderr.splitlines() if "error: unknown backend URL" in line]
    assert sorted(line[:4] for line in failed) == ["[0] ", "[1] "], done.stderr
