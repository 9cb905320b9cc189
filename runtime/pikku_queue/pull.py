"""The generic pull loop: lease jobs from a `PullSource`, run them through the engine, settle.

Memory and SQLite use it as is; a third-party pull backend only implements `PullSource`.
Choices worth knowing:

* One coordinating loop for all queues. Each queue has its own concurrency; a queue leases new
  jobs only when a quarter of its slots are free (or it is idle), so 50 slots finishing one by
  one cost a handful of lease transactions rather than one each.
* Leases are extended by a housekeeping task while jobs run, and the same task returns expired
  leases of dead workers (`recover_stalled`), emitting `stalled` events.
* Batch processors: a lease of up to `size` jobs starts a gathering task that tops up until
  `size` is reached or `timeout` ms passed since the first job, then makes one call.
* A processor's own `repeat` is registered at start (`ProcessorSchedules`), replacing a changed
  schedule; burst mode exits when no job is waiting, active or delayed, ignoring the next run
  of repeat schedules (they never drain).
* Graceful stop (`options.stop`): take no new jobs, give active ones `grace_period_s`, cancel
  the rest and release their leases so another worker takes them at once. A sync processor
  running in a thread cannot be interrupted: its job is released and may run twice
  (at-least-once). Cancelling the worker's task (the CLI does on a second Ctrl-C) skips what
  is left of the grace period but still cancels the active jobs and releases every lease,
  shielded from further cancellation and bounded by `RELEASE_TIMEOUT_S`; then the cancellation
  goes on. Without the release those jobs would come back only when their leases expire, and
  count as stalls (dead-lettered at once under `max_stalled_count=0`).
* An exception escaping the engine (a bug in it, or a `BaseException` such as a stray
  `CancelledError` raised by a processor) is a failed attempt under the engine's own rule
  (`Engine.failure_outcome`: Retry with backoff, DeadLetter at the last attempt), so the job is
  never left leased while the worker keeps extending its lease. If even that rule fails, the
  worker stops extending the lease: the job comes back when it expires, as a stall, which
  `max_stalled_count` bounds.
* A settle that fails drops the jobs from the worker's leases: their leases expire and the jobs
  come back (at-least-once), rather than being extended for as long as the worker lives.
* A burst worker always ends (`pikku_queue.burst`): besides draining, it stops waiting for
  what cannot progress (a job handed to it `burst.MAX_DELIVERIES` times with no verdict ever
  stored, ready jobs no reserve hands out, a backend failing every call), says which jobs it
  leaves and reports them in `WorkerReport.undone`.
* Leases are at most `fields.MAX_LEASE_MS` (12 h): a longer `lease_ms` is cut to it, so a
  stored lease ending later than that is never a live worker's and counts as ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pikku_queue import counts as count_rules
from pikku_queue import observe, tracing
from pikku_queue.backend import (
    DEFAULT_POLL_INTERVAL_S,
    Backend,
    BatchSettler,
    Drainable,
    HasClock,
    LiveLeases,
    Notified,
    Polled,
    ProcessorSchedules,
    PullSource,
    RateLimits,
    Scheduled,
    WorkerOptions,
    WorkerReport,
)
from pikku_queue.burst import BurstWatch
from pikku_queue.clock import SYSTEM_CLOCK, Clock
from pikku_queue.engine import Engine
from pikku_queue.events import JobEvent
from pikku_queue.fields import INVALID_RECORD_ERROR, MAX_LEASE_MS
from pikku_queue.outcomes import (
    Completed,
    DeadLetter,
    DeadLetterReason,
    Delivery,
    Outcome,
    Retry,
    stalled_error,
)
from pikku_queue.processor import Processor
from pikku_queue.records import JobState, dead_letter_target

#: The optional protocols a pull source may have live in `pikku_queue.backend`, with the rest
#: of the contract; these names stay importable from here.
__all__ = [
    "RELEASE_TIMEOUT_S",
    "BatchSettler",
    "Drainable",
    "ProcessorSchedules",
    "Scheduled",
    "run_pull_worker",
    "stop_tasks",
]

logger = logging.getLogger("pikku_queue.pull")

#: How long a cancelled worker may still spend cancelling its jobs and releasing their leases.
RELEASE_TIMEOUT_S = 10.0


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class _QueueState:
    processor: Processor
    engine: Engine
    concurrency: int
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    #: Jobs this worker holds a lease on, by id (running or being gathered into a batch).
    leased: dict[str, Delivery] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.processor.name

    @property
    def free(self) -> int:
        return self.concurrency - len(self.tasks)


class _PullWorker:
    def __init__(
        self,
        source: PullSource,
        backend: Backend,
        options: WorkerOptions,
        clock: Clock,
        poll_interval_s: float,
    ) -> None:
        self.source = source
        self.backend = backend
        self.options = options
        self.clock = clock
        self.poll = poll_interval_s
        self.worker_id = options.worker_id or default_worker_id()
        # Protocol isinstance checks are slow; settle runs once per job.
        self.settle_many = source.settle_many if isinstance(source, BatchSettler) else None
        self.wait_for_jobs = source.wait_for_jobs if isinstance(source, Notified) else None
        self.report = WorkerReport()
        #: What a burst worker has seen that cannot progress (`pikku_queue.burst`).
        self.burst = BurstWatch(enabled=options.burst)
        if options.lease_ms > MAX_LEASE_MS:
            logger.warning(
                "worker: a lease of %d ms is longer than the longest a worker holds; %d ms",
                options.lease_ms,
                MAX_LEASE_MS,
            )
        self.lease_ms = min(options.lease_ms, MAX_LEASE_MS)
        #: Recoveries of expired leases under way: a burst worker waits for their verdicts.
        self._recovering = 0
        self._announced_due: int | None = None
        self.queues: dict[str, _QueueState] = {}
        for processor in options.processors:
            engine = Engine(processor, services=options.services, events=options.events)
            concurrency = options.concurrency or processor.options.concurrency
            self.queues[processor.name] = _QueueState(processor, engine, max(concurrency, 1))

    # ------------------------------------------------------------------ main loop

    async def run(self) -> WorkerReport:
        await self._register_schedules()
        await self._register_rate_limits()
        for state in self.queues.values():
            await self._recover(state)
        housekeeping = asyncio.create_task(self._housekeeping())
        backoff = 0.1
        try:
            while not self.options.stop.is_set():
                try:
                    if await self._fill():
                        await asyncio.sleep(0)
                        continue
                    if self.options.burst and not self._tasks():
                        if await self._drained():
                            break
                        await self._say_what_burst_waits_for()
                    await self._idle()
                except Exception as exc:
                    # A backend hiccup (locked file, lost connection) must not end the worker:
                    # jobs already running go on, leasing resumes when the backend answers.
                    logger.exception("worker: backend call failed; retrying in %.1f s", backoff)
                    if self.burst.call_failed():
                        self._give_up_on_backend(exc)
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.options.stop.wait(), backoff)
                    backoff = min(backoff * 2, 5.0)
                else:
                    backoff = 0.1
                    self.burst.call_succeeded()
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            await self._shutdown()
        return self.report

    async def _register_schedules(self) -> None:
        """Declared schedules are authoritative: each processor's `repeat` is (re)registered,
        and a schedule it no longer declares is removed, before any job is taken."""
        if isinstance(self.source, ProcessorSchedules):
            for state in self.queues.values():
                await self.source.set_processor_schedule(state.name, state.processor.options.repeat)
            return
        for state in self.queues.values():
            if state.processor.options.repeat is not None:
                logger.warning(
                    "%s: this backend cannot register the processor's repeat schedule; "
                    "it does not fire",
                    state.name,
                )

    async def _register_rate_limits(self) -> None:
        """Each processor's `rate_limit` (or its absence) is told to the source, before any
        job is taken; one the source cannot keep is said once (the generator warned, PK801)."""
        if isinstance(self.source, RateLimits):
            for state in self.queues.values():
                await self.source.set_rate_limit(state.name, state.processor.options.rate_limit)
            return
        for state in self.queues.values():
            if state.processor.options.rate_limit is not None:
                logger.warning(
                    "%s: this backend cannot keep the processor's rate limit; jobs start "
                    "without it",
                    state.name,
                )

    def _tasks(self) -> set[asyncio.Task[None]]:
        return set().union(*(s.tasks for s in self.queues.values()))

    async def _fill(self) -> bool:
        took = False
        for state in self.queues.values():
            threshold = max(1, state.concurrency // 4)
            if state.free <= 0 or (state.tasks and state.free < threshold):
                continue
            batch = state.processor.options.batch
            limit = batch.size if batch is not None else state.free
            deliveries = self._take(
                state,
                await self.source.reserve(
                    state.name,
                    limit,
                    self.lease_ms,
                    self.worker_id,
                    max_active=state.processor.options.max_concurrency,
                ),
            )
            if not deliveries:
                continue
            took = True
            self.burst.progressed()
            if batch is not None:
                self._start(state, self._run_batch(state, deliveries))
            else:
                for delivery in deliveries:
                    self._start(state, self._run_one(state, delivery))
        return took

    def _take(self, state: _QueueState, deliveries: list[Delivery]) -> list[Delivery]:
        """Hold the leases of `deliveries`; the ones to run (a burst worker holds, unrun, a job
        that cannot progress: `BurstWatch.delivered`; its lease is extended till the end)."""
        run = []
        for delivery in deliveries:
            state.leased[delivery.job_id] = delivery
            if self.burst.delivered(state.name, delivery.job_id):
                run.append(delivery)
            else:
                logger.warning(
                    "burst: %s job %s was handed out again with no verdict stored; held, not run",
                    state.name,
                    delivery.job_id,
                )
        return run

    def _start(self, state: _QueueState, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    async def _idle(self) -> None:
        tasks = self._tasks()
        if tasks:
            waiter = self._notified(self.poll)
            try:
                await asyncio.wait(
                    tasks | waiter, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in waiter:
                    task.cancel()
            return
        delay = self.poll
        if isinstance(self.source, Scheduled):
            due = await self.source.next_due_ms(self.queues)
            if due is not None:
                until_due = max(due - self.clock.now_ms(), 0) / 1000
                delay = until_due if self.clock.jumps else min(until_due, self.poll)
        if self.clock.jumps:
            await self.clock.sleep(delay)
            return
        stop = asyncio.create_task(self.options.stop.wait())
        waiter = self._notified(delay)
        try:
            await asyncio.wait({stop} | waiter, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            for task in waiter:
                task.cancel()

    def _notified(self, timeout_s: float) -> set[asyncio.Task[None]]:
        """A task that ends when the source says a job may be ready (`Notified`), if it can."""
        if self.wait_for_jobs is None:
            return set()
        return {asyncio.create_task(self.wait_for_jobs(list(self.queues), timeout_s))}

    async def _say_what_burst_waits_for(self) -> None:
        """A burst worker with nothing to run but a delayed job to wait for says once (per due
        time) which queues it waits on and until when, instead of sitting silent."""
        if not isinstance(self.source, Scheduled):
            return
        due = await self.source.next_due_ms(self.queues)
        now = self.clock.now_ms()
        if due is None or due - now < 1000 or due == self._announced_due:
            return
        self._announced_due = due
        names = [n for n in self.queues if await self._pending(n)]
        logger.info(
            "burst: no job ready; waiting for the delayed job(s) of %s, the next due at %s"
            " (in %.0f s)",
            ", ".join(names) or "these queues",
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(due / 1000)),
            (due - now) / 1000,
        )

    async def _pending(self, name: str) -> int:
        if isinstance(self.source, Drainable):
            return await self.source.pending_count(name)
        return count_rules.pending(await self.backend.counts(name))

    async def _drained(self) -> bool:
        """Whether a burst worker is done: nothing pending but what cannot progress
        (`pikku_queue.burst`), which it then reports in `WorkerReport.undone`."""
        if self._recovering:  # a stalled job's verdict is still being reported
            return False
        out_of_reach: list[str] = []
        for name in self.queues:
            held = self.burst.held_in(name)
            if await self._pending(name) <= held:
                continue
            stuck = await self._stuck(name, held)
            if not self.burst.out_of_reach(name, stuck, self.clock.now_ms(), self.lease_ms):
                return False
            out_of_reach.append(
                f"{name}: {stuck} job(s) that no lease hands out and no live lease holds"
            )
        if self._recovering:  # (one may have begun meanwhile)
            return False
        self.burst.end(self.report, out_of_reach)
        return True

    async def _stuck(self, name: str, held: int) -> int:
        """Jobs of `name` that no reserve hands out and no live lease holds: ready ones while
        no live lease but this worker's held ones is on the queue, and active ones whose
        lease has ended (stall recovery could not put them back). Without `LiveLeases`, every
        active job counts as under a live lease."""
        counts = await self.backend.counts(name)
        live = counts.active
        if isinstance(self.source, LiveLeases):
            live = await self.source.live_lease_count(name)
        ready = counts.waiting if live <= held else 0
        return ready + max(counts.active - live, 0)

    def _give_up_on_backend(self, exc: Exception) -> None:
        """A burst worker whose backend failed every call of `burst.MAX_FAILED_CALLS` ends."""
        self.burst.end(self.report, [self.burst.gave_up(", ".join(self.queues), exc)])

    # ------------------------------------------------------------------ running jobs

    async def _run_one(self, state: _QueueState, delivery: Delivery) -> None:
        try:
            outcome = await state.engine.run(delivery)
        except BaseException as exc:
            if not _escaped(exc):
                raise
            logger.exception("%s job %s: the engine failed", state.name, delivery.job_id)
            settled = self._failed_attempts(state, [delivery], exc)
        else:
            settled = [(delivery, outcome)]
        await self._settle(state, settled)

    def _failed_attempts(
        self, state: _QueueState, deliveries: list[Delivery], exc: BaseException
    ) -> list[tuple[Delivery, Outcome]]:
        """Each job's outcome under the engine's failure rule; none (the leases are dropped and
        expire) if that rule itself fails."""
        try:
            return [(d, state.engine.failure_outcome(d, exc)) for d in deliveries]
        except Exception:
            logger.exception(
                "%s: no outcome for %d job(s); they come back when their lease expires",
                state.name,
                len(deliveries),
            )
            for delivery in deliveries:
                state.leased.pop(delivery.job_id, None)
            return []

    async def _run_batch(self, state: _QueueState, deliveries: list[Delivery]) -> None:
        batch = state.processor.options.batch
        assert batch is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + batch.timeout / 1000
        while len(deliveries) < batch.size and not self.options.stop.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            more = self._take(
                state,
                await self.source.reserve(
                    state.name,
                    batch.size - len(deliveries),
                    self.lease_ms,
                    self.worker_id,
                    max_active=state.processor.options.max_concurrency,
                ),
            )
            deliveries.extend(more)
            if not more:
                if self.options.burst:
                    break
                await asyncio.sleep(min(self.poll, remaining))
        try:
            outcomes = await state.engine.run_batch(deliveries)
        except BaseException as exc:
            if not _escaped(exc):
                raise
            logger.exception("%s: the engine failed on a batch", state.name)
            settled = self._failed_attempts(state, deliveries, exc)
        else:
            settled = list(zip(deliveries, outcomes, strict=True))
        await self._settle(state, settled)

    async def _settle(self, state: _QueueState, settled: list[tuple[Delivery, Outcome]]) -> None:
        if not settled:
            return
        dlq = state.processor.options.dead_letter_queue
        try:
            if self.settle_many is not None:
                await self.settle_many(settled, dlq)
            else:
                for delivery, outcome in settled:
                    await self.source.settle(delivery, outcome, dlq)
        except Exception:
            # Stop extending their leases: they expire and the jobs come back (at-least-once).
            # Kept in `leased`, a custom source's lease would be extended while the worker lives.
            for delivery, _ in settled:
                state.leased.pop(delivery.job_id, None)
            logger.exception(
                "%s: could not record the outcome of %d job(s); they come back when their "
                "lease expires",
                state.name,
                len(settled),
            )
            return
        for delivery, outcome in settled:
            state.leased.pop(delivery.job_id, None)
            self.burst.settled(state.name, delivery.job_id)
            self._count(outcome, dead_letter_target(delivery.payload, dlq))

    def _count(self, outcome: Outcome, dlq: str | None) -> None:
        if isinstance(outcome, Completed):
            self.report.completed += 1
        elif isinstance(outcome, Retry):
            self.report.retried += 1
        elif isinstance(outcome, DeadLetter) and dlq:
            self.report.dead_lettered += 1
        else:
            self.report.failed += 1

    # ------------------------------------------------------------------ leases

    async def _housekeeping(self) -> None:
        lease_s = self.lease_ms / 1000
        interval = max(min(lease_s / 3, 10.0), 0.02)
        recover_every = max(1, round((lease_s / 2) / interval))
        tick = 0
        while True:
            await asyncio.sleep(interval)
            tick += 1
            for state in self.queues.values():
                try:
                    if state.leased:
                        await self.source.extend_lease(
                            state.name, list(state.leased), self.lease_ms
                        )
                    if tick % recover_every == 0:
                        await self._recover(state)
                except Exception:
                    logger.exception("%s: lease housekeeping failed; retrying", state.name)

    async def _recover(self, state: _QueueState) -> None:
        self._recovering += 1
        try:
            await self._recover_expired(state)
        finally:
            self._recovering -= 1

    async def _recover_expired(self, state: _QueueState) -> None:
        options = state.processor.options
        stalled = await self.source.recover_stalled(
            state.name, options.max_stalled_count, options.dead_letter_queue
        )
        if stalled:
            observe.stalled(state.name, len(stalled))
            logger.warning(
                "%s: recovered %d stalled job(s) whose worker's lease expired",
                state.name,
                len(stalled),
            )
        for job_id in stalled:
            self.report.stalled += 1
            logger.warning("%s job %s stalled (its lease expired); recovered", state.name, job_id)
            if "stalled" in options.events:
                self.options.events.emit(
                    JobEvent(name="stalled", queue=state.name, job_id=job_id, attempt=0)
                )
            await self._report_stalled_verdict(state, job_id)

    async def _report_stalled_verdict(self, state: _QueueState, job_id: str) -> None:
        """A job that stalled past `max_stalled_count` ended for good: count it and emit its
        `failed` (and `dead_lettered`) events as for any other verdict."""
        info = await self.backend.get_job(state.name, job_id)
        if info is None or info.state not in (JobState.FAILED, JobState.DEAD_LETTERED):
            return
        if info.state is JobState.DEAD_LETTERED:
            self.report.dead_lettered += 1
        else:
            self.report.failed += 1
        error = info.error or stalled_error(0, state.processor.options.max_stalled_count)
        delivery = Delivery(
            job_id=job_id,
            queue=state.name,
            payload=info.payload,
            attempt=info.attempts_made,
            enqueued_at_ms=info.enqueued_at_ms,
        )
        # Recovery refuses a count no pikkugen writer writes as it refuses it at a lease.
        reason: DeadLetterReason = (
            "invalid_record" if error.type == INVALID_RECORD_ERROR else "stalled"
        )
        state.engine.report_verdict(delivery, DeadLetter(reason, error))

    async def _shutdown(self) -> None:
        await stop_tasks(self._tasks(), self.options.grace_period_s, self._cancel_and_release)

    async def _cancel_and_release(self, pending: set[asyncio.Task[None]]) -> None:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for state in self.queues.values():
            if state.leased:
                ids = list(state.leased)
                state.leased.clear()
                try:
                    await self.source.release(state.name, ids)
                except Exception:
                    logger.exception("%s: could not release %d job(s)", state.name, len(ids))


async def stop_tasks(
    tasks: set[asyncio.Task[Any]],
    grace_period_s: float,
    cancel_and_release: Callable[[set[asyncio.Task[Any]]], Awaitable[None]],
    *,
    release_timeout_s: float = RELEASE_TIMEOUT_S,
) -> None:
    """The stop rule of the pull workers (this one and SQS's long-poll worker): give `tasks`
    the grace period, then `cancel_and_release` those still running. If this task is
    cancelled (a second signal) before or during the grace period, the grace period is
    skipped, but the release still runs, shielded from further cancellation and bounded by
    `release_timeout_s`; then the cancellation goes on (CancelledError is raised)."""
    current = asyncio.current_task()
    # Cancelled before (or while) the grace period runs: skip it, but still release.
    cancelled = current is not None and current.cancelling() > 0
    pending = tasks
    if tasks and not cancelled:
        try:
            _, pending = await asyncio.wait(tasks, timeout=grace_period_s)
        except asyncio.CancelledError:
            cancelled = True
            pending = {task for task in tasks if not task.done()}
    # asyncio.wait never cancels what it waits for: a further cancellation of this task
    # cannot interrupt the release, only the deadline can.
    cleanup = asyncio.ensure_future(cancel_and_release(pending))
    deadline = asyncio.get_running_loop().time() + release_timeout_s
    while not cleanup.done():
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            logger.error("worker: releasing leases took over %.0f s; gave up", release_timeout_s)
            cleanup.cancel()
            break
        try:
            await asyncio.wait({cleanup}, timeout=remaining)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


def _escaped(exc: BaseException) -> bool:
    """True for an exception that escaped the engine, False for this task being cancelled (a
    shutdown) or the process exiting, which must go on unwinding."""
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        return False
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        return task is not None and task.cancelling() == 0
    return True


async def run_pull_worker(
    source: PullSource,
    backend: Backend,
    options: WorkerOptions,
    *,
    clock: Clock | None = None,
    poll_interval_s: float | None = None,
) -> WorkerReport:
    """Consume `options.processors` from `source` until stopped (or drained, in burst mode)."""
    tracing.set_system(backend.url)
    if clock is None:
        clock = source.clock if isinstance(source, HasClock) else SYSTEM_CLOCK
    if poll_interval_s is None:
        poll_interval_s = (
            source.poll_interval_s if isinstance(source, Polled) else DEFAULT_POLL_INTERVAL_S
        )
    poll = poll_interval_s
    return await _PullWorker(source, backend, options, clock, poll).run()
