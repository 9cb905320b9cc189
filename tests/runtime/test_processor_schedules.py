"""A processor's own `repeat=`: registered by the generic worker at start on a real SQLite file,
idempotent across restarts, replaced (not doubled) when the declaration changes, removed when
it is dropped, and run with the payload `{}`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pikku_queue import Repeat, add_queue_processor, queue_processor
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.clock import VirtualClock
from pikku_queue.cron import parse_cron
from pikku_queue.declarations import spec_of
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import JobState
from pydantic import ValidationError

#: 2030-01-01 00:00 UTC: fixed, so the expected fire times are exact.
START_MS = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000)
HOUR_MS = 3_600_000

seen: list[Any] = []


def cleanup(data: dict[str, Any]) -> int:
    seen.append(data)
    return len(data)


def processor(repeat: Repeat | None) -> Processor:
    return Processor.from_function("cleanup", cleanup, ProcessorOptions(repeat=repeat))


async def start(backend: SqliteBackend, repeat: Repeat | None) -> None:
    """One worker start in burst mode: it registers the schedule and leaves at once."""
    await backend.run_worker(WorkerOptions(processors=[processor(repeat)], burst=True))


async def pending(backend: SqliteBackend) -> list[tuple[str, int]]:
    """The schedule's pending runs: (job id, run_at)."""

    def read(conn: Any) -> list[tuple[str, int]]:
        rows = conn.execute(
            "SELECT id, run_at FROM jobs WHERE queue = 'cleanup' AND state IN"
            " ('waiting', 'delayed') ORDER BY run_at"
        ).fetchall()
        return [(str(i), int(r)) for i, r in rows]

    return await backend._read(read)


def test_the_declaration_keeps_and_validates_repeat() -> None:
    @queue_processor("nightly", repeat=Repeat(cron="0 2 * * *"))
    def nightly(data: dict[str, Any]) -> None: ...

    spec = spec_of(nightly)
    assert spec is not None and spec.options.repeat == Repeat(cron="0 2 * * *")
    called = add_queue_processor(name="often", func=cleanup, repeat={"every": 60_000})
    assert called.options.repeat == Repeat(every=60_000)
    with pytest.raises(ValidationError, match="minute: 61 is outside 0-59"):
        queue_processor("bad", repeat={"cron": "61 * * * *"})
    assert ProcessorOptions().repeat is None


async def test_start_registers_once_and_a_burst_worker_does_not_wait(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    backend = SqliteBackend(db, clock=VirtualClock(START_MS))
    repeat = Repeat(cron="0 2 * * *")
    await start(backend, repeat)
    due = parse_cron("0 2 * * *").next_after(START_MS)
    assert due == START_MS + 2 * HOUR_MS
    [(job_id, run_at)] = await pending(backend)
    assert run_at == due
    info = await backend.get_job("cleanup", job_id)
    assert info is not None and info.state == JobState.DELAYED and info.payload == {}
    await backend.close()
    # a restarted worker (another process on the same file) registers the same schedule again:
    # nothing changes, no second run appears
    again = SqliteBackend(db, clock=VirtualClock(START_MS + 60_000))
    await start(again, repeat)
    assert await pending(again) == [(job_id, due)]
    await again.close()


async def test_a_changed_schedule_replaces_the_old_one(tmp_path: Path) -> None:
    clock = VirtualClock(START_MS)
    backend = SqliteBackend(tmp_path / "q.db", clock=clock)
    await start(backend, Repeat(cron="0 2 * * *"))
    await start(backend, Repeat(cron="30 4 * * *"))
    [(_, run_at)] = await pending(backend)
    assert run_at == START_MS + 4 * HOUR_MS + 30 * 60_000
    # cron → every: the interval schedule fires at once, nothing of the cron one is left
    await start(backend, Repeat(every=HOUR_MS))
    counts = await backend.counts("cleanup")
    assert counts.completed == 1 and seen[-1] == {}
    [(_, run_at)] = await pending(backend)
    assert run_at == START_MS + HOUR_MS
    # the declaration dropped: its schedule goes too
    await start(backend, None)
    assert await pending(backend) == []
    await backend.close()


async def test_scheduled_runs_get_an_empty_payload_and_schedule_the_next(tmp_path: Path) -> None:
    clock = VirtualClock(START_MS)
    backend = SqliteBackend(tmp_path / "q.db", clock=clock)
    seen.clear()
    await start(backend, Repeat(cron="0 2 * * *"))
    assert seen == []
    clock.advance(2 * HOUR_MS)
    await start(backend, Repeat(cron="0 2 * * *"))
    assert seen == [{}]
    [(_, run_at)] = await pending(backend)
    assert run_at == START_MS + 26 * HOUR_MS  # the next night
    assert (await backend.counts("cleanup")).completed == 1
    await backend.close()


async def test_a_limit_is_not_reset_by_a_restart(tmp_path: Path) -> None:
    clock = VirtualClock(START_MS)
    backend = SqliteBackend(tmp_path / "q.db", clock=clock)
    repeat = Repeat(every=60_000, limit=1)
    await start(backend, repeat)  # the one allowed run happens at once
    await start(backend, repeat)
    clock.advance(120_000)
    await start(backend, repeat)
    assert (await backend.counts("cleanup")).completed == 1
    assert await pending(backend) == []
    await backend.close()
