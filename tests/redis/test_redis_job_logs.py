"""A job's BullMQ log (`<prefix>:<queue>:<id>:logs`, what Bull Board's Logs tab and Node's
`Job.getLogs` read) carries the processor's `ctx.logger` lines at INFO and above whatever the
console's level, and the console sees no more than it did."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.context import JobContext
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest

pytestmark = pytest.mark.redis


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


@pytest.fixture
def console() -> Iterator[Kept]:
    """A handler where the console's would be, under `pikku_queue` at its default (WARNING)."""
    parent = logging.getLogger("pikku_queue")
    kept, level = Kept(), parent.level
    parent.addHandler(kept)
    parent.setLevel(logging.WARNING)
    try:
        yield kept
    finally:
        parent.removeHandler(kept)
        parent.setLevel(level)


async def job_log(backend: RedisBackend, queue: str, job_id: str) -> list[str]:
    client = await backend.client()
    return [line.decode() if isinstance(line, bytes) else line
            for line in await client.lrange(f"{backend.key(queue, job_id)}:logs", 0, -1)]  # fmt: skip


async def send(ctx: JobContext, data: dict[str, int]) -> None:
    ctx.logger.debug("rendering %s", data["n"])
    ctx.logger.info("sent %s", data["n"])
    ctx.logger.warning("slow smtp")


def sync_send(ctx: JobContext, data: dict[str, int]) -> None:
    ctx.logger.info("sent %s from a thread", data["n"])


async def run(backend: RedisBackend, processor: Processor) -> str:
    job_id = await backend.enqueue(EnqueueRequest(processor.name, {"n": 1}))
    await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True)), 60
    )
    return job_id


async def test_info_lines_reach_the_job_log_but_not_a_warning_level_console(
    backend: RedisBackend, console: Kept
) -> None:
    processor = Processor.from_function("emails", send, ProcessorOptions())
    job_id = await run(backend, processor)
    assert await job_log(backend, "emails", job_id) == ["INFO sent 1", "WARNING slow smtp"]
    assert [line for line in console.lines if "smtp" in line or "sent" in line] == [
        "WARNING slow smtp"
    ]
    # The worker gives the logger back its own level when it stops.
    assert logging.getLogger("pikku_queue.emails").level == logging.NOTSET


async def test_a_sync_processors_info_line_reaches_the_job_log(
    backend: RedisBackend, console: Kept
) -> None:
    processor = Processor.from_function("emails_sync", sync_send, ProcessorOptions())
    job_id = await run(backend, processor)
    assert await job_log(backend, "emails_sync", job_id) == ["INFO sent 1 from a thread"]
    assert not [line for line in console.lines if "sent" in line]


async def test_debug_lines_reach_the_job_log_and_console_when_the_user_lowers_the_level(
    backend: RedisBackend, console: Kept
) -> None:
    logging.getLogger("pikku_queue").setLevel(logging.DEBUG)
    processor = Processor.from_function("emails_debug", send, ProcessorOptions())
    job_id = await run(backend, processor)
    lines = ["DEBUG rendering 1", "INFO sent 1", "WARNING slow smtp"]
    assert await job_log(backend, "emails_debug", job_id) == lines
    assert [line for line in console.lines if line in lines] == lines
