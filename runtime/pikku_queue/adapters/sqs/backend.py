"""The SQS backend: producer, monitor counts, dead letters, and a long-poll worker.

`sqs://?…` URLs are described in `sqs.config`; the seed's explicit form is
`SQSQueueAdapter(queue_url=…, region=…, credentials={"accessKeyId": …, "secretAccessKey": …})`.
What SQS cannot do is refused or reported rather than faked: no priority (logged once per
queue and ignored: the generator already warned), no job lookup or results (SQS cannot read a
message by id), delays up to 900 s, messages up to 1 MiB, and job_id deduplication only on
FIFO queues (SQS's MessageDeduplicationId, a 5-minute window): a job_id for a standard queue is
refused rather than silently not deduplicated. `Dedupe(mode="drop")` is the same mechanism, the
key (hashed) as the deduplication id and the job id.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pikku_queue import tracing
from pikku_queue.adapters.sqs import BACKEND
from pikku_queue.adapters.sqs.batch import send_all
from pikku_queue.adapters.sqs.client import SQSApi, is_fifo
from pikku_queue.adapters.sqs.config import SQSSettings, parse_url
from pikku_queue.adapters.sqs.long_poll import run_long_poll_worker
from pikku_queue.adapters.sqs.messages import InboundMessage, OutboundMessage, encode_body
from pikku_queue.adapters.sqs.settle import Settler, SettleStats
from pikku_queue.backend import WorkerOptions, WorkerReport
from pikku_queue.capabilities import Capabilities
from pikku_queue.errors import BackendError, PartialEnqueueError
from pikku_queue.outcomes import ErrorInfo
from pikku_queue.payloads import dump_payload, raw_original
from pikku_queue.records import DeadLetterRecord, EnqueueRequest, FinishedJob, JobInfo, QueueCounts

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger("pikku_queue.sqs")

#: The keys of `DeadLetterRecord.as_payload()`: a DLQ message with all of them is our record.
_ENVELOPE_KEYS = frozenset(
    {"queue", "job_id", "payload", "attempts", "reason", "error", "failed_at_ms"}
)
#: How long records stay hidden while `dead_letters` or `replay` reads through a DLQ.
_PEEK_VISIBILITY_S = 30


def _url_of(settings: SQSSettings) -> str:
    """An `sqs://` URL naming where the seed's explicit form points, for messages and logs
    (never credentials: they are not settings)."""
    named = (
        ("region", settings.region),
        ("endpoint_url", settings.endpoint_url),
        ("prefix", settings.prefix),
    )
    query = urlencode([(key, value) for key, value in named if value])
    return f"sqs://?{query}" if query else "sqs://"


class SQSQueueAdapter:
    """A `Backend` over Amazon SQS (or anything speaking its API: moto, ElasticMQ)."""

    capabilities: Capabilities = BACKEND.capabilities

    def __init__(
        self,
        queue_url: str | None = None,
        *,
        region: str | None = None,
        credentials: Mapping[str, str] | None = None,
        endpoint_url: str | None = None,
        queue_urls: Mapping[str, str] | None = None,
        wait_time_seconds: int | None = None,
        group_key: str | None = None,
        create_queues: bool | None = None,
        settings: SQSSettings | None = None,
        client: SQSClient | None = None,
        url: str | None = None,
    ) -> None:
        """`queue_url` is the seed's one `queueUrl`: here a prefix that a queue's name completes
        (`https://sqs.us-east-1.amazonaws.com/123456789012/` or `…/123456789012/shop-`)."""
        base = settings or SQSSettings()
        self.settings = SQSSettings(
            region=region or base.region,
            endpoint_url=endpoint_url or base.endpoint_url,
            prefix=queue_url if queue_url is not None else base.prefix,
            queue_urls=MappingProxyType({**base.queue_urls, **(queue_urls or {})}),
            wait_time_seconds=(
                wait_time_seconds if wait_time_seconds is not None else base.wait_time_seconds
            ),
            group_key=group_key or base.group_key,
            create_queues=create_queues if create_queues is not None else base.create_queues,
        )
        self.url = url or _url_of(self.settings)
        self.api = SQSApi(self.settings, credentials=credentials, client=client)
        self.stats = SettleStats()
        self.settler = Settler(self.api, self.stats)
        #: queue → its processor's dead_letter_queue, learnt when a worker starts.
        self.dead_letter_names: dict[str, str | None] = {}
        self._priority_warned: set[str] = set()

    # -- producer ---------------------------------------------------------------------------

    async def enqueue(self, request: EnqueueRequest) -> str:
        job_id, url, message = await self._outbound(request)
        await self.api.send(
            message.send_kwargs(url, fifo=is_fifo(url), group_id=self._group(request.payload))
        )
        return job_id

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[str]:
        """SendMessageBatch per queue, at most 10 messages and 1 MiB a call. Every message is
        checked before anything is sent; a message SQS refuses is reported for its own job in
        a `PartialEnqueueError` (the others are sent), never dropped."""
        prepared = [await self._outbound(request) for request in requests]
        by_url: dict[str, list[int]] = {}
        entries: list[dict[str, Any]] = []
        for index, (request, (_, url, message)) in enumerate(zip(requests, prepared, strict=True)):
            kwargs = message.send_kwargs(
                url, fifo=is_fifo(url), group_id=self._group(request.payload)
            )
            del kwargs["QueueUrl"]
            entries.append(kwargs)
            by_url.setdefault(url, []).append(index)
        failures: dict[int, str] = {}
        for url, indexes in by_url.items():
            failed = await send_all(
                self.api,
                url,
                [entries[i] for i in indexes],
                [prepared[i][2].size_bytes() for i in indexes],
            )
            failures.update({indexes[i]: reason for i, reason in failed.items()})
        job_ids = [job_id for job_id, _, _ in prepared]
        if failures:
            raise PartialEnqueueError(
                [None if i in failures else job_id for i, job_id in enumerate(job_ids)], failures
            )
        return job_ids

    async def _outbound(self, request: EnqueueRequest) -> tuple[str, str, OutboundMessage]:
        """The job id, queue URL and message of a request; raises for what SQS cannot take."""
        if request.repeat is not None:
            raise BackendError(
                f"SQS holds no schedules, so a repeating job for {request.queue!r} cannot be "
                "enqueued; schedule it with EventBridge Scheduler sending to the queue"
            )
        if request.priority is not None and request.queue not in self._priority_warned:
            self._priority_warned.add(request.queue)
            logger.warning("SQS has no message priority; priority of %r ignored", request.queue)
        url = await self.api.queue_url(request.queue)
        if request.job_id is not None and not is_fifo(url):
            raise BackendError(
                f"queue {request.queue!r} is a standard SQS queue, which cannot deduplicate by "
                "job_id; use a FIFO queue (name ending in .fifo) for job_id deduplication"
            )
        deduplication_id = None
        if request.dedupe_key is not None:
            if not is_fifo(url):
                raise BackendError(
                    f"queue {request.queue!r} is a standard SQS queue, which cannot deduplicate;"
                    " use a FIFO queue (name ending in .fifo) for dedupe="
                )
            # SQS's MessageDeduplicationId holds the key (hashed: any text fits in its 128
            # ASCII characters); the job id is derived from it too, so a job SQS drops has
            # the first one's id, which its handle then points to.
            deduplication_id = dedupe_id(request.dedupe_key)
        job_id = request.job_id or deduplication_id or uuid.uuid4().hex
        message = OutboundMessage(
            queue=request.queue,
            job_id=job_id,
            body=dump_payload(request.queue, request.payload, ascii=True),
            enqueued_at_ms=int(time.time() * 1000),
            delay_ms=request.delay_ms,
            deduplication_id=deduplication_id,
            trace_context=request.trace_context,
        )
        return job_id, url, message

    def _group(self, payload: Any) -> str | None:
        """FIFO MessageGroupId: the payload's `group_key` field (None: the queue's name)."""
        key = self.settings.group_key
        if key and isinstance(payload, dict) and payload.get(key) is not None:
            return str(payload[key])[:128]
        return None

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """Always None: SQS cannot look a message up by id, and it keeps no results."""
        return None

    # -- monitor ----------------------------------------------------------------------------

    async def counts(self, queue: str) -> QueueCounts:
        """Waiting, in flight (active, and retries hidden for their backoff) and delayed come
        from GetQueueAttributes (approximate, as SQS says); completed and failed are what this
        process settled; dead_lettered is the depth of the queue's DLQ."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attrs = await self.api.attributes(await self.api.queue_url(queue), names)
        dead = self.stats.count(queue, "dead_lettered")
        dlq_url = await self.api.dead_letter_url(queue, self.dead_letter_names.get(queue))
        if dlq_url is not None:
            dlq_attrs = await self.api.attributes(dlq_url, names[:2])
            dead = sum(int(v) for v in dlq_attrs.values())
        return QueueCounts(
            waiting=int(attrs.get(names[0], "0")),
            active=int(attrs.get(names[1], "0")),
            delayed=int(attrs.get(names[2], "0")),
            completed=self.stats.count(queue, "completed"),
            failed=self.stats.count(queue, "failed"),
            dead_lettered=dead,
        )

    async def finished_since(self, queue: str, since_ms: int) -> list[FinishedJob]:
        return [f for f in self.stats.finished.get(queue, ()) if f.finished_at_ms >= since_ms]

    # -- dead letters -----------------------------------------------------------------------

    async def _read_dlq(
        self, dlq: str, limit: int
    ) -> tuple[str, list[tuple[InboundMessage, DeadLetterRecord]]]:
        """Receive up to `limit` records (hidden for a while; callers make them visible again
        or delete them)."""
        url = await self.api.queue_url(dlq)
        seen: dict[str, tuple[InboundMessage, DeadLetterRecord]] = {}
        wait = 1 if self.settings.wait_time_seconds else 0
        while len(seen) < limit:
            batch = await self.api.receive(
                url,
                limit=min(10, limit - len(seen)),
                wait_seconds=wait,
                visibility_seconds=_PEEK_VISIBILITY_S,
            )
            fresh = [m for m in batch if m.message_id not in seen]
            if not fresh:
                break
            for message in fresh:
                seen[message.message_id] = (message, _record_of(dlq, message))
        return url, list(seen.values())

    async def dead_letters(self, dlq: str, limit: int = 100) -> list[DeadLetterRecord]:
        url, records = await self._read_dlq(dlq, limit)
        for message, _ in records:
            await self.api.set_visibility(url, message.receipt_handle, 0)
        return sorted((r for _, r in records), key=lambda r: (r.failed_at_ms, r.id))

    async def replay(self, dlq: str, ids: Sequence[str] | None = None) -> int:
        """Send records back to their queue with a fresh attempt count, then delete them."""
        wanted = None if ids is None else set(ids)
        url, records = await self._read_dlq(dlq, 100_000)
        replayed = 0
        for message, record in records:
            if (wanted is not None and record.id not in wanted) or not record.queue:
                await self.api.set_visibility(url, message.receipt_handle, 0)
                continue
            raw = raw_original(record.payload_encoding, record.payload)
            if isinstance(raw, bytes):  # only another backend's record can hold such bytes
                logger.warning(
                    "record %s of %s is kept: its payload is bytes that are not UTF-8, which"
                    " no SQS message body can hold",
                    record.id,
                    dlq,
                )
                await self.api.set_visibility(url, message.receipt_handle, 0)
                continue
            target = await self.api.queue_url(record.queue)
            outbound = OutboundMessage(
                queue=record.queue,
                job_id=record.job_id,
                # A payload the engine could not read goes back as it was, not as JSON text.
                body=encode_body(record.payload) if raw is None else raw,
                enqueued_at_ms=int(time.time() * 1000),
                # Not the job id: on a FIFO queue SQS would drop the replay as a duplicate of
                # the original send for 5 minutes (and report success), losing the job.
                deduplication_id=f"replay-{message.message_id}",
            )
            kwargs = outbound.send_kwargs(
                target, fifo=is_fifo(target), group_id=self._group(record.payload)
            )
            await self.api.send(kwargs)
            await self.api.delete(url, message.receipt_handle)
            replayed += 1
        return replayed

    # -- worker -----------------------------------------------------------------------------

    async def run_worker(self, options: WorkerOptions) -> WorkerReport:
        for processor in options.processors:
            self.dead_letter_names[processor.name] = processor.options.dead_letter_queue
        tracing.set_system(self.url)
        return await run_long_poll_worker(self, options)

    async def close(self) -> None:
        self.api.close()


#: The name the runtime's other backends use for a backend class.
SQSBackend = SQSQueueAdapter


def _record_of(dlq: str, message: InboundMessage) -> DeadLetterRecord:
    """A DLQ message as a record: our envelope, or a raw job SQS's redrive policy moved there
    (it kept our attributes, so its queue and job id are known)."""
    try:
        body: Any = message.payload()
    except ValueError:
        body = message.body
    if isinstance(body, dict) and (
        (message.queue in (None, dlq) and {"queue", "job_id"} <= set(body))
        or _ENVELOPE_KEYS.issubset(body)
    ):
        try:
            return DeadLetterRecord.from_payload(message.message_id, body)
        except (TypeError, ValueError, AttributeError):  # a look-alike: listed as a raw job
            pass
    return DeadLetterRecord(
        id=message.message_id,
        queue=message.queue or "",
        job_id=message.job_id,
        payload=body,
        attempts=message.attempts_made,
        reason="stalled",
        error=ErrorInfo(
            type="Redriven",
            message="moved here by the queue's redrive policy after maxReceiveCount receives "
            "without a verdict (the consumer crashed or timed out)",
        ),
        failed_at_ms=message.sent_at_ms,
    )


def from_url(url: str) -> SQSQueueAdapter:
    return SQSQueueAdapter(settings=parse_url(url), url=url)


def dedupe_id(key: str) -> str:
    """The MessageDeduplicationId (and job id) of a `Dedupe` key: SQS allows 128 ASCII
    characters there, a key may hold any text."""
    return "dedupe-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
