"""The long-poll worker: `pikkugen worker --backend sqs://…` on a VM or in a container.

One loop per queue long-polls (WaitTimeSeconds, 20 s by default), runs up to `concurrency`
jobs at once through the engine, and settles each verdict (`sqs.settle`). A received message is
hidden for the worker's lease; a heartbeat keeps extending that while the job runs, so a job
longer than the queue's visibility timeout is not handed to a second consumer. A batch
processor on a FIFO queue keeps each group's order by the rule in `sqs.fifo`.

Stopping follows the generic pull worker's rule (`worker.stop_tasks`). On stop, running jobs get
the grace period; what is left (and anything a long poll returns after the stop) is given back:
re-sent with its attempts carried over on standard queues, made visible at once on FIFO queues
(where re-sending would break the group's order). A second signal (the worker's task cancelled)
skips the grace period but still gives the messages back, shielded and bounded in time; without
that they would come back only when their visibility timeout runs out. Verdicts already in hand
are applied to the end, even on a stop, rather than released: a job that ran is not run again
(on a standard queue, a released copy of a completed message would be).

A burst worker always ends, by the rule of every pull worker (`pikku_queue.burst`): a message
received `burst.MAX_DELIVERIES` times without a verdict stored for it (its dead-letter send
failed, its settle failed) is held, not run again, and drained means nothing left but held
messages; `burst.MAX_FAILED_CALLS` failed receives or queue reads in a row end it too. What it
leaves is in `WorkerReport.undone`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pikku_queue.adapters.sqs.batch import SettleBatcher
from pikku_queue.adapters.sqs.client import MissingQueueError, is_fifo
from pikku_queue.adapters.sqs.fifo import GroupHold
from pikku_queue.adapters.sqs.messages import InboundMessage, OutboundMessage
from pikku_queue.adapters.sqs.settle import FINISHED, Settled, Settler
from pikku_queue.backend import WorkerOptions, WorkerReport
from pikku_queue.burst import BurstWatch
from pikku_queue.engine import Engine
from pikku_queue.errors import BackendError
from pikku_queue.outcomes import Delivery, Outcome
from pikku_queue.processor import Processor
from pikku_queue.pull import RELEASE_TIMEOUT_S, stop_tasks

if TYPE_CHECKING:
    from pikku_queue.adapters.sqs.backend import SQSQueueAdapter

logger = logging.getLogger("pikku_queue.sqs")

#: Pause after a failed ReceiveMessage before polling again.
_ERROR_PAUSE_S = 1.0

T = TypeVar("T")
#: Runs a received group of messages; the list shrinks to what no verdict has reached yet.
Run = Callable[[list[InboundMessage]], Awaitable[None]]


async def run_long_poll_worker(adapter: SQSQueueAdapter, options: WorkerOptions) -> WorkerReport:
    for processor in options.processors:
        if processor.options.repeat is not None:
            # SQS holds no schedules: the SAM template's EventBridge schedule sends the runs.
            logger.info(
                "%s: its repeat schedule is not fired by this worker; deploy the SAM "
                "template's EventBridge schedule (it sends {} to the queue)",
                processor.name,
            )
    report = WorkerReport()
    idle: set[str] = set()
    loops = [_QueueLoop(adapter, p, options, report, idle) for p in options.processors]

    async def run(loop: _QueueLoop) -> None:
        try:
            await loop.run()
        except Exception:
            options.stop.set()  # one loop cannot go on (a missing queue): the others stop too
            raise

    outcomes = await asyncio.gather(*(run(loop) for loop in loops), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return report


class _QueueLoop:
    def __init__(
        self,
        adapter: SQSQueueAdapter,
        processor: Processor,
        options: WorkerOptions,
        report: WorkerReport,
        idle: set[str],
    ) -> None:
        self.adapter = adapter
        self.api = adapter.api
        self.processor = processor
        self.options = options
        self.report = report
        #: Queues found drained in burst mode; the worker ends when all of them are.
        self.idle = idle
        self.engine = Engine(processor, services=options.services, events=options.events)
        self.limit = options.concurrency or processor.options.concurrency
        self.lease_s = max(1, math.ceil(options.lease_ms / 1000))
        #: Each running task's messages that no verdict has reached yet: what a stop gives back.
        self.running: dict[asyncio.Task[None], list[InboundMessage]] = {}
        #: Verdicts being applied: a stop lets them finish (`_to_the_end`).
        self.settling: set[asyncio.Task[Any]] = set()
        self.url = ""
        #: Whether the last receive returned messages (burst mode then short-polls next).
        self.received_last = False
        #: Deletes and visibility changes, gathered into batch calls.
        self.batcher = SettleBatcher(self.api)
        self.settler = Settler(self.api, adapter.stats, self.batcher.set_visibility)
        #: What a burst worker has seen that cannot progress (`pikku_queue.burst`).
        self.burst = BurstWatch(enabled=options.burst)
        #: Set when a burst worker gives up on SQS (its `undone` line).
        self.gave_up: str | None = None

    @property
    def name(self) -> str:
        return self.processor.name

    async def run(self) -> None:
        self.url = await self.api.queue_url(self.name)
        stop = asyncio.ensure_future(self.options.stop.wait())
        #: A long poll whose messages are not dispatched yet (a stop gives them back).
        receive: asyncio.Task[list[InboundMessage]] | None = None
        try:
            while not self.options.stop.is_set():
                if len(self.running) >= self.limit:
                    await asyncio.wait({*self.running, stop}, return_when="FIRST_COMPLETED")
                    continue
                receive = asyncio.create_task(self._receive())
                await asyncio.wait({receive, stop}, return_when="FIRST_COMPLETED")
                if not receive.done():
                    break
                done, receive = receive, None
                messages = done.result()  # raises MissingQueueError: nothing to give back
                if self.gave_up is not None:
                    break
                if messages:
                    self.idle.discard(self.name)
                    self._dispatch(messages)
                elif self.options.burst and await self._drained():
                    break
        finally:
            stop.cancel()
            # Reached on a cancellation too (a second signal): the rule then skips the grace
            # period but still gives the messages back, and re-raises the cancellation.
            try:
                await self._shutdown(receive)
            finally:
                if self.settling:  # verdicts still being applied (`_settle_behind`), bounded
                    await asyncio.wait(set(self.settling), timeout=RELEASE_TIMEOUT_S)
                await self.batcher.close()
        self.burst.end(self.report, [] if self.gave_up is None else [self.gave_up])

    async def _receive(self) -> list[InboundMessage]:
        batch = self.processor.options.batch
        limit = batch.size if batch is not None else self.limit - len(self.running)
        # A burst worker that just received messages asks at once whether more are left (a
        # short poll) rather than waiting out a long poll at the end of the queue; after an
        # empty answer it long-polls again.
        short = self.options.burst and self.received_last
        try:
            messages = await self.api.receive(
                self.url,
                limit=limit,
                wait_seconds=0 if short else self.adapter.settings.wait_time_seconds,
                visibility_seconds=self.lease_s,
            )
        except MissingQueueError as exc:  # ends the worker: one `error:` line, exit 2
            raise MissingQueueError(f"queue {self.name!r} ({self.url}): {exc}") from None
        except BackendError as exc:
            logger.exception("%s: receiving failed; polling again shortly", self.name)
            self._call_failed(exc)
            await asyncio.sleep(_ERROR_PAUSE_S)
            return []
        self.burst.call_succeeded()
        self.received_last = bool(messages)
        if batch is not None and messages:
            try:
                messages = await self._fill_batch(messages, batch.size, batch.timeout / 1000)
            except BackendError:
                logger.exception("%s: receiving failed while filling a batch", self.name)
        return messages

    async def _fill_batch(
        self, messages: list[InboundMessage], size: int, timeout_s: float
    ) -> list[InboundMessage]:
        """Keep receiving until the batch is full or `timeout_s` after its first message."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(messages) < size and not self.options.stop.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            wait = min(int(remaining), self.adapter.settings.wait_time_seconds)
            more = await self.api.receive(
                self.url,
                limit=size - len(messages),
                wait_seconds=wait,
                visibility_seconds=self.lease_s,
            )
            messages.extend(more)
            if not more and wait == 0:
                await asyncio.sleep(min(remaining, 0.05))
        return messages

    def _call_failed(self, exc: BaseException) -> None:
        if self.burst.call_failed() and self.gave_up is None:
            self.gave_up = self.burst.gave_up(self.name, exc)
            self.options.stop.set()  # the other queues' loops end too

    def _dispatch(self, messages: list[InboundMessage]) -> None:
        held = [m for m in messages if not self.burst.delivered(self.name, m.job_id)]
        for message in held:  # left hidden for the lease; it comes back, and is held again
            logger.warning(
                "burst: %s job %s was received again with no verdict stored; held, not run",
                self.name,
                message.job_id,
            )
        messages = [m for m in messages if m not in held]
        if not messages:
            return
        if self.processor.is_batch:
            self._spawn(self._run_batch, messages)
            return
        if is_fifo(self.url):
            # One receive may hold several messages of one group: run them one after the
            # other, or a later one could finish while an earlier one waits for its retry.
            self._spawn(self._run_in_order, messages)
            return
        for message in messages:
            self._spawn(self._run_one, [message])

    def _spawn(self, run: Run, messages: list[InboundMessage]) -> None:
        task = asyncio.ensure_future(self._guarded(run(messages), list(messages)))
        self.running[task] = messages
        task.add_done_callback(lambda t: self.running.pop(t, None))

    async def _guarded(self, work: Awaitable[T], messages: Sequence[InboundMessage]) -> T | None:
        """A bug while handling one message must not end the loop: log it; the message comes
        back when its lease runs out."""
        try:
            return await work
        except Exception:
            ids = ", ".join(m.job_id for m in messages)
            logger.exception("%s: handling job(s) %s failed unexpectedly", self.name, ids)
            return None

    async def _to_the_end(self, work: Awaitable[T], messages: Sequence[InboundMessage]) -> T | None:
        """Apply verdicts even if a stop cancels the job's task meanwhile: the job ran, so giving
        its message back would run it again (and on a standard queue a copy of a message already
        completed would be sent). The caller has taken `messages` off its list, so a stop does
        not give them back; the shutdown waits for this instead (bounded). None if it failed."""
        task = asyncio.ensure_future(self._guarded(work, messages))
        self.settling.add(task)
        task.add_done_callback(self.settling.discard)
        return await asyncio.shield(task)

    def _settle_behind(self, work: Awaitable[Any], messages: Sequence[InboundMessage]) -> None:
        """`_to_the_end` without waiting for it: the stop rule and the end of `run` do."""
        task = asyncio.ensure_future(self._guarded(work, messages))
        self.settling.add(task)
        task.add_done_callback(self.settling.discard)

    async def _drained(self) -> bool:
        if self.running or self.settling:
            return False
        try:
            attrs = await self.api.attributes(
                self.url,
                [
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )
        except MissingQueueError:
            raise
        except BackendError as exc:
            logger.exception("%s: reading queue attributes failed", self.name)
            self._call_failed(exc)
            return False
        left = sum(int(v) for v in attrs.values() if str(v).isdigit())
        if left > self.burst.held_in(self.name):  # only held messages left: drained
            self.idle.discard(self.name)
            return False
        self.idle.add(self.name)
        return len(self.idle) >= len(self.options.processors)

    async def _heartbeat(self, messages: list[InboundMessage]) -> None:
        """Extend the lease of running messages every half lease."""
        while True:
            await asyncio.sleep(self.lease_s / 2)
            for message in list(messages):  # a FIFO run shrinks its list meanwhile
                try:
                    await self.batcher.set_visibility(
                        self.url, message.receipt_handle, self.lease_s
                    )
                except BackendError:
                    logger.warning("%s job %s: lease extension failed", self.name, message.job_id)

    async def _verdict(self, message: InboundMessage) -> tuple[Delivery, Outcome]:
        delivery, verdict = message.delivery(self.name)
        return delivery, verdict or await self.engine.run(delivery)

    async def _run_one(self, held: list[InboundMessage]) -> None:
        [message] = held
        heartbeat = asyncio.create_task(self._heartbeat([message]))
        try:
            delivery, outcome = await self._verdict(message)
        finally:
            heartbeat.cancel()
        held.clear()
        # The slot is free once the verdict is in hand: the next receive goes out while this
        # verdict's delete (batched with its neighbours') is still on its way.
        self._settle_behind(self._settle(message, delivery, outcome), [message])

    async def _run_in_order(self, held: list[InboundMessage]) -> None:
        """FIFO: one after the other; stop at the first message that is not finished and give
        the rest back at once (SQS holds the group while that one waits for its backoff, so
        they follow it). `held` shrinks to what is left, which a shutdown releases."""
        for message in list(held):
            # Every message still held keeps its lease; none while a verdict is applied, so a
            # retry's visibility (its backoff) is not overwritten.
            heartbeat = asyncio.create_task(self._heartbeat(held))
            try:
                delivery, outcome = await self._verdict(message)
            finally:
                heartbeat.cancel()
            held.remove(message)
            settled = await self._to_the_end(self._settle(message, delivery, outcome), [message])
            if settled not in FINISHED:
                break
        while held:
            await self._give_back(held.pop(0))

    async def _give_back(self, message: InboundMessage) -> None:
        try:
            await self.batcher.set_visibility(self.url, message.receipt_handle, 0)
        except BackendError:
            logger.warning("%s job %s: release failed", self.name, message.job_id)

    async def _run_batch(self, held: list[InboundMessage]) -> None:
        messages = list(held)
        decoded = [m.delivery(self.name) for m in messages]
        valid = [d for d, verdict in decoded if verdict is None]
        heartbeat = asyncio.create_task(self._heartbeat(messages))
        try:
            results = iter(await self.engine.run_batch(valid) if valid else [])
        finally:
            heartbeat.cancel()
        verdicts = [
            (message, delivery, verdict or next(results))
            for message, (delivery, verdict) in zip(messages, decoded, strict=True)
        ]
        held.clear()
        await self._to_the_end(self._apply_batch(verdicts), messages)

    async def _apply_batch(self, verdicts: list[tuple[InboundMessage, Delivery, Outcome]]) -> None:
        if is_fifo(self.url):
            await GroupHold().settle_in_order(verdicts, self._finished, self._give_back)
            return
        for message, delivery, outcome in verdicts:
            await self._settle(message, delivery, outcome)

    async def _finished(
        self, message: InboundMessage, delivery: Delivery, outcome: Outcome
    ) -> bool:
        return await self._settle(message, delivery, outcome) in FINISHED

    async def _settle(
        self, message: InboundMessage, delivery: Delivery, outcome: Outcome
    ) -> Settled | None:
        """Apply the verdict; None when that failed (the message comes back by itself)."""
        try:
            settled = await self.settler.apply(
                self.url, message, delivery, outcome, self.processor.options.dead_letter_queue
            )
            if settled in FINISHED:
                await self.batcher.delete(self.url, message.receipt_handle)
        except BackendError:
            logger.exception("%s job %s: settling failed", self.name, delivery.job_id)
            return None
        if settled in FINISHED or settled == "retried":  # a verdict is stored
            self.burst.settled(self.name, message.job_id)
        if settled == "completed":
            self.report.completed += 1
        elif settled == "retried":
            self.report.retried += 1
        elif settled == "dead_lettered":
            self.report.dead_lettered += 1
        elif settled == "failed":
            self.report.failed += 1
        return settled

    async def _shutdown(self, receive: asyncio.Task[list[InboundMessage]] | None) -> None:
        # A long poll cannot be cut short (boto3 blocks a thread): the bound allows for it.
        poll_s = self.adapter.settings.wait_time_seconds if receive is not None else 0
        await stop_tasks(
            set(self.running),
            self.options.grace_period_s,
            lambda pending: self._cancel_and_release(pending, receive),
            release_timeout_s=RELEASE_TIMEOUT_S + poll_s,
        )

    async def _cancel_and_release(
        self,
        pending: set[asyncio.Task[Any]],
        receive: asyncio.Task[list[InboundMessage]] | None,
    ) -> None:
        # The lists themselves: they shrink as verdicts reach their messages.
        held = [self.running.get(task, []) for task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.gather(*self.settling, return_exceptions=True)
        await self._release([m for messages in held for m in messages])
        if receive is not None:
            try:
                await self._release(await receive)
            except Exception:
                logger.exception("%s: the last long poll failed", self.name)

    async def _release(self, messages: list[InboundMessage]) -> None:
        for message in messages:
            try:
                if is_fifo(self.url):
                    await self.batcher.set_visibility(self.url, message.receipt_handle, 0)
                    continue
                copy = OutboundMessage(
                    queue=message.queue or self.name,
                    job_id=message.job_id,
                    body=message.body,
                    enqueued_at_ms=message.enqueued_at_ms,
                    attempts_made=message.attempt - 1,
                )
                await self.api.send(copy.send_kwargs(self.url, fifo=False))
                await self.batcher.delete(self.url, message.receipt_handle)
            except BackendError:
                logger.exception("%s job %s: release failed", self.name, message.job_id)
