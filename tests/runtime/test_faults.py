"""Faults on the SQLite backend with real processes: SIGKILLed workers lose nothing, and rows
written behind pikku_queue's back dead-letter without stopping the worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, JobState
from pydantic import BaseModel

WORKER = """
import asyncio, os, random, sys
from pydantic import BaseModel
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.engine import Processor
from pikku_queue.options import ProcessorOptions

DB, LOG = sys.argv[1], sys.argv[2]


class Job(BaseModel):
    n: int


async def work(data: Job) -> int:
    await asyncio.sleep(random.uniform(0.002, 0.02))
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{data.n}\\n".encode())
    finally:
        os.close(fd)
    return data.n


async def main() -> None:
    backend = SqliteBackend(DB)
    options = ProcessorOptions(concurrency=20, max_stalled_count=1000)
    processor = Processor.from_function("faults", work, options)
    report = await backend.run_worker(
        WorkerOptions(processors=[processor], burst=True, lease_ms=400)
    )
    await backend.close()
    print("report", report, flush=True)


asyncio.run(main())
"""

JOBS = 1000


def _runs(log: Path) -> int:
    try:
        return log.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _states(db: Path) -> Counter[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return Counter(
            dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        )


@pytest.mark.slow
def test_sigkilled_workers_lose_no_job(tmp_path: Path) -> None:
    db, log, script = tmp_path / "queue.db", tmp_path / "runs.log", tmp_path / "worker.py"
    script.write_text(WORKER)

    async def fill() -> None:
        backend = SqliteBackend(db)
        await backend.enqueue_many(
            [EnqueueRequest(queue="faults", payload={"n": n}) for n in range(JOBS)]
        )
        await backend.close()

    asyncio.run(fill())
    command = [sys.executable, str(script), str(db), str(log)]
    kills = 0
    # Kill each worker mid-run, once the jobs (across all runs so far) pass a threshold.
    for threshold in (150, 350, 550, 750):
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while _runs(log) < threshold and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if worker.poll() is not None:
            break  # drained before we could kill it
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        kills += 1
    states_after_kills = _states(db)
    final = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr

    assert kills == 4, "a worker drained the queue before it could be killed"
    assert states_after_kills["completed"] < JOBS  # the kills really interrupted the work
    assert _states(db) == Counter({"completed": JOBS})
    runs = Counter(int(line) for line in log.read_text().split())
    assert set(runs) == set(range(JOBS))  # every job ran
    duplicates = sum(count - 1 for count in runs.values())
    # At-least-once: a job may run again only if a worker died while holding it
    # (at most concurrency 20 per kill).
    assert duplicates <= 20 * kills
    print(f"kills={kills} duplicates={duplicates}")


class Item(BaseModel):
    n: int


async def test_rows_written_behind_our_back_dead_letter_and_worker_goes_on(
    tmp_path: Path,
) -> None:
    db = tmp_path / "queue.db"
    backend = SqliteBackend(db)
    good = await backend.enqueue(EnqueueRequest(queue="q", payload={"n": 1}))
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        rows = [
            ("q", "wrong-shape", json.dumps({"n": "one"})),
            ("q", "not-json", "{this is not json"),
            ("q", "too-deep", "[" * 100_000 + "]" * 100_000),  # json.loads: RecursionError
        ]
        conn.executemany(
            "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
            " VALUES (?, ?, 'waiting', 0, ?, 0)",
            rows,
        )
    seen: list[int] = []

    async def record(data: Item) -> int:
        seen.append(data.n)
        return data.n

    options = ProcessorOptions(dead_letter_queue="q-dlq")
    processor = Processor.from_function("q", record, options)
    await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    assert seen == [1]
    assert (await backend.get_job("q", good)).state == JobState.COMPLETED  # type: ignore[union-attr]
    for job_id in ("wrong-shape", "not-json", "too-deep"):
        info = await backend.get_job("q", job_id)
        assert info is not None and info.state == JobState.DEAD_LETTERED
    records = {r.job_id: r for r in await backend.dead_letters("q-dlq")}
    assert records["wrong-shape"].payload == {"n": "one"}
    assert records["not-json"].payload == "{this is not json"
    assert records["not-json"].error.type == "JSONDecodeError"
    assert records["too-deep"].error.type == "RecursionError"
    await backend.close()
