"""Gathering deliveries into batches for a batch processor on Redis.

BullMQ has no batches: it hands a worker one job at a time. A batch processor's jobs are
therefore fetched one by one (the runner raises the worker's concurrency to make room for a
whole batch), each waits here while still active under its own BullMQ lock, and the batch's
outcomes go back one per job, so each is settled like the outcome of a single job.
"""

from __future__ import annotations

import asyncio

from pikku_queue.engine import Engine
from pikku_queue.outcomes import Delivery, Outcome

from .tooling import JobLogs


class Batcher:
    """Gathers deliveries for a batch processor: a batch runs when `size` jobs are in hand or
    `timeout` ms after the first arrived. Each job keeps its own BullMQ lock meanwhile."""

    def __init__(
        self, engine: Engine, size: int, timeout_ms: int, job_logs: JobLogs | None = None
    ) -> None:
        self.engine = engine
        #: Each job of a call gets the lines the call logs on `ctx.logger`.
        self.job_logs = job_logs
        self.size = size
        self.timeout_s = timeout_ms / 1000
        self.pending: list[tuple[Delivery, asyncio.Future[Outcome]]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.running: set[asyncio.Task[None]] = set()

    async def submit(self, delivery: Delivery) -> Outcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self.pending.append((delivery, future))
        if len(self.pending) >= self.size:
            self.flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.timeout_s, self.flush)
        return await future

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending = self.pending, []
        if batch:
            task = asyncio.ensure_future(self._run(batch))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _run(self, batch: list[tuple[Delivery, asyncio.Future[Outcome]]]) -> None:
        if self.job_logs is not None and batch:
            self.job_logs.running_batch(batch[0][0].queue, [d.job_id for d, _ in batch])
        try:
            outcomes = await self.engine.run_batch([delivery for delivery, _ in batch])
        except asyncio.CancelledError:  # a forced shutdown: the jobs' own tasks end too
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the engine does not raise; never strand a job anyway
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
