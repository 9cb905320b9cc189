"""The shared conformance suite on SQS (moto). Capability skips come from the declaration. SQS
cannot look a message up by id and keeps no results, so where a scenario reads a job back, the
job is looked for where SQS does keep it, its dead-letter queue (`<queue>-dlq` in every
scenario); a job that is not there (completed, waiting) ends the scenario with a skip."""

from __future__ import annotations

from collections.abc import AsyncIterator

import boto3
import pytest
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter
from pikku_queue.adapters.sqs.messages import JOB_ID
from pikku_queue.backend import Backend
from pikku_queue.conformance import BackendConformance
from pikku_queue.records import JobInfo, JobState
from sqs_support import REGION

pytestmark = pytest.mark.sqs

NO_LOOKUP = "SQS cannot look a job up by id (no results store): the scenario stops here"
#: (`job` below finds dead-lettered jobs in the DLQ; anything else ends the scenario)


class TestSQSConformance(BackendConformance):
    lease_ms = 2_000

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
