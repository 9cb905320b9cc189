"""The producer face of the SQS backend against moto: URLs, limits, message shape, counts,
dead letters and replay."""

from __future__ import annotations

import asyncio
import json

import pytest
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter, from_url
from pikku_queue.adapters.sqs.config import parse_url
from pikku_queue.adapters.sqs.messages import InboundMessage
from pikku_queue.errors import BackendError, InvalidEnqueueOptionsError
from pikku_queue.options import Repeat
from pikku_queue.records import EnqueueRequest
from sqs_support import REGION, Queues

pytestmark = pytest.mark.sqs


def test_url_names_region_endpoint_prefix_and_per_queue_urls() -> None:
    settings = parse_url(
        "sqs://?region=eu-west-1&endpoint_url=http://127.0.0.1:4566"
        "&prefix=https://sqs.eu-west-1.amazonaws.com/111122223333/shop-"
        "&queue.email-queue=https://sqs.eu-west-1.amazonaws.com/111122223333/mail"
        "&wait_time_seconds=5&group_key=customer"
    )
    assert settings.region == "eu-west-1"
    assert settings.endpoint_url == "http://127.0.0.1:4566"
    assert settings.wait_time_seconds == 5
    assert settings.group_key == "customer"
    assert settings.static_queue_url("email-queue").endswith("/111122223333/mail")  # type: ignore[union-attr]
    assert settings.static_queue_url("images") == (
        "https://sqs.eu-west-1.amazonaws.com/111122223333/shop-images"
    )
    by_name = parse_url("sqs://?prefix=shop-")
    assert by_name.static_queue_url("images") is None  # resolved with GetQueueUrl
    assert by_name.queue_name("images") == "shop-images"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqs://?regoin=eu-west-1", "unknown sqs:// URL parameter 'regoin'"),
        ("sqs://?wait_time_seconds=25", "wait_time_seconds must be 0-20"),
        ("sqs://?wait_time_seconds=soon", "whole number"),
        ("sqs://eu-west-1/queues", "query parameters"),
    ],
)
def test_bad_urls_are_clear_errors(url: str, problem: str) -> None:
    with pytest.raises(BackendError, match=problem):
        parse_url(url)


def test_seed_form_takes_queue_url_region_and_credentials(url_prefix: str, queues: Queues) -> None:
    adapter = SQSQueueAdapter(
        queue_url=url_prefix,
        region=REGION,
        endpoint_url=queues.endpoint,
        credentials={"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "secret"},
    )
    credentials = adapter.api.client._request_signer._credentials  # type: ignore[attr-defined]
    assert credentials.access_key == "AKIDEXAMPLE"
    assert adapter.settings.static_queue_url("x") == url_prefix + "x"
    # Messages and logs name where it points, never the credentials.
    assert adapter.url.startswith("sqs://?region=")
    assert "prefix=" in adapter.url and "secret" not in adapter.url
    with pytest.raises(BackendError, match="unknown credential keys: password"):
        SQSQueueAdapter(queue_url=url_prefix, credentials={"password": "hunter2"})


async def test_body_is_the_plain_payload_and_metadata_rides_in_attributes(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("mail")
    job_id = await backend.enqueue(
        EnqueueRequest(queue="mail", payload={"to": "ann@example.com", "n": 1})
    )
    [message] = queues.receive("mail")
    assert json.loads(message["Body"]) == {"to": "ann@example.com", "n": 1}
    inbound = InboundMessage.from_received(message)
    assert (inbound.job_id, inbound.queue, inbound.attempt) == (job_id, "mail", 1)
    assert job_id != message["MessageId"]  # ours, kept when a message is re-sent
    assert inbound.enqueued_at_ms > 0


async def test_limits_are_checked_before_anything_is_sent(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("mail")
    with pytest.raises(InvalidEnqueueOptionsError, match="at most 900 s"):
        await backend.enqueue(EnqueueRequest(queue="mail", payload={}, delay_ms=900_001))
    with pytest.raises(BackendError, match="1 MiB"):
        await backend.enqueue(EnqueueRequest(queue="mail", payload={"blob": "x" * 1_048_576}))
    with pytest.raises(BackendError, match="cannot deduplicate by job_id"):
        await backend.enqueue(EnqueueRequest(queue="mail", payload={}, job_id="order-42"))
    with pytest.raises(BackendError, match="no schedules"):
        await backend.enqueue(
            EnqueueRequest(queue="mail", payload={}, repeat=Repeat(cron="0 2 * * *"))
        )
    assert queues.depth("mail") == {"visible": 0, "in_flight": 0, "delayed": 0}
    # 900 s exactly is allowed, and so is a payload just under the limit
    await backend.enqueue(EnqueueRequest(queue="mail", payload={}, delay_ms=900_000))
    await backend.enqueue(EnqueueRequest(queue="mail", payload={"blob": "x" * 1_000_000}))
    assert queues.depth("mail") == {"visible": 1, "in_flight": 0, "delayed": 1}


async def test_per_message_delay(queues: Queues, backend: SQSQueueAdapter) -> None:
    queues.create("later")
    await backend.enqueue(EnqueueRequest(queue="later", payload={"n": 1}, delay_ms=3_000))

    counts = await backend.counts("later")
    assert (counts.waiting, counts.delayed) == (0, 1)
    assert queues.receive("later") == []
    [message] = queues.receive("later", wait=8)
    assert json.loads(message["Body"]) == {"n": 1}


async def test_counts_waiting_in_flight_and_dead_lettered(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("work-dlq")
    queues.create("work", dlq="work-dlq")
    for n in range(3):
        await backend.enqueue(EnqueueRequest(queue="work", payload={"n": n}))
    queues.receive("work", limit=1, visibility=60)
    queues.sqs.send_message(QueueUrl=queues.url("work-dlq"), MessageBody="{}")

    counts = await backend.counts("work")

    assert (counts.waiting, counts.active, counts.delayed) == (2, 1, 0)
    assert counts.dead_lettered == 1  # the DLQ found through the queue's RedrivePolicy


async def test_fifo_queue_deduplicates_by_job_id_and_refuses_delays(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("seq.fifo")
    first = await backend.enqueue(EnqueueRequest(queue="seq.fifo", payload={"n": 1}, job_id="a"))
    again = await backend.enqueue(EnqueueRequest(queue="seq.fifo", payload={"n": 1}, job_id="a"))
    await backend.enqueue(EnqueueRequest(queue="seq.fifo", payload={"n": 2}, job_id="b"))
    with pytest.raises(BackendError, match="FIFO"):
        await backend.enqueue(EnqueueRequest(queue="seq.fifo", payload={}, delay_ms=1_000))

    assert first == again == "a"
    bodies = [json.loads(m["Body"]) for m in queues.receive("seq.fifo")]
    assert bodies == [{"n": 1}, {"n": 2}]


async def test_redelivery_after_visibility_expiry_counts_as_an_attempt(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("jobs")
    job_id = await backend.enqueue(EnqueueRequest(queue="jobs", payload={"n": 1}))
    url = await backend.api.queue_url("jobs")

    [first] = await backend.api.receive(url, limit=1, wait_seconds=0, visibility_seconds=2)
    assert await backend.api.receive(url, limit=1, wait_seconds=0, visibility_seconds=2) == []
    [second] = await backend.api.receive(url, limit=1, wait_seconds=5, visibility_seconds=30)

    assert (first.attempt, second.attempt) == (1, 2)
    assert second.job_id == first.job_id == job_id


async def test_dead_letters_lists_our_records_and_redriven_messages_then_replays(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("jobs-dlq")
    queues.create("jobs", dlq="jobs-dlq", max_receive_count=1)
    crashed = await backend.enqueue(EnqueueRequest(queue="jobs", payload={"n": 1}))
    queues.receive("jobs", visibility=0)  # one receive that never settled…
    assert queues.receive("jobs") == []  # …so the next receive lets SQS redrive it
    queues.sqs.send_message(
        QueueUrl=queues.url("jobs-dlq"),
        MessageBody=json.dumps(
            {
                "queue": "jobs",
                "job_id": "refused",
                "payload": {"n": 2},
                "attempts": 1,
                "reason": "non_retryable",
                "error": {"type": "NonRetryableError", "message": "no", "traceback": ""},
                "failed_at_ms": 1,
            }
        ),
    )

    records = await backend.dead_letters("jobs-dlq")

    assert sorted((r.job_id, r.queue, r.reason, json.dumps(r.payload)) for r in records) == [
        (crashed, "jobs", "stalled", '{"n": 1}'),
        ("refused", "jobs", "non_retryable", '{"n": 2}'),
    ]
    # listing hides nothing: both are visible again
    assert queues.depth("jobs-dlq")["visible"] == 2

    refused = next(r for r in records if r.job_id == "refused")
    assert await backend.replay("jobs-dlq", [refused.id]) == 1
    assert [r.job_id for r in await backend.dead_letters("jobs-dlq")] == [crashed]
    [back] = queues.receive("jobs", wait=1)
    replayed = InboundMessage.from_received(back)
    assert (replayed.job_id, replayed.attempt, replayed.payload()) == ("refused", 1, {"n": 2})
    assert await backend.replay("jobs-dlq") == 1
    assert queues.depth("jobs-dlq")["visible"] == 0


async def test_unknown_queue_is_a_backend_error(queues: Queues) -> None:
    by_name = from_url(f"sqs://?region={REGION}&endpoint_url={queues.endpoint}")
    try:
        with pytest.raises(BackendError, match="GetQueueUrl"):
            await by_name.enqueue(EnqueueRequest(queue=f"{queues.prefix}missing", payload={}))
    finally:
        await by_name.close()


async def test_many_enqueues_at_once_on_a_new_queue(queues: Queues, moto_endpoint: str) -> None:
    """The first enqueues race to build the client and resolve (here: create) the queue."""
    adapter = SQSQueueAdapter(
        region=REGION, endpoint_url=moto_endpoint, create_queues=True, queue_url=queues.prefix
    )
    try:
        ids = await asyncio.gather(
            *(adapter.enqueue(EnqueueRequest(queue="burst", payload={"n": n})) for n in range(40))
        )
    finally:
        await adapter.close()
    assert len(set(ids)) == 40
    assert queues.depth("burst")["visible"] == 40


async def test_fifo_group_comes_from_the_configured_payload_field(
    queues: Queues, backend_url: str
) -> None:
    queues.create("orders.fifo")
    adapter = from_url(backend_url + "&group_key=customer")
    try:
        await adapter.enqueue(EnqueueRequest(queue="orders.fifo", payload={"customer": "c1"}))
        await adapter.enqueue(EnqueueRequest(queue="orders.fifo", payload={"other": 1}))
    finally:
        await adapter.close()
    groups = [m["Attributes"]["MessageGroupId"] for m in queues.receive("orders.fifo")]
    assert groups == ["c1", "orders.fifo"]  # no such field: the whole queue is one group


async def test_replay_to_a_fifo_queue_keeps_the_payloads_group(
    queues: Queues, backend_url: str
) -> None:
    queues.create("orders.fifo")
    queues.create("orders-dlq.fifo")
    record = {
        "queue": "orders.fifo",
        "job_id": "o-7",
        "payload": {"customer": "c7"},
        "attempts": 1,
        "reason": "non_retryable",
        "error": {"type": "NonRetryableError", "message": "no", "traceback": ""},
        "failed_at_ms": 1,
    }
    queues.sqs.send_message(
        QueueUrl=queues.url("orders-dlq.fifo"),
        MessageBody=json.dumps(record),
        MessageGroupId="orders-dlq.fifo",
        MessageDeduplicationId="r-1",
    )
    adapter = from_url(backend_url + "&group_key=customer")
    try:
        assert await adapter.replay("orders-dlq.fifo") == 1
    finally:
        await adapter.close()
    [back] = queues.receive("orders.fifo")
    assert back["Attributes"]["MessageGroupId"] == "c7"  # in line with c7's other jobs
