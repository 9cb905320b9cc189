"""The engine's verdict in SQS verbs, shared by the long-poll worker and the Lambda handler.

    Completed   → done: the worker deletes the message, Lambda deletes what is not reported
    Retry       → ChangeMessageVisibility(backoff): the message reappears when the backoff ends;
                  not done (the worker leaves it, Lambda reports it in batchItemFailures)
    DeadLetter  → DeadLetterRecord.as_payload() sent to the dead-letter queue, then done; with
                  no dead-letter queue anywhere the job is dropped and counted failed, and so
                  is a job whose record fits no message in any form of the total writer
                  (`payloads.dead_letter_forms`): nothing redelivers a job for a record

Completed/failed counters live here, in the process that settles jobs (a worker, or one Lambda
container): SQS itself keeps no history, so `counts()` reports what this process saw.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from pikku_queue.adapters.sqs.client import SQSApi, is_fifo
from pikku_queue.adapters.sqs.config import MAX_MESSAGE_BYTES, MAX_VISIBILITY_SECONDS
from pikku_queue.adapters.sqs.messages import InboundMessage, OutboundMessage
from pikku_queue.errors import BackendError
from pikku_queue.outcomes import Cancelled, Completed, DeadLetter, Delivery, Outcome, Retry
from pikku_queue.payloads import dead_letter_forms
from pikku_queue.records import DeadLetterRecord, FinishedJob, is_dead_letter_record

logger = logging.getLogger("pikku_queue.sqs")

#: How many finished jobs per queue are kept for `finished_since` (throughput figures).
FINISHED_HISTORY = 10_000


@dataclass
class SettleStats:
    """What this process settled, per queue."""

    counters: dict[str, Counter[str]] = field(default_factory=dict)
    finished: dict[str, deque[FinishedJob]] = field(default_factory=dict)

    def record(self, queue: str, outcome: str, delivery: Delivery | None = None) -> None:
        self.counters.setdefault(queue, Counter())[outcome] += 1
        if delivery is not None and outcome in ("completed", "dead_lettered", "failed"):
            history = self.finished.setdefault(queue, deque(maxlen=FINISHED_HISTORY))
            history.append(
                FinishedJob(
                    enqueued_at_ms=delivery.enqueued_at_ms,
                    finished_at_ms=int(time.time() * 1000),
                    succeeded=outcome == "completed",
                )
            )

    def count(self, queue: str, outcome: str) -> int:
        return self.counters.get(queue, Counter())[outcome]


def retry_visibility_seconds(delay_ms: int) -> int:
    seconds = math.ceil(delay_ms / 1000) if delay_ms > 0 else 0
    if seconds > MAX_VISIBILITY_SECONDS:
        logger.warning(
            "retry backoff of %d ms exceeds SQS's longest visibility timeout; using %d s",
            delay_ms,
            MAX_VISIBILITY_SECONDS,
        )
    return min(seconds, MAX_VISIBILITY_SECONDS)


#: What became of a message: `completed`, `dead_lettered` and `failed` (no DLQ anywhere) are
#: finished and deleted; `retried` waits for its backoff; `kept` (the DLQ send failed) comes
#: back after its visibility timeout.
Settled = Literal["completed", "retried", "dead_lettered", "failed", "kept"]
FINISHED: frozenset[Settled] = frozenset({"completed", "dead_lettered", "failed"})


class Settler:
    """Applies outcomes for messages of one SQS endpoint."""

    def __init__(
        self,
        api: SQSApi,
        stats: SettleStats,
        set_visibility: Callable[[str, str, int], Awaitable[None]] | None = None,
    ) -> None:
        """`set_visibility`: how a retry hides its message (the long-poll worker batches
        these; by default one ChangeMessageVisibility each)."""
        self.api = api
        self.stats = stats
        self.set_visibility = set_visibility or api.set_visibility

    async def apply(
        self,
        queue_url: str,
        message: InboundMessage,
        delivery: Delivery,
        outcome: Outcome,
        dead_letter_queue: str | None,
    ) -> Settled:
        """Apply `outcome`; the result says whether the message must now be deleted."""
        if isinstance(outcome, Completed):
            self.stats.record(delivery.queue, "completed", delivery)
            return "completed"
        if isinstance(outcome, Retry):
            seconds = retry_visibility_seconds(outcome.delay_ms)
            await self.set_visibility(queue_url, message.receipt_handle, seconds)
            self.stats.record(delivery.queue, "retried")
            return "retried"
        if isinstance(outcome, Cancelled):
            # Not reached while SQS declares no `cancel_running` (its workers pass the engine
            # no cancel signal); were it, the message ends, never retried nor dead-lettered.
            self.stats.record(delivery.queue, "cancelled")
            return "failed"
        return await self._dead_letter(message, delivery, outcome, dead_letter_queue)

    async def _dead_letter(
        self,
        message: InboundMessage,
        delivery: Delivery,
        outcome: DeadLetter,
        dead_letter_queue: str | None,
    ) -> Settled:
        dlq_url = None
        if not is_dead_letter_record(delivery.payload):  # a record is never dead-lettered again
            dlq_url = await self.api.dead_letter_url(delivery.queue, dead_letter_queue)
        if dlq_url is None:
            logger.error(
                "%s job %s failed for good (%s) and the queue has no dead-letter queue; dropped",
                delivery.queue,
                delivery.job_id,
                outcome.reason,
            )
            self.stats.record(delivery.queue, "failed", delivery)
            return "failed"
        dlq_name = dead_letter_queue or self.api.settings.our_name(dlq_url.rsplit("/", 1)[-1])
        outbound = _record_message(dlq_name, message, delivery, outcome)
        if outbound is None:
            logger.error(
                "%s job %s failed for good (%s) and its dead-letter record fits no SQS message"
                " (1 MiB); dropped as failed",
                delivery.queue,
                delivery.job_id,
                outcome.reason,
            )
            self.stats.record(delivery.queue, "failed", delivery)
            return "failed"
        try:
            await self.api.send(
                outbound.send_kwargs(dlq_url, fifo=is_fifo(dlq_url), group_id=dlq_name)
            )
        except BackendError:
            # Not deleting keeps the job: it comes back, and the queue's redrive policy (the
            # SAM template sets one) moves it to the DLQ after maxReceiveCount receives.
            logger.exception(
                "%s job %s: sending to the DLQ failed", delivery.queue, delivery.job_id
            )
            return "kept"
        self.stats.record(delivery.queue, "dead_lettered", delivery)
        return "dead_lettered"


def _record_message(
    dlq_name: str, message: InboundMessage, delivery: Delivery, outcome: DeadLetter
) -> OutboundMessage | None:
    """The dead-letter record as a message to send: the first form of the total writer
    (`payloads.dead_letter_forms`) that fits an SQS message; None when none does."""
    record = DeadLetterRecord.sent_as_message(delivery, outcome)
    for body in dead_letter_forms(record, ascii=True):
        outbound = OutboundMessage(
            queue=dlq_name,
            job_id=delivery.job_id,
            body=body,
            enqueued_at_ms=int(time.time() * 1000),
            # On a FIFO DLQ, deduplicate by the received message: a record re-sent because the
            # delete after it failed is dropped, while the same job failing again after a
            # replay (a new message) is recorded again, even within SQS's 5-minute window.
            deduplication_id=f"dead-{message.message_id}",
        )
        if outbound.size_bytes() <= MAX_MESSAGE_BYTES:
            return outbound
    return None
