"""Our jobs as SQS messages, and SQS messages (polled or from a Lambda event) as deliveries.

The body is the plain JSON payload, so any SQS consumer (or the AWS console) reads it as is;
our bookkeeping rides in message attributes, which SQS keeps through redrive:

    pikku_job_id         the job's id (SQS's MessageId changes when a message is re-sent)
    pikku_queue          our queue name (the SQS name may carry a stack prefix)
    pikku_enqueued_at    epoch ms of the original enqueue
    pikku_attempts_made  attempts spent before this message was sent (a replay resets it, a
                         release on shutdown carries it), added to ApproximateReceiveCount

A message sent by something else (no attributes) still runs: its id is the MessageId and its
enqueue time SentTimestamp. Every attribute read is decoded by the one rule
(`pikku_queue.fields`), the system ones (ApproximateReceiveCount, SentTimestamp) as SQS gives
them, as strings: a value no pikkugen writer writes (a Binary `pikku_job_id`, an
`pikku_attempts_made` that is not a count, …) never fails a receive; that one message carries
`InboundMessage.invalid`, and the engine dead-letters it as `invalid_record`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pikku_queue import fields
from pikku_queue.adapters.sqs.config import MAX_DELAY_SECONDS, MAX_MESSAGE_BYTES
from pikku_queue.errors import BackendError, InvalidEnqueueOptionsError
from pikku_queue.outcomes import DeadLetter, Delivery, ErrorInfo
from pikku_queue.payloads import UndecodablePayload, decode_payload, dump_json

JOB_ID = "pikku_job_id"
QUEUE = "pikku_queue"
ENQUEUED_AT = "pikku_enqueued_at"
ATTEMPTS_MADE = "pikku_attempts_made"
#: The W3C trace context of the enqueue (`pikku_queue.tracing`), when it has one.
TRACE_ATTRIBUTES = ("traceparent", "tracestate")
ATTRIBUTE_NAMES = (JOB_ID, QUEUE, ENQUEUED_AT, ATTEMPTS_MADE, *TRACE_ATTRIBUTES)
#: The system attributes a receive asks for and reads.
RECEIVE_COUNT = "ApproximateReceiveCount"
SENT_TIMESTAMP = "SentTimestamp"


def encode_body(payload: Any) -> str:
    """A dead-letter record's body: `dump_json`, ASCII only (SQS rejects some Unicode code
    points in bodies, escapes pass), a lone surrogate of an error message escaped (see
    `dump_json`). A job's body is written by `dump_payload(..., ascii=True)` at enqueue."""
    return dump_json(payload, ascii=True, escape_lone_surrogates=True)


def delay_seconds(delay_ms: int) -> int:
    """DelaySeconds for a delay in ms, rounded up (a job never runs early)."""
    seconds = math.ceil(delay_ms / 1000) if delay_ms > 0 else 0
    if seconds > MAX_DELAY_SECONDS:
        raise InvalidEnqueueOptionsError(
            f"SQS delays a message at most {MAX_DELAY_SECONDS} s (DelaySeconds); "
            f"a delay of {delay_ms} ms cannot be sent"
        )
    return seconds


@dataclass(frozen=True)
class OutboundMessage:
    """One message to send, checked against SQS's limits before any request is made."""

    queue: str
    job_id: str
    body: str
    enqueued_at_ms: int
    attempts_made: int = 0
    delay_ms: int = 0
    #: FIFO queues: the MessageDeduplicationId, when it must not be the job id. SQS drops any
    #: message whose deduplication id it saw in the last 5 minutes (even one since deleted),
    #: so a replay, a dead-letter record or any second send of a job needs an id of its own.
    deduplication_id: str | None = None
    trace_context: Mapping[str, str] | None = None

    def attributes(self) -> dict[str, dict[str, str]]:
        attributes = {
            JOB_ID: {"DataType": "String", "StringValue": self.job_id},
            QUEUE: {"DataType": "String", "StringValue": self.queue},
            ENQUEUED_AT: {"DataType": "Number", "StringValue": str(self.enqueued_at_ms)},
            ATTEMPTS_MADE: {"DataType": "Number", "StringValue": str(self.attempts_made)},
        }
        for name in TRACE_ATTRIBUTES:
            value = (self.trace_context or {}).get(name)
            if value:
                attributes[name] = {"DataType": "String", "StringValue": value}
        return attributes

    def size_bytes(self) -> int:
        """SQS counts the body plus each attribute's name, type and value toward the limit."""
        size = len(self.body.encode())
        for name, value in self.attributes().items():
            size += len(name) + len(value["DataType"]) + len(value["StringValue"].encode())
        return size

    def send_kwargs(
        self, queue_url: str, *, fifo: bool, group_id: str | None = None
    ) -> dict[str, Any]:
        """SendMessage arguments; raises BackendError for what SQS would refuse."""
        size = self.size_bytes()
        if size > MAX_MESSAGE_BYTES:
            raise BackendError(
                f"job for queue {self.queue!r} is {size} bytes as an SQS message; SQS takes at "
                f"most {MAX_MESSAGE_BYTES} bytes (1 MiB): store the data elsewhere (S3) and "
                "send a reference"
            )
        kwargs: dict[str, Any] = {
            "QueueUrl": queue_url,
            "MessageBody": self.body,
            "MessageAttributes": self.attributes(),
        }
        seconds = delay_seconds(self.delay_ms)
        if fifo:
            if seconds:
                raise BackendError(
                    f"queue {self.queue!r} is a FIFO queue: SQS allows no per-message delay "
                    "there (set DelaySeconds on the queue instead)"
                )
            kwargs["MessageGroupId"] = group_id or self.queue
            kwargs["MessageDeduplicationId"] = (self.deduplication_id or self.job_id)[:128]
        elif seconds:
            kwargs["DelaySeconds"] = seconds
        return kwargs


@dataclass(frozen=True)
class InboundMessage:
    """A received message, the same whether ReceiveMessage or a Lambda event delivered it."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at_ms: int
    attributes: Mapping[str, str]
    #: The SQS queue it came from, when known (a Lambda record's eventSourceARN).
    source_arn: str | None = None
    #: FIFO queues: the MessageGroupId (order is kept within a group).
    group_id: str | None = None
    #: The first attribute the reader refused (`pikku_queue.fields`): the engine dead-letters
    #: the message as `invalid_record`; the values above are then defaults.
    invalid: ErrorInfo | None = None

    @classmethod
    def from_received(cls, message: Mapping[str, Any]) -> InboundMessage:
        """From one entry of ReceiveMessage's `Messages` (boto3 shape)."""
        system = message.get("Attributes") or {}
        custom = message.get("MessageAttributes") or {}
        return cls._decoded(
            message_id=str(message["MessageId"]),
            receipt_handle=str(message["ReceiptHandle"]),
            body=str(message.get("Body", "")),
            system=system,
            custom={
                k: (str(v.get("DataType", "")), v.get("StringValue", v.get("BinaryValue")))
                for k, v in custom.items()
            },
            group_id=system.get("MessageGroupId"),
        )

    @classmethod
    def from_lambda_record(cls, record: Mapping[str, Any]) -> InboundMessage:
        """From one entry of a Lambda SQS event's `Records` (camelCase keys, string values)."""
        system = record.get("attributes") or {}
        custom = record.get("messageAttributes") or {}
        return cls._decoded(
            message_id=str(record["messageId"]),
            receipt_handle=str(record["receiptHandle"]),
            body=str(record.get("body", "")),
            system=system,
            custom={
                k: (
                    str(v.get("dataType", "")),
                    v["stringValue"] if v.get("stringValue") is not None else v.get("binaryValue"),
                )
                for k, v in custom.items()
            },
            source_arn=record.get("eventSourceARN"),
            group_id=system.get("MessageGroupId"),
        )

    @classmethod
    def _decoded(
        cls,
        *,
        system: Mapping[str, Any],
        custom: Mapping[str, tuple[str, Any]],
        group_id: Any,
        **given: Any,
    ) -> InboundMessage:
        """Every attribute this module reads through `pikku_queue.fields`; the first refused
        one becomes `invalid` (and the message's values defaults), never a raise."""
        try:
            receive_count = fields.integer(RECEIVE_COUNT, system.get(RECEIVE_COUNT, "1"), minimum=1)
            sent_at_ms = fields.integer(SENT_TIMESTAMP, system.get(SENT_TIMESTAMP, "0"))
            group = fields.optional_text("MessageGroupId", group_id)
            attributes: dict[str, str] = {}
            for name in ATTRIBUTE_NAMES:
                data_type, value = custom.get(name, ("", None))
                if value is None:
                    continue
                if data_type.startswith("Binary"):
                    raise fields.InvalidRecord(name, value, "a Binary attribute, not a String")
                attributes[name] = fields.text(name, value)
                if name in (ENQUEUED_AT, ATTEMPTS_MADE):
                    fields.integer(name, value)
        except fields.InvalidRecord as exc:
            return cls(receive_count=1, sent_at_ms=0, attributes={}, invalid=exc.error, **given)
        return cls(
            receive_count=receive_count,
            sent_at_ms=sent_at_ms,
            attributes=attributes,
            group_id=group,
            **given,
        )

    @property
    def job_id(self) -> str:
        return self.attributes.get(JOB_ID) or self.message_id

    @property
    def trace_context(self) -> dict[str, str] | None:
        found = {k: self.attributes[k] for k in TRACE_ATTRIBUTES if self.attributes.get(k)}
        return found or None

    @property
    def queue(self) -> str | None:
        return self.attributes.get(QUEUE)

    @property
    def attempts_made(self) -> int:
        return _int(self.attributes.get(ATTEMPTS_MADE), 0)

    @property
    def attempt(self) -> int:
        """1-based: SQS counts every receive, so a crashed attempt counts too."""
        return self.attempts_made + max(self.receive_count, 1)

    @property
    def enqueued_at_ms(self) -> int:
        return _int(self.attributes.get(ENQUEUED_AT), self.sent_at_ms)

    def payload(self) -> Any:
        """The decoded body (`payloads.decode_payload`); raises ValueError for a body the one
        reader refuses."""
        return decode_payload(self.body)

    def delivery(self, queue: str) -> tuple[Delivery, DeadLetter | None]:
        """The delivery for the engine, and no verdict: a body the one reader refuses (not
        JSON, NaN/Infinity, a lone surrogate) rides in `Delivery.payload_error`, and the engine
        dead-letters it at once (events and counts as for any invalid payload) instead of it
        looping until redrive. (The verdict slot stays for callers that pre-decide.)"""
        refused: UndecodablePayload | None = None
        try:
            payload: Any = decode_payload(self.body)
        except UndecodablePayload as exc:  # not JSON, NaN/Infinity, a lone surrogate
            payload, refused = exc.stored, exc
        delivery = Delivery(
            job_id=self.job_id,
            queue=queue,
            payload=payload,
            attempt=self.attempt,
            enqueued_at_ms=self.enqueued_at_ms,
            payload_encoding="json" if refused is None else refused.encoding,
            payload_error=None if refused is None else refused.error,
            trace_context=self.trace_context,
            record_error=self.invalid,
        )
        return delivery, None


def queue_name_from_arn(arn: str | None) -> str | None:
    """`arn:aws:sqs:region:account:name` → `name`."""
    if not arn:
        return None
    return arn.rsplit(":", 1)[-1] or None


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
