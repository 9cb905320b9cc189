"""The push-consumer core: a batch the platform hands us in, one verdict per message out.

Pull backends have a worker loop (`pikku_queue.pull`); push platforms (Lambda's SQS event
source, a Cloudflare Queues consumer) call us with a batch and expect every message to be
answered. What happens to that batch is the same on every push platform, so it lives here once:

- each message becomes a `Delivery` (a body that is not JSON is dead-lettered at once as
  `invalid_payload`, before the engine, so a poison message never loops);
- single-job processors run the messages concurrently, at most `concurrency` at once; batch
  processors get the valid messages of each chunk of `batch.size` as one list, and
  `ctx.fail_item` gives that one message its own failure verdict;
- the engine's outcome (Completed / Retry after N ms / DeadLetter) goes to the adapter's
  `settle`, which turns it into the platform's verbs (delete, ack, change visibility, retry,
  send to the dead-letter queue) and says whether the message is now finished;
- `ordered=True` (a FIFO queue) keeps each group in order: within a group the messages run one
  after another, and from the group's first message that is not finished on (retried, crashed,
  or its settle failed), every later message of that group is given back unrun (`give_back`)
  and runs again after it; other groups go on. A message without a group shares one group with
  every other such message;
- the attempt timeout is the processor's `timeout` or `remaining_ms()` (the invocation's time
  left, less the adapter's margin), whichever is less.

An adapter only supplies `PushMessage`s and a `PushSink`; `PushResult.finished` tells it which
messages are done (Lambda reports the others in `batchItemFailures`, Cloudflare retries a
message the sink did not answer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from pikku_queue.engine import Engine
from pikku_queue.outcomes import DeadLetter, Delivery, ErrorInfo, Outcome
from pikku_queue.payloads import UndecodablePayload, decode_payload

logger = logging.getLogger("pikku_queue.push")

M = TypeVar("M")


@dataclass(frozen=True)
class PushMessage:
    """One message as the platform delivered it."""

    #: The platform's id of this delivery (Lambda's messageId, Cloudflare's message.id).
    message_id: str
    #: JSON text (str or bytes) when `json_text`, else the already decoded value.
    body: Any
    #: 1-based: the first delivery is attempt 1.
    attempt: int
    enqueued_at_ms: int
    #: Our job id when the message carries one (else the message id).
    job_id: str | None = None
    #: FIFO message group (only looked at when the batch is `ordered`).
    group: str | None = None
    json_text: bool = True
    #: The platform's own message object, for the sink to answer.
    handle: Any = None
    #: The enqueue's W3C trace context, when the message carries one (`pikku_queue.tracing`).
    trace_context: Mapping[str, str] | None = None
    #: Why the platform adapter's reader refused one of the message's fields other than the
    #: body (`pikku_queue.fields`): the engine dead-letters it as `invalid_record`.
    record_error: ErrorInfo | None = None

    def delivery(self, queue: str) -> tuple[Delivery, DeadLetter | None]:
        """The delivery for the engine, or (a body that is not JSON) the verdict at once."""
        verdict: DeadLetter | None = None
        payload: Any = self.body
        refused: UndecodablePayload | None = None
        if self.json_text:
            try:
                payload = decode_payload(self.body)
            except UndecodablePayload as exc:  # not JSON, NaN/Infinity, a lone surrogate:
                payload, refused = exc.stored, exc  # the engine dead-letters it
            except TypeError as exc:  # a body that is neither text nor bytes
                verdict = DeadLetter("invalid_payload", ErrorInfo.from_exception(exc))
        delivery = Delivery(
            job_id=self.job_id or self.message_id,
            queue=queue,
            payload=payload,
            attempt=max(self.attempt, 1),
            enqueued_at_ms=self.enqueued_at_ms,
            payload_encoding="json" if refused is None else refused.encoding,
            payload_error=None if refused is None else refused.error,
            trace_context=self.trace_context,
            record_error=self.record_error,
        )
        return delivery, verdict


class PushSink(Protocol):
    """The platform side: applies verdicts to the real messages."""

    async def settle(self, message: PushMessage, delivery: Delivery, outcome: Outcome) -> bool:
        """Apply `outcome`; True when the message is finished (deleted or acked for good)."""
        ...

    async def give_back(self, message: PushMessage) -> None:
        """Hand a message back unrun, to come again at once (a FIFO group held behind an
        unfinished message)."""
        ...


#: What became of one message: settled (`finished` says whether for good), given back unrun
#: (FIFO hold), or crashed (an error outside the processor; nothing was applied).
State = Literal["settled", "given_back", "crashed"]


@dataclass(frozen=True)
class PushVerdict:
    message: PushMessage
    state: State
    outcome: Outcome | None = None
    finished: bool = False


@dataclass
class PushResult:
    verdicts: list[PushVerdict] = field(default_factory=list)

    @property
    def unfinished(self) -> list[PushMessage]:
        return [v.message for v in self.verdicts if not v.finished]

    def count(self, kind: str) -> int:
        """How many verdicts were `completed`, `retry`, `dead_letter`, `given_back`, `crashed`."""
        return sum(
            1
            for v in self.verdicts
            if (v.outcome.kind if v.outcome is not None else v.state) == kind
        )


async def consume(
    engine: Engine,
    messages: Sequence[PushMessage],
    sink: PushSink,
    *,
    ordered: bool = False,
    remaining_ms: Callable[[], int | None] | None = None,
) -> PushResult:
    """Run one queue's messages of a pushed batch; one verdict per message, in input order."""
    if remaining_ms is not None:
        engine.timeout_cap_ms = remaining_ms
    run = _Run(engine, sink, ordered)
    if engine.processor.is_batch:
        verdicts = await run.batches(messages)
    elif ordered:
        verdicts = await run.by_group(messages)
    else:
        verdicts = await run.concurrently(messages)
    by_id = {id(v.message): v for v in verdicts}
    return PushResult([by_id[id(m)] for m in messages])


def _group(message: PushMessage) -> str | None:
    return message.group


@dataclass
class _Run:
    engine: Engine
    sink: PushSink
    ordered: bool
    #: FIFO groups held in this batch (shared by a batch processor's chunks).
    hold: GroupHold[PushMessage] = field(default_factory=lambda: GroupHold(_group))

    @property
    def queue(self) -> str:
        return self.engine.processor.name

    async def _settle(self, message: PushMessage, delivery: Delivery, outcome: Outcome) -> bool:
        try:
            return await self.sink.settle(message, delivery, outcome)
        except Exception:
            logger.exception("%s job %s: settling failed", self.queue, delivery.job_id)
            return False

    async def _give_back(self, message: PushMessage) -> PushVerdict:
        try:
            await self.sink.give_back(message)
        except Exception:
            logger.warning("%s: could not give back message %s", self.queue, message.message_id)
        return PushVerdict(message, "given_back")

    async def one(self, message: PushMessage) -> PushVerdict:
        try:
            delivery, verdict = message.delivery(self.queue)
            outcome = verdict or await self.engine.run(delivery)
        except Exception:
            logger.exception("%s: message %s crashed the consumer", self.queue, message.message_id)
            return PushVerdict(message, "crashed")
        finished = await self._settle(message, delivery, outcome)
        return PushVerdict(message, "settled", outcome, finished)

    async def concurrently(self, messages: Sequence[PushMessage]) -> list[PushVerdict]:
        slots = asyncio.Semaphore(self.engine.processor.options.concurrency)

        async def guarded(message: PushMessage) -> PushVerdict:
            async with slots:
                return await self.one(message)

        return list(await asyncio.gather(*(guarded(m) for m in messages)))

    async def by_group(self, messages: Sequence[PushMessage]) -> list[PushVerdict]:
        """FIFO, single-job processor: each group in order, groups side by side."""
        groups: dict[str | None, list[PushMessage]] = {}
        for message in messages:
            groups.setdefault(message.group, []).append(message)
        slots = asyncio.Semaphore(self.engine.processor.options.concurrency)

        async def in_order(group: list[PushMessage]) -> list[PushVerdict]:
            verdicts: list[PushVerdict] = []
            for index, message in enumerate(group):
                async with slots:
                    verdict = await self.one(message)
                verdicts.append(verdict)
                if not verdict.finished:
                    for later in group[index + 1 :]:
                        verdicts.append(await self._give_back(later))
                    break
            return verdicts

        done = await asyncio.gather(*(in_order(g) for g in groups.values()))
        return [v for group in done for v in group]

    async def batches(self, messages: Sequence[PushMessage]) -> list[PushVerdict]:
        batch = self.engine.processor.options.batch
        size = batch.size if batch is not None else len(messages)
        verdicts: list[PushVerdict] = []
        for start in range(0, len(messages), max(size, 1)):
            verdicts.extend(await self._batch(messages[start : start + size]))
        return verdicts

    async def _batch(self, messages: Sequence[PushMessage]) -> list[PushVerdict]:
        hold = self.hold if self.ordered else None
        verdicts: dict[int, PushVerdict] = {}
        if hold is not None:
            for message in messages:
                if hold.held(message):
                    verdicts[id(message)] = await self._give_back(message)
            messages = [m for m in messages if not hold.held(m)]
        decoded = [m.delivery(self.queue) for m in messages]
        valid = [d for d, verdict in decoded if verdict is None]
        try:
            outcomes = iter(await self.engine.run_batch(valid) if valid else [])
        except Exception:
            logger.exception("%s: the batch crashed the consumer", self.queue)
            for message in messages:
                if hold is not None:
                    hold.hold(message)
                verdicts[id(message)] = PushVerdict(message, "crashed")
            return list(verdicts.values())
        results = [
            (message, delivery, verdict or next(outcomes))
            for message, (delivery, verdict) in zip(messages, decoded, strict=True)
        ]

        async def settle(message: PushMessage, delivery: Delivery, outcome: Outcome) -> bool:
            finished = await self._settle(message, delivery, outcome)
            verdicts[id(message)] = PushVerdict(message, "settled", outcome, finished)
            return finished

        async def give_back(message: PushMessage) -> None:
            verdicts[id(message)] = await self._give_back(message)

        if hold is not None:
            await hold.settle_in_order(results, settle, give_back)
        else:
            for message, delivery, outcome in results:
                await settle(message, delivery, outcome)
        return list(verdicts.values())


class GroupHold(Generic[M]):
    """The FIFO rule for a batch processor's verdicts, the one home for every SQS consumer
    (the Lambda handler through this core, the long-poll worker through `adapters.sqs.fifo`).

    A batch processor runs a whole batch in one call, so a later message of a group may finish
    while an earlier one of the same group fails; settling it would let it overtake. So
    verdicts are applied in receive order, and at the first message of a group that is not
    finished (retried, crashed, or its settle failed) the group is held: every later message
    of that group is given back unsettled and runs again, after it (at-least-once). Other
    groups go on. One hold spans the processor calls of one received batch."""

    def __init__(self, group_of: Callable[[M], str | None]) -> None:
        self._group_of = group_of
        self._held: set[str | None] = set()

    def held(self, message: M) -> bool:
        return self._group_of(message) in self._held

    def hold(self, message: M) -> None:
        self._held.add(self._group_of(message))

    async def settle_in_order(
        self,
        verdicts: Iterable[tuple[M, Delivery, Outcome]],
        settle: Callable[[M, Delivery, Outcome], Awaitable[bool]],
        give_back: Callable[[M], Awaitable[None]],
    ) -> list[M]:
        """Apply the verdicts under the rule; return the messages not finished."""
        unfinished: list[M] = []
        for message, delivery, outcome in verdicts:
            if self.held(message):
                await give_back(message)
                unfinished.append(message)
            elif not await settle(message, delivery, outcome):
                self.hold(message)
                unfinished.append(message)
        return unfinished
