"""One definition of each count. The worker's live lines, its final table and
QueueMonitor agree (a dead-lettered job is `dead_lettered`, not also `failed`); a cron queue's
next run is `scheduled`, not work left (its bar fills); a burst worker waiting for a delayed
job says what it waits for and until when."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest
from pikku_queue import counts
from pikku_queue.adapters import connect
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.clock import VirtualClock
from pikku_queue.monitor import QueueMonitor
from pikku_queue.options import ProcessorOptions, Repeat
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, QueueCounts
from pikkugen.commands.display import _watch, print_stats
from rich.console import Console
from support import QUEUES, enqueue_known, processors


def test_the_derived_sums() -> None:
    c = QueueCounts(
        waiting=2, active=1, delayed=3, completed=5, failed=1, dead_lettered=2, scheduled=1
    )
    assert counts.finished(c) == 8
    assert counts.pending(c) == 5  # the schedule's next run is not work left
    assert list(counts.by_state(c)) == list(counts.STATES)
    assert "dead-lettered 2" in counts.describe(c) and "(scheduled 1)" in counts.describe(c)


async def test_live_lines_table_and_monitor_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = connect(f"sqlite:///{tmp_path / 'q.db'}")
    expected = await enqueue_known(backend)
    monitor = QueueMonitor(queues=QUEUES, backend=backend)
    stop = asyncio.Event()
    display = asyncio.create_task(_watch(monitor, stop, Console(), False, 0.05))
    await backend.run_worker(WorkerOptions(processors=processors("counts"), burst=True))
    stop.set()
    await display
    stats = await monitor.all_stats()
    print_stats(stats, Console(), False)
    out = capsys.readouterr().out
    await backend.close()
    for s in stats:
        want = expected[s.queue]
        assert (s.completed, s.failed, s.dead_lettered) == (
            want.completed, want.failed, want.dead_lettered,
        )  # fmt: skip
        live = [line for line in out.splitlines() if f" {s.queue}: done_since_start=" in line]
        last = live[-1]
        for state in counts.STATES:
            assert f" {state}={getattr(s, state)}" in last, (state, last)
        table = next(line for line in out.splitlines() if line.startswith(f"stats {s.queue}:"))
        for state in ("completed", "failed", "dead_lettered"):
            assert f" {state}={getattr(s, state)}" in table
        done = int(re.search(r"done_since_start=(\d+)", last).group(1))  # type: ignore[union-attr]
        assert done == counts.finished(await _counts(tmp_path, s.queue))


async def _counts(tmp_path: Path, queue: str) -> QueueCounts:
    backend = connect(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        return await backend.counts(queue)
    finally:
        await backend.close()


async def test_a_cron_queues_next_run_is_scheduled_not_pending(tmp_path: Path) -> None:
    backend = connect(f"sqlite:///{tmp_path / 'q.db'}")

    async def tick(data: dict[str, object]) -> None:
        return None

    options = ProcessorOptions(repeat=Repeat(every=60_000))
    processor = Processor.from_function("cron-tick", tick, options)
    await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    c = await backend.counts("cron-tick")
    await backend.close()
    assert c.delayed == 1 and c.scheduled == 1
    assert counts.pending(c) == 0  # a bar's total is what is done: it fills


async def test_a_waiting_burst_worker_says_what_it_waits_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(start_ms=1_800_000_000_000)
    backend = MemoryBackend(clock=clock)
    await backend.enqueue(EnqueueRequest("later", {"n": 1}, delay_ms=60_000))

    async def work(data: dict[str, int]) -> int:
        return data["n"]

    processor = Processor.from_function("later", work)
    with caplog.at_level(logging.INFO, logger="pikku_queue.pull"):
        report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    await backend.close()
    assert report.completed == 1
    [message] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("burst:")]
    assert "waiting for the delayed job(s) of later" in message
    assert "the next due at 2027-01-15 08:01:00 UTC (in 60 s)" in message
