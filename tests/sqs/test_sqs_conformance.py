"""The shared conformance suite on SQS (moto). Capability skips come from the declaration. SQS
cannot look a message up by id and keeps no results, so where a scenario reads a job back, the
job is looked for where SQS does keep it, its dead-letter queue (`<queue>-dlq` in every
scenario); a job that is not there (completed, waiting) ends the scenario with a skip."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import boto3
import pytest
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import Message, sqs_backends
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter
from pikku_queue.adapters.sqs.messages import (
    ATTRIBUTE_NAMES,
    JOB_ID,
    RECEIVE_COUNT,
    SENT_TIMESTAMP,
)
from pikku_queue.backend import Backend
from pikku_queue.conformance import BackendConformance
from pikku_queue.records import JobInfo, JobState
from sqs_support import REGION

pytestmark = pytest.mark.sqs

NO_LOOKUP = "SQS cannot look a job up by id (no results store): the scenario stops here"
#: (`job` below finds dead-lettered jobs in the DLQ; anything else ends the scenario)


#: Text an SQS body or attribute value may hold (SQS refuses other code points).
SQS_TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n\r"),
    min_size=1,
    max_size=40,
)
NUMBERS = st.integers(-(2**70), 2**70).map(str) | st.floats(allow_nan=False).map(repr)
JSON_TEXT = st.builds(
    json.dumps,
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | SQS_TEXT,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=6,
    ),
)
#: A custom attribute: removed (None), a String (str) or a Binary (bytes) attribute.
ATTRIBUTE = st.none() | SQS_TEXT | NUMBERS | st.binary(min_size=1, max_size=20)
#: The system attributes, as SQS gives them: strings.
SYSTEM = SQS_TEXT | NUMBERS
SQS_FIELDS: dict[str, SearchStrategy[object]] = {
    "body": SQS_TEXT | JSON_TEXT,
    **dict.fromkeys(ATTRIBUTE_NAMES, ATTRIBUTE),
    RECEIVE_COUNT: SYSTEM,
    SENT_TIMESTAMP: SYSTEM,
}


class ShownAs(str):
    """A system attribute of a message inside moto's server, which shows it as this text
    (`str`); moto's own arithmetic on it (a receive counts +1, retention divides the sent
    time) goes on with `real`, so the server itself keeps working."""

    real: float = 0

    def __add__(self, other: object) -> ShownAs:  # type: ignore[override]
        return self

    def __truediv__(self, other: float) -> float:
        return self.real / other

    def __rsub__(self, other: float) -> float:
        return other - self.real

    def __sub__(self, other: float) -> float:
        return self.real - other


def moto_message(backend: SQSQueueAdapter, url: str, job_id: str) -> tuple[Any, Message]:
    """The queue and the message carrying `job_id`, inside the in-process moto server."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[url.rsplit("/", 1)[-1]]
    for message in queue._messages:
        if message.message_attributes.get(JOB_ID, {}).get("StringValue") == job_id:
            return queue, message
    raise AssertionError(f"no message carries job {job_id}")


class TestSQSConformance(BackendConformance):
    lease_ms = 2_000
    #: Each example is a burst worker on moto ending with a long poll (about 2 s).
    stored_field_examples = 2
    stored_field_examples_slow = 20

    @pytest.fixture
    def dedupe_queue(self, queue: str) -> str:
        """Only FIFO queues deduplicate."""
        return f"{queue}.fifo"

    @pytest.fixture
    async def backend(self, moto_endpoint: str) -> AsyncIterator[SQSQueueAdapter]:
        adapter = SQSQueueAdapter(
            region=REGION, endpoint_url=moto_endpoint, wait_time_seconds=1, create_queues=True
        )
        yield adapter
        await adapter.close()

    async def inject_raw(self, backend: Backend, queue: str, raw: str | bytes) -> str:
        """A raw boto3 send: a body with no pikku attributes, as any SQS producer sends it."""
        if isinstance(raw, bytes):
            pytest.skip("an SQS message body is Unicode text: it cannot hold bytes like these")
        assert isinstance(backend, SQSQueueAdapter)
        url = await backend.api.queue_url(queue)
        client = boto3.client("sqs", region_name=REGION, endpoint_url=backend.settings.endpoint_url)
        return str(client.send_message(QueueUrl=url, MessageBody=raw)["MessageId"])

    async def stored_raw(self, backend: Backend, queue: str, job_id: str) -> bytes:
        """The body of the waiting message carrying `job_id` (a raw boto3 receive)."""
        assert isinstance(backend, SQSQueueAdapter)
        url = await backend.api.queue_url(queue)
        client = boto3.client("sqs", region_name=REGION, endpoint_url=backend.settings.endpoint_url)
        reply = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        bodies = [
            m["Body"]
            for m in reply.get("Messages", [])
            if m.get("MessageAttributes", {}).get(JOB_ID, {}).get("StringValue") == job_id
        ]
        assert len(bodies) == 1, f"no single waiting message for job {job_id} in {queue}"
        return str(bodies[0]).encode("utf-8")

    def stored_fields(self) -> Mapping[str, SearchStrategy[object]]:
        return SQS_FIELDS

    async def corrupt(
        self, backend: Backend, queue: str, job_id: str, field: str, value: object
    ) -> None:
        """The body or a custom attribute: the message is taken out of the queue and sent
        again by a raw boto3 send with that one change, as a foreign producer sends it. A
        system attribute (ApproximateReceiveCount, SentTimestamp) is set inside moto's server,
        which then gives that text to every receive: SQS itself is the only writer there."""
        assert isinstance(backend, SQSQueueAdapter)
        url = await backend.api.queue_url(queue)
        sqs_queue, message = moto_message(backend, url, job_id)
        if field in (RECEIVE_COUNT, SENT_TIMESTAMP):
            shown = ShownAs(str(value))
            if field == RECEIVE_COUNT:
                message.approximate_receive_count = shown
            else:
                shown.real = float(message.sent_timestamp or 0)
                message.sent_timestamp = shown
            return
        body = message.body
        attributes = {k: dict(v) for k, v in message.message_attributes.items()}
        if field == "body":
            body = str(value)
        elif value is None:
            attributes.pop(field, None)
        elif isinstance(value, bytes):
            attributes[field] = {"DataType": "Binary", "BinaryValue": value}
        else:
            attributes[field] = {"DataType": "String", "StringValue": str(value)}
        sqs_queue._messages.remove(message)
        client = boto3.client("sqs", region_name=REGION, endpoint_url=backend.settings.endpoint_url)
        client.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)

    async def job(self, backend: Backend, queue: str, job_id: str) -> JobInfo:
        for record in await backend.dead_letters(f"{queue}-dlq"):
            if record.job_id == job_id:
                return JobInfo(
                    id=job_id,
                    queue=queue,
                    state=JobState.DEAD_LETTERED,
                    payload=record.payload,
                    attempts_made=record.attempts,
                    error=record.error,
                    enqueued_at_ms=0,
                    finished_at_ms=record.failed_at_ms,
                )
        pytest.skip(NO_LOOKUP)

    async def test_processor_default_priority_and_delay_apply(
        self, backend: Backend, queue: str
    ) -> None:
        pytest.skip(f"{NO_LOOKUP} (JobHandle.status); see test_per_message_delay")

    async def test_delayed_job_waits(self, backend: Backend, queue: str) -> None:
        pytest.skip(f"{NO_LOOKUP} (JobHandle.status); see test_per_message_delay")

    async def test_without_dead_letter_queue_the_job_fails(
        self, backend: Backend, queue: str
    ) -> None:
        pytest.skip(f"{NO_LOOKUP} (JobHandle.status)")
