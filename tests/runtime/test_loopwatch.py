"""An `async def` processor that blocks the event loop (`time.sleep` inside
it) is named in a warning that points to `def` processors; a `def` processor that sleeps on
its thread is not (it cannot block the loop). The real pull worker on a real SQLite file; the
block (2 s) is four times the threshold, so the measurement does not depend on the machine."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from pikku_queue import loopwatch
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.context import JobContext
from pikku_queue.observe import OBSERVERS
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest


async def blocking(ctx: JobContext, data: dict[str, int]) -> int:
    time.sleep(2.0)  # the mistake: a blocking call inside async def
    return 1


def threaded(ctx: JobContext, data: dict[str, int]) -> int:
    time.sleep(2.0)  # fine: a def processor runs on a thread
    return 2


async def test_a_blocking_async_processor_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    try:
        for queue in ("blocks", "threads"):
            await backend.enqueue(EnqueueRequest(queue=queue, payload={}))
        options = WorkerOptions(
            processors=[
                Processor.from_function("blocks", blocking, ProcessorOptions(timeout=1000)),
                Processor.from_function("threads", threaded, ProcessorOptions()),
            ],
            burst=True,
        )
        with caplog.at_level(logging.WARNING, logger="pikku_queue.pull"):
            watch = loopwatch.start(options.stop)
            report = await backend.run_worker(options)
            options.stop.set()
            await watch
    finally:
        await backend.close()
    assert report.completed == 2  # the timeout could not interrupt it: it ran to the end
    warnings = [r.getMessage() for r in caplog.records if "event loop was blocked" in r.message]
    assert warnings, caplog.text
    named = f"blocks ({__name__}.blocking)"
    assert all(named in w for w in warnings), warnings
    assert not any("threads" in w for w in warnings), warnings
    assert "make it a `def` processor" in warnings[0]
    assert not [o for o in OBSERVERS if isinstance(o, loopwatch.LoopWatch)]


def test_the_message_names_every_suspect() -> None:
    blocked = loopwatch.Blocked(3.0, ("a (m.f)", "b (m.g)"))
    assert blocked.message().startswith(
        "the event loop was blocked for 3.0 s while a (m.f), b (m.g) ran:"
    )
