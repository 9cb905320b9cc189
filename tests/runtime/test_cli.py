"""`pikkugen worker / enqueue / dlq` as a user runs them: a real subprocess in a project folder
with a `[tool.pikkugen]` config and a generated-style registry, on a real SQLite file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

PIKKUGEN = [str(Path(sys.executable).parent / "pikkugen")]

JOBS = """
from pydantic import BaseModel
from pikku_queue import JobContext, NonRetryableError


class Order(BaseModel):
    id: int


class Receipt(BaseModel):
    order: int


async def charge(ctx: JobContext, data: Order) -> Receipt:
    if data.id < 0:
        raise NonRetryableError("negative order id")
    await ctx.progress.update(processed=1, total=1)
    assert ctx.services == {"db": "fake"}
    return Receipt(order=data.id)


async def slow(ctx: JobContext, data: Order) -> Receipt:
    import asyncio
    await asyncio.sleep(1.0)
    return Receipt(order=data.id)


def create_services() -> dict[str, str]:
    return {"db": "fake"}
"""

REGISTRY = """
from pikku_queue.options import ProcessorOptions
from pikku_queue.registry import QueueEntry, Registry

BACKEND_URL: str | None = None

REGISTRY = Registry(
    [
        QueueEntry(
            name="charge",
            function="shop.jobs.charge",
            options=ProcessorOptions.model_validate(
                {"concurrency": 2, "dead_letter_queue": "charge-dlq"}
            ),
            input="shop.jobs.Order",
            output="shop.jobs.Receipt",
        ),
        QueueEntry(
            name="slow",
            function="shop.jobs.slow",
            options=ProcessorOptions.model_validate({"concurrency": 4}),
        ),
    ],
    services="shop.jobs:create_services",
)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [tool.pikkugen]
            paths = ["src"]
            out = "src/shop/generated"
            backend = "sqlite:///{(tmp_path / "queue.db").as_posix()}"
            """
        )
    )
    package = tmp_path / "src" / "shop"
    (package / "generated").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(JOBS)
    (package / "generated" / "__init__.py").write_text("")
    (package / "generated" / "registry.py").write_text(REGISTRY)
    return tmp_path


def run(project: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PIKKU_QUEUE_URL", None)
    done = subprocess.run(
        [*PIKKUGEN, *args], cwd=project, capture_output=True, text=True, env=env, timeout=120
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_enqueue_worker_and_dead_letter_round_trip(project: Path) -> None:
    good = run(project, "enqueue", "charge", "--data", '{"id": 7}').stdout.strip()
    assert len(good) == 32
    run(project, "enqueue", "charge", "--data", '{"id": -1}', "--job-id", "bad-1")

    worker = run(project, "worker", "--burst", "--queues", "charge")
    assert "worker done: completed=1 retried=0 dead_lettered=1" in worker.stdout
    # Not a terminal: plain stats lines, always printed at the end.
    assert "stats charge: waiting=0 active=0 delayed=0 completed=1 failed=0" in worker.stdout
    assert "dead_lettered=1" in worker.stdout

    listed = run(project, "dlq", "list", "charge", "--json").stdout.strip().splitlines()
    [record] = [json.loads(line) for line in listed]
    assert record["job_id"] == "bad-1"
    assert record["payload"] == {"id": -1}
    assert record["reason"] == "non_retryable"
    assert record["error"]["message"] == "negative order id"

    replayed = run(project, "dlq", "replay", "charge", "--id", record["id"])
    assert "replayed 1 job(s) from charge-dlq" in replayed.stdout
    assert run(project, "dlq", "list", "charge-dlq").stdout.strip() == ""


def test_enqueue_validates_against_the_processor_input(project: Path) -> None:
    bad = run(project, "enqueue", "charge", "--data", '{"id": "seven"}', ok=False)
    assert bad.returncode == 2
    assert "invalid payload for queue 'charge'" in bad.stderr
    unknown = run(project, "enqueue", "nope", "--data", "{}", ok=False)
    assert unknown.returncode == 2
    assert "no processor serves queue 'nope'; known: charge, slow" in unknown.stderr
    not_json = run(project, "enqueue", "charge", "--data", "{id", ok=False)
    assert "--data is not valid JSON" in not_json.stderr


def test_sigterm_lets_active_jobs_finish(project: Path) -> None:
    for n in range(4):
        run(project, "enqueue", "slow", "--data", json.dumps({"id": n}))
    env = {**os.environ}
    env.pop("PIKKU_QUEUE_URL", None)
    proc = subprocess.Popen(
        [*PIKKUGEN, "worker", "--queues", "slow"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    # Wait until the worker has leased all four jobs (each sleeps 1 s), reading the file.
    deadline = time.monotonic() + 60
    active = 0
    while active < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        with contextlib.closing(sqlite3.connect(project / "queue.db")) as db:
            active = db.execute("SELECT count(*) FROM jobs WHERE state = 'active'").fetchone()[0]
    assert active == 4
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "finishing active jobs" in out
    assert "worker done: completed=4" in out


def test_user_code_and_backend_errors_are_one_line_not_a_traceback(project: Path) -> None:
    # A processor module that raises at import: nothing is touched, exit 2, the cause named.
    (project / "src" / "shop" / "broken.py").write_text('raise RuntimeError("no config")\n')
    registry = project / "src" / "shop" / "generated" / "registry.py"
    registry.write_text(
        REGISTRY.replace(
            "    ],\n    services=",
            '    QueueEntry(name="broken", function="shop.broken.f", options=ProcessorOptions()),\n'
            "    ],\n    services=",
        )
    )
    for args in (("worker", "--burst", "--queues", "broken"), ("enqueue", "broken")):
        done = run(project, *args, ok=False)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert "RuntimeError: no config" in done.stderr
        assert "broken.py:1" in done.stderr
    # A backend that cannot be reached.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the socket is closed
    done = run(
        project, "worker", "--burst", "--queues", "charge",
        "--backend", f"redis://127.0.0.1:{port}/0", ok=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot connect to Redis" in done.stderr
    for args in (("dlq", "list", "charge"), ("dlq", "replay", "charge")):
        done = run(project, *args, "--backend", f"redis://127.0.0.1:{port}/0", ok=False)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert "cannot connect to Redis" in done.stderr


HANG = """
import asyncio


async def hang(data: dict) -> None:
    await asyncio.sleep(3600)
"""


def test_a_second_signal_skips_the_grace_period_but_releases_the_jobs(project: Path) -> None:
    # max_stalled_count=0: a job left leased by the exit would come back as a stall and be
    # dead-lettered at once. Released, it is simply waiting again, its attempt not counted.
    (project / "src" / "shop" / "hang.py").write_text(HANG)
    registry = project / "src" / "shop" / "generated" / "registry.py"
    registry.write_text(
        REGISTRY.replace(
            "    ],\n    services=",
            '    QueueEntry(name="hang", function="shop.hang.hang", options=ProcessorOptions('
            "concurrency=2, max_stalled_count=0)),\n    ],\n    services=",
        )
    )
    for n in range(2):
        run(project, "enqueue", "hang", "--data", json.dumps({"n": n}))
    env = {**os.environ}
    env.pop("PIKKU_QUEUE_URL", None)
    proc = subprocess.Popen(
        [*PIKKUGEN, "worker", "--queues", "hang", "--grace", "3600", "--lease-ms", "600000"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout or ():
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def states() -> list[tuple[str, int, int]]:
        with contextlib.closing(sqlite3.connect(project / "queue.db")) as db:
            query = "SELECT state, attempts, stalls FROM jobs WHERE queue = 'hang'"
            return sorted(db.execute(query).fetchall())

    def wait_for(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)

    try:
        wait_for(lambda: [s for s, _, _ in states()] == ["active", "active"])
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: any("finishing active jobs" in line for line in lines))
        proc.send_signal(signal.SIGINT)  # the grace period (an hour) is skipped
        proc.wait(timeout=60)
    finally:
        proc.kill()
    reader.join(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()
    out = "".join(lines)
    assert proc.returncode == 130, out
    assert "worker stopped at once" in out and "Traceback" not in out
    assert states() == [("waiting", 0, 0), ("waiting", 0, 0)]


def test_enqueue_refuses_ids_and_priorities_bullmq_would_refuse(project: Path) -> None:
    """`pikkugen enqueue` validates through the same EnqueueOptions as the typed client."""
    for flags, why in (
        (["--job-id", "2"], "a job_id cannot be an integer ('2')"),
        (["--job-id", "pikku:dead"], "a job_id cannot contain ':'"),
        (["--priority", "3000000"], "priority: Input should be less than or equal to 2097151"),
        (["--priority", "0"], "priority: Input should be greater than or equal to 1"),
    ):
        refused = run(project, "enqueue", "charge", "--data", '{"id": 1}', *flags, ok=False)
        assert refused.returncode != 0
        assert why in refused.stdout + refused.stderr
    assert (
        "order-123"
        in run(project, "enqueue", "charge", "--job-id", "7", ok=False).stderr
        + run(project, "enqueue", "charge", "--job-id", "7", ok=False).stdout
    )
    kept = run(project, "enqueue", "charge", "--data", '{"id": 1}', "--job-id", "order-1")
    assert kept.stdout.strip() == "order-1"


def test_cancel_removes_a_waiting_job_and_says_why_when_it_cannot(project: Path) -> None:
    job = run(project, "enqueue", "charge", "--data", '{"id": 7}', "--job-id", "order-7")
    assert job.stdout.strip() == "order-7"
    kept = run(project, "enqueue", "charge", "--data", '{"id": 8}').stdout.strip()
    removed = run(project, "cancel", "charge", "order-7")
    assert "cancelled job order-7: removed from queue 'charge'" in removed.stdout
    again = run(project, "cancel", "charge", "order-7", ok=False)
    assert again.returncode == 1
    assert "no job 'order-7' in queue 'charge'" in again.stderr
    unknown = run(project, "cancel", "chrge", "order-7", ok=False)
    assert unknown.returncode == 2
    assert "no processor serves queue 'chrge'" in unknown.stderr
    assert "charge" in unknown.stderr.split("'chrge'", 1)[1]
    run(project, "worker", "--burst", "--queues", "charge")
    db = sqlite3.connect(project / "queue.db")
    states = dict(db.execute("SELECT id, state FROM jobs WHERE queue = 'charge'").fetchall())
    db.close()
    assert states == {kept: "completed"}  # the cancelled job never ran
    ended = run(project, "cancel", "charge", kept, ok=False)
    assert ended.returncode == 1
    assert f"job {kept} of queue 'charge'" in ended.stderr
    assert "already ended (it is completed); nothing cancelled" in ended.stderr


def test_cancel_stops_running_jobs_held_by_other_worker_processes(project: Path) -> None:
    """Two worker processes on one SQLite file each run a job that would hang for an hour; a
    third process (`pikkugen cancel`) stores the requests in the file, the workers holding the
    leases see them and stop the jobs: both end cancelled, not retried, and the burst ends."""
    (project / "src" / "shop" / "hang.py").write_text(HANG)
    registry = project / "src" / "shop" / "generated" / "registry.py"
    registry.write_text(
        REGISTRY.replace(
            "    ],\n    services=",
            '    QueueEntry(name="hang", function="shop.hang.hang", options=ProcessorOptions('
            "concurrency=1, retry_options={'attempts': 3})),\n    ],\n    services=",
        )
    )
    ids = [
        run(project, "enqueue", "hang", "--data", json.dumps({"n": n})).stdout.strip()
        for n in range(2)
    ]
    env = {**os.environ}
    env.pop("PIKKU_QUEUE_URL", None)
    proc = subprocess.Popen(
        [*PIKKUGEN, "worker", "--burst", "--processes", "2", "--queues", "hang"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip

    def states() -> list[tuple[str, str | None, int]]:
        with contextlib.closing(sqlite3.connect(project / "queue.db")) as db:
            query = "SELECT state, worker, attempts FROM jobs WHERE queue = 'hang'"
            return sorted(db.execute(query).fetchall())

    try:
        deadline = time.monotonic() + 60
        while [s for s, _, _ in states()] != ["active", "active"] and proc.poll() is None:
            assert time.monotonic() < deadline, states()
            time.sleep(0.05)
        assert len({worker for _, worker, _ in states()}) == 2  # one job in each process
        for job_id in ids:
            done = run(project, "cancel", "hang", job_id)
            assert "it is running; its worker stops it" in done.stdout
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert states() == [("cancelled", None, 1), ("cancelled", None, 1)]
    assert out.count("cancelled=1") == 2, out
