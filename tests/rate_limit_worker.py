"""A worker process the rate-limit tests run two of at once, on one SQLite file, one Redis or one PostgreSQL database.

usage: python rate_limit_worker.py URL QUEUE LOG MAX PER_MS HOLD_MS READY GO

Each job appends "<start time in ms> <pid>" to LOG when it starts, then holds its slot for
HOLD_MS. The process runs two jobs at once (concurrency 2) under `RateLimit(MAX, PER_MS)` and
ends once the queue is drained (a burst worker). It touches READY once connected, then waits
for GO to exist, so both processes start taking jobs together.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pikku_queue.adapters import connect
from pikku_queue.backend import WorkerOptions
from pikku_queue.options import ProcessorOptions, RateLimit
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest

JOBS = 18
MAX = 3
PER_MS = 500
#: Shorter than a window, two at once per process: every slot is free again when a window
#: opens, so a window's starts come together at its opening (they cannot be mistaken for the
#: next window's, however late a loaded machine measures them), and a limit kept per process
#: would let 4 through (2 + 2) where the shared one lets 3.
HOLD_MS = 100


async def main(url: str, queue: str, log: str, most: int, per_ms: int, hold_ms: int) -> None:
    async def work(data: dict[str, Any]) -> int:
        line = f"{time.time() * 1000:.3f} {os.getpid()}\n"
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        await asyncio.sleep(hold_ms / 1000)
        return int(data["n"])

    backend = connect(url)
    options = ProcessorOptions(concurrency=2, rate_limit=RateLimit(max=most, per_ms=per_ms))
    processor = Processor.from_function(queue, work, options)
    await backend.counts(queue)  # connected
    Path(sys.argv[7]).touch()
    deadline = time.monotonic() + 60
    while not Path(sys.argv[8]).exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    report = await backend.run_worker(
        WorkerOptions(processors=[processor], burst=True, lease_ms=5000)
    )
    await backend.close()
    print("report", report, flush=True)


def run_pair(
    url: str, queue: str, folder: Path, most: int, per_ms: int, hold_ms: int
) -> list[tuple[float, int]]:
    """Run two worker processes on `queue` together until it is drained; each job's
    (start time in ms, pid), in start order."""
    log, go = folder / "starts.log", folder / "go"
    ready = [folder / "ready-1", folder / "ready-2"]
    settings = [str(most), str(per_ms), str(hold_ms)]
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, url, queue, str(log), *settings, str(flag), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
            if any(w.poll() is not None for w in workers):
                break
            time.sleep(0.01)
        go.touch()
        for worker in workers:
            _, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    starts = []
    for line in log.read_text().split("\n"):
        if line:
            when, pid = line.split()
            starts.append((float(when), int(pid)))
    return sorted(starts)


def check_two_processes_share_one_limit(url: str, folder: Path) -> None:
    """The scenario every backend's test runs: JOBS jobs, two worker processes under one
    `RateLimit(MAX, PER_MS)`, no window holding more than MAX starts."""
    # Imported here: this file also runs as the worker script, which needs no test helpers.
    from pikku_queue.conformance.limits import windows_of

    async def fill() -> None:
        backend = connect(url)
        await backend.enqueue_many(
            [EnqueueRequest(queue="limited", payload={"n": n}) for n in range(JOBS)]
        )
        await backend.close()

    asyncio.run(fill())
    starts = run_pair(url, "limited", folder, MAX, PER_MS, HOLD_MS)
    assert len(starts) == JOBS  # each job started once: waiting for the limit is no attempt
    assert len({pid for _, pid in starts}) == 2  # both processes took jobs
    windows = windows_of([when for when, _ in starts], PER_MS)
    print("starts per window:", [len(w) for w in windows])
    assert max(len(w) for w in windows) <= MAX, windows
    # the limit, not the slots, was what held them back: some window used all MAX starts
    assert max(len(w) for w in windows) == MAX


if __name__ == "__main__":
    url, queue, log, most, per_ms, hold_ms = sys.argv[1:7]
    asyncio.run(main(url, queue, log, int(most), int(per_ms), int(hold_ms)))
