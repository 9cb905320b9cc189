"""What makes a pikkugen Redis worker look like a BullMQ worker to BullMQ's own tooling
(Node's `queue.getWorkers()`, `job.processedBy`, `job.log` / Bull Board's Logs tab).

Each piece is a function the worker loop calls, so another loop can carry them over:

- `worker_client_name`: the connection name BullMQ gives a named worker,
  `<prefix>:<base64 of the queue name>:w:<worker name>` (Node's `RedisQueueBackend.clientName`
  with the `:w:` suffix `getWorkers` matches); bullmq-python writes the queue name unencoded,
  which Node never lists.
- `move_to_active_as`: BullMQ's moveToActive script with the worker name in its options, so the
  script sets `processedBy` (the `pb` field) as it does for a Node worker.
- `JobLogs`: a filter on a processor's `ctx.logger` that keeps each job's lines at INFO and
  above (DEBUG too when the logger's level is DEBUG when the worker starts), whatever the
  console shows; `write_job_logs` appends them to the job's `<prefix>:<queue>:<id>:logs` list,
  the list BullMQ's addLog script writes and `Job.getLogs` reads.
"""

from __future__ import annotations

import base64
import contextvars
import logging
import time
from typing import Any

import msgpack  # type: ignore[import-untyped]  # bullmq depends on it; no stubs
import redis.asyncio as aioredis
from bullmq.scripts import raw2NextJobData

#: The keys BullMQ's moveToActive script takes, in its order (bullmq-python's own list).
_MOVE_TO_ACTIVE_KEYS = [
    "wait", "active", "prioritized", "events", "stalled", "limiter", "delayed", "paused",
    "meta", "pc", "marker",
]  # fmt: skip
#: The jobs whose processor is running in this context, as (queue, job id): one job, or the
#: jobs of one batch call (each of them gets the call's lines).
_current_jobs: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "pikku_redis_current_jobs", default=()
)


def worker_client_name(prefix: str, queue: str, worker_name: str) -> str:
    """The Redis connection name of a named BullMQ worker (what `getWorkers()` matches)."""
    encoded = base64.b64encode(queue.encode()).decode()
    return f"{prefix}:{encoded}:w:{worker_name}"


async def move_to_active_as(scripts: Any, token: str, opts: dict[str, Any], name: str) -> Any:
    """bullmq-python's `Scripts.moveToActive`, naming the worker so `processedBy` is set."""
    packed = msgpack.packb(
        {
            "token": token,
            "lockDuration": opts.get("lockDuration", 0),
            "limiter": opts.get("limiter"),
            "name": name,
        },
        use_bin_type=True,
    )
    args = [scripts.keys[""], round(time.time() * 1000), packed]
    keys = scripts.getKeys(_MOVE_TO_ACTIVE_KEYS)
    return raw2NextJobData(await scripts.commands["moveToActive"](keys=keys, args=args))


#: The processor loggers a `JobLogs` is attached to: logger name -> (the level the logger had
#: before the first attach, how many attaches), so the last detach restores it.
_attached: dict[str, tuple[int, int]] = {}


class JobLogs(logging.Filter):
    """Collects the lines a processor logs on `ctx.logger` while one of its jobs runs (a sync
    processor's thread too: the job travels in a context variable), by job.

    The job log must not depend on what the console shows: with default logging (WARNING)
    `ctx.logger.info(...)` still belongs in the job's log. So `attach` lowers the logger's own
    level to INFO (or keeps DEBUG if that is what it had), and this filter, which the logger
    consults before its handlers and before propagating, keeps the line for the job and then
    lets through only the records the logger would have passed without it: the console, and
    any handler of the user's, see exactly what they saw before."""

    def __init__(self) -> None:
        super().__init__()
        self.formatter = logging.Formatter("%(levelname)s %(message)s")
        self._lines: dict[tuple[str, str], list[str]] = {}
        self._logger: logging.Logger | None = None

    def attach(self, log: logging.Logger) -> None:
        """Start keeping `log`'s lines (the processor's `ctx.logger`)."""
        level, count = _attached.get(log.name, (log.level, 0))
        _attached[log.name] = (level, count + 1)
        log.setLevel(min(logging.INFO, log.getEffectiveLevel()))
        log.addFilter(self)
        self._logger = log

    def detach(self) -> None:
        """Stop keeping lines; the last detach gives the logger back its own level."""
        log, self._logger = self._logger, None
        if log is None:
            return
        log.removeFilter(self)
        level, count = _attached.pop(log.name, (log.level, 1))
        if count > 1:
            _attached[log.name] = (level, count - 1)
        else:
            log.setLevel(level)

    def _console_level(self, log: logging.Logger) -> int:
        """The level `log` would have without the job log: its own, else its parent's."""
        level = _attached.get(log.name, (logging.NOTSET, 0))[0]
        if level != logging.NOTSET:
            return level
        return log.parent.getEffectiveLevel() if log.parent is not None else logging.WARNING

    def running(self, queue: str, job_id: str) -> None:
        """Mark the current context as running this job (set before the processor starts)."""
        _current_jobs.set(((queue, job_id),))
        self._lines.pop((queue, job_id), None)

    def running_batch(self, queue: str, job_ids: list[str]) -> None:
        """Mark the current context (a batch call's task) as running these jobs at once."""
        _current_jobs.set(tuple((queue, job_id) for job_id in job_ids))

    def take(self, queue: str, job_id: str) -> list[str]:
        return self._lines.pop((queue, job_id), [])

    def filter(self, record: logging.LogRecord) -> bool:
        jobs = _current_jobs.get()
        if jobs:
            try:
                line = self.formatter.format(record)
            except Exception:  # a bad format string is the handlers' to report
                line = f"{record.levelname} {record.msg}"
            for job in jobs:
                self._lines.setdefault(job, []).append(line)
        log = self._logger
        return log is None or record.levelno >= self._console_level(log)


async def write_job_logs(
    client: aioredis.Redis, job_key: str, lines: list[str], keep: int | None = None
) -> None:
    """Append `lines` to the job's log list (BullMQ's addLog: RPUSH, then keep the newest
    `keep` when the job's `keepLogs` option says so)."""
    if not lines:
        return
    async with client.pipeline(transaction=True) as pipe:
        pipe.rpush(f"{job_key}:logs", *lines)
        if keep:
            pipe.ltrim(f"{job_key}:logs", -keep, -1)
        await pipe.execute()
