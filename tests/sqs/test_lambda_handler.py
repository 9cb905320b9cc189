"""The Lambda handler against moto: records are real messages received from the endpoint, and
after each call the test does what Lambda does (delete every record not reported failed)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pikku_queue import BatchOptions, JobContext, NonRetryableError
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter, from_url
from pikku_queue.adapters.sqs.lambda_handler import SQSLambdaHandler, make_handler
from pikku_queue.options import ProcessorOptions
from pikku_queue.records import DeadLetterRecord, EnqueueRequest
from pikku_queue.registry import QueueEntry, Registry
from pydantic import BaseModel
from sqs_support import FakeLambdaContext, Queues

pytestmark = pytest.mark.sqs


class Order(BaseModel):
    n: int


class Done(BaseModel):
    n: int
    attempt: int


calls: list[tuple[str, int, int]] = []


async def odd_fails(ctx: JobContext, data: Order) -> Done:
    calls.append((ctx.job_id, data.n, ctx.attempt))
    if data.n % 2:
        raise RuntimeError(f"odd order {data.n}")
    return Done(n=data.n, attempt=ctx.attempt)


async def refuses(ctx: JobContext, data: Order) -> Done:
    raise NonRetryableError(f"order {data.n} can never be shipped")


async def slow(ctx: JobContext, data: Order) -> Done:
    await asyncio.sleep(5)
    return Done(n=data.n, attempt=ctx.attempt)


batch_calls: list[list[int]] = []


async def totals(ctx: JobContext, items: list[Order]) -> list[Done]:
    batch_calls.append([item.n for item in items])
    for index, item in enumerate(items):
        if item.n < 0:
            ctx.fail_item(index, f"negative order {item.n}")
    return [Done(n=item.n, attempt=ctx.attempt) for item in items]


services_built: list[int] = []


def create_services() -> dict[str, int]:
    services_built.append(1)
    return {"built": len(services_built)}


def registry(*entries: QueueEntry) -> Registry:
    """A registry like the generated one; the functions are imported by name from this module."""
    return Registry(entries, services=f"{__name__}:create_services")


def entry(name: str, func: Any, **options: Any) -> QueueEntry:
    return QueueEntry(
        name=name,
        function=f"{__name__}.{func.__name__}",
        options=ProcessorOptions.model_validate(options),
    )


@pytest.fixture
def new_handler(backend_url: str) -> Iterator[Callable[[Registry], SQSLambdaHandler]]:
    """Handlers keep an event loop for their container's life; each is closed at test end."""
    made: list[SQSLambdaHandler] = []

    def build(reg: Registry) -> SQSLambdaHandler:
        made.append(make_handler(reg, backend_url=backend_url))
        return made[-1]

    yield build
    for handler in made:
        handler.close()


NewHandler = Callable[[Registry], SQSLambdaHandler]


def send(queues: Queues, name: str, *bodies: Any) -> None:
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body)
        queues.sqs.send_message(QueueUrl=queues.url(name), MessageBody=text)


def invoke(
    handler: SQSLambdaHandler,
    queues: Queues,
    name: str,
    *,
    wait: int = 0,
    remaining_ms: int = 60_000,
) -> tuple[dict[str, Any], dict[str, Any]]:
    messages = queues.receive(name, wait=wait)
    event = queues.lambda_event(name, messages)
    response = handler(event, FakeLambdaContext(remaining_ms))
    queues.lambda_deletes(name, event, response)
    return event, response


async def dead_letters(backend_url: str, dlq: str) -> list[DeadLetterRecord]:
    adapter = from_url(backend_url)
    try:
        return await adapter.dead_letters(dlq)
    finally:
        await adapter.close()


def bodies_of(event: dict[str, Any], failed: dict[str, Any]) -> list[Any]:
    ids = {f["itemIdentifier"] for f in failed["batchItemFailures"]}
    return sorted(json.loads(r["body"])["n"] for r in event["Records"] if r["messageId"] in ids)


def test_partial_batch_failure_reports_only_failed_records(
    queues: Queues, new_handler: NewHandler
) -> None:
    queues.create("orders-dlq")
    queues.create("orders", dlq="orders-dlq")
    reg = registry(entry("orders", odd_fails, retry_options={"attempts": 3}))
    handler = new_handler(reg)
    send(queues, "orders", *({"n": n} for n in range(6)))
    built_before = len(services_built)

    event, response = invoke(handler, queues, "orders")

    assert len(event["Records"]) == 6
    assert bodies_of(event, response) == [1, 3, 5]
    # the successes were deleted, the failures come back (backoff 0) on their second receive
    calls.clear()
    event, response = invoke(handler, queues, "orders", wait=1)
    assert sorted(json.loads(r["body"])["n"] for r in event["Records"]) == [1, 3, 5]
    assert sorted((n, attempt) for _, n, attempt in calls) == [(1, 2), (3, 2), (5, 2)]
    # services are built once per container, not per invocation
    assert len(services_built) - built_before == 1


def test_retry_hides_the_message_for_its_backoff(queues: Queues, new_handler: NewHandler) -> None:
    queues.create("mail")
    reg = registry(entry("mail", odd_fails, retry_options={"attempts": 3, "delay": 3_000}))
    handler = new_handler(reg)
    send(queues, "mail", {"n": 1})

    _, response = invoke(handler, queues, "mail")

    assert len(response["batchItemFailures"]) == 1
    # not visible now: the backoff became its visibility timeout…
    assert queues.receive("mail") == []
    assert queues.depth("mail")["in_flight"] == 1
    # …and it returns once the backoff has passed, as attempt 2
    calls.clear()
    _, response = invoke(handler, queues, "mail", wait=8)
    assert [attempt for _, n, attempt in calls] == [2]


def test_last_attempt_goes_to_the_dead_letter_queue_not_reported(
    queues: Queues, new_handler: NewHandler
) -> None:
    queues.create("orders-dlq")
    queues.create("orders")
    reg = registry(
        entry(
            "orders",
            odd_fails,
            retry_options={"attempts": 2},
            dead_letter_queue="orders-dlq",
        )
    )
    handler = new_handler(reg)
    send(queues, "orders", {"n": 7})

    _, first = invoke(handler, queues, "orders")
    _, second = invoke(handler, queues, "orders", wait=1)

    assert len(first["batchItemFailures"]) == 1
    assert second["batchItemFailures"] == []
    assert queues.depth("orders") == {"visible": 0, "in_flight": 0, "delayed": 0}
    [record] = queues.receive("orders-dlq")
    envelope = json.loads(record["Body"])
    assert envelope["payload"] == {"n": 7}
    assert envelope["reason"] == "attempts_exhausted"
    assert envelope["attempts"] == 2
    assert envelope["error"]["type"] == "RuntimeError"


def test_poison_payloads_and_non_retryable_errors_skip_the_retries(
    queues: Queues, new_handler: NewHandler, backend_url: str
) -> None:
    queues.create("ship-dlq")
    queues.create("ship", dlq="ship-dlq")  # no dead_letter_queue option: the redrive target
    reg = registry(entry("ship", refuses, retry_options={"attempts": 5}))
    handler = new_handler(reg)
    too_deep = "[" * 50_000 + "]" * 50_000  # JSON, but json.loads raises RecursionError
    send(queues, "ship", "this is not JSON", too_deep, {"n": "not a number"}, {"n": 3})

    _, response = invoke(handler, queues, "ship")

    assert response["batchItemFailures"] == []
    assert queues.depth("ship") == {"visible": 0, "in_flight": 0, "delayed": 0}
    # read back as the DLQ commands do: the records, under our name for the DLQ (its SQS name
    # carries this test's prefix)
    records = asyncio.run(dead_letters(backend_url, "ship-dlq"))
    reasons = sorted((r.reason, r.error.type, r.queue) for r in records)
    assert reasons == [
        ("invalid_payload", "JSONDecodeError", "ship"),
        ("invalid_payload", "RecursionError", "ship"),
        ("invalid_payload", "ValidationError", "ship"),
        ("non_retryable", "NonRetryableError", "ship"),
    ]
    assert {r.attempts for r in records} == {1}
    assert "this is not JSON" in [r.payload for r in records]


def test_nan_infinity_and_lone_surrogates_are_one_dead_letter_each(
    queues: Queues, new_handler: NewHandler, backend_url: str
) -> None:
    """Poison payloads on the Lambda path: what `json.dumps` writes by default for NaN (and a
    lone surrogate escape) is refused by the one reader, dead-lettered once with its raw text,
    and never retried until redrive."""
    queues.create("ship-dlq")
    queues.create("ship", dlq="ship-dlq")
    handler = new_handler(registry(entry("ship", refuses, retry_options={"attempts": 5})))
    raw = ['{"n":NaN}', '{"n":Infinity}', '{"n":-Infinity}', '{"n":"\\ud800"}']
    send(queues, "ship", *raw)

    _, response = invoke(handler, queues, "ship")

    assert response["batchItemFailures"] == []
    assert queues.depth("ship") == {"visible": 0, "in_flight": 0, "delayed": 0}
    records = asyncio.run(dead_letters(backend_url, "ship-dlq"))
    assert sorted(r.payload for r in records) == sorted(raw)
    assert {(r.reason, r.payload_encoding, r.attempts) for r in records} == {
        ("invalid_payload", "text", 1)
    }


async def test_redrive_policy_moves_a_crashing_message_to_the_dlq(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    """The safety net for a consumer that dies before giving any verdict (a Lambda timeout or
    out-of-memory): SQS moves the message after maxReceiveCount receives, with our attributes,
    so the DLQ listing still names its queue and job."""
    queues.create("crashy-dlq")
    queues.create("crashy", dlq="crashy-dlq", max_receive_count=2)
    job_id = await backend.enqueue(EnqueueRequest(queue="crashy", payload={"n": 1}))
    for _ in range(2):  # two receives that never settle
        assert len(queues.receive("crashy", visibility=0)) == 1
    assert queues.receive("crashy") == []  # the third receive finds it gone

    [record] = await backend.dead_letters("crashy-dlq")

    assert (record.queue, record.job_id, record.payload) == ("crashy", job_id, {"n": 1})
    assert record.reason == "stalled"


def test_batch_processor_gets_the_records_as_one_list(
    queues: Queues, new_handler: NewHandler
) -> None:
    queues.create("totals")
    queues.create("totals-dlq")
    reg = registry(
        entry(
            "totals",
            totals,
            batch=BatchOptions(size=10),
            retry_options={"attempts": 2},
            dead_letter_queue="totals-dlq",
        )
    )
    handler = new_handler(reg)
    send(queues, "totals", {"n": 1}, {"n": -2}, {"n": 3}, "{broken")
    batch_calls.clear()

    event, response = invoke(handler, queues, "totals")

    assert len(event["Records"]) == 4
    assert [sorted(c) for c in batch_calls] == [[-2, 1, 3]]  # one call, the poison left out
    assert [
        json.loads(r["body"])
        for r in event["Records"]
        if r["messageId"] in {f["itemIdentifier"] for f in response["batchItemFailures"]}
    ] == [{"n": -2}]
    # the failed item is retried alone
    _, again = invoke(handler, queues, "totals", wait=1)
    assert batch_calls[-1] == [-2]
    assert again["batchItemFailures"] == []  # attempts exhausted: dead-lettered
    reasons = sorted(json.loads(m["Body"])["reason"] for m in queues.receive("totals-dlq"))
    assert reasons == ["attempts_exhausted", "invalid_payload"]


def test_attempt_timeout_is_capped_by_lambdas_remaining_time(
    queues: Queues, new_handler: NewHandler
) -> None:
    queues.create("slow")
    reg = registry(entry("slow", slow, retry_options={"attempts": 2}, timeout=60_000))
    handler = new_handler(reg)
    send(queues, "slow", {"n": 1})
    failures: list[str] = []
    handler.events.subscribe("failed", lambda e: failures.append(e.data["error"]["type"]))

    # 1.3 s left in the invocation, 1 s kept back to settle: the attempt gets 0.3 s, not 60 s
    _, response = invoke(handler, queues, "slow", remaining_ms=1_300)

    assert len(response["batchItemFailures"]) == 1
    assert failures == ["JobTimeoutError"]


def test_unknown_queue_is_reported_not_dropped(queues: Queues, new_handler: NewHandler) -> None:
    queues.create("stray")
    handler = new_handler(registry(entry("orders", odd_fails)))
    send(queues, "stray", {"n": 2})

    event, response = invoke(handler, queues, "stray")

    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        event["Records"][0]["messageId"]
    ]


def test_fifo_stops_at_the_first_failure(queues: Queues, new_handler: NewHandler) -> None:
    queues.create("seq.fifo", attributes={"VisibilityTimeout": "300"})
    reg = registry(entry("seq.fifo", odd_fails, retry_options={"attempts": 3, "delay": 1_000}))
    handler = new_handler(reg)
    for n in (2, 3, 4):
        queues.sqs.send_message(
            QueueUrl=queues.url("seq.fifo"),
            MessageBody=json.dumps({"n": n}),
            MessageGroupId="g",
            MessageDeduplicationId=f"d{n}-{time.time()}",
        )
    calls.clear()

    event, response = invoke(handler, queues, "seq.fifo")

    assert [n for _, n, _ in calls] == [2, 3]  # 4 never ran: it must not overtake 3
    assert bodies_of(event, response) == [3, 4]
    # 3 returns after its 1 s backoff and 4 right behind it, in order (not after the queue's
    # 300 s visibility timeout)
    again = queues.receive("seq.fifo", wait=5)
    assert [json.loads(m["Body"])["n"] for m in again] == [3, 4]


def test_metrics_become_one_embedded_metric_line_per_queue(
    queues: Queues, new_handler: NewHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    queues.create("counted")
    handler = new_handler(registry(entry("counted", odd_fails, metrics=True)))
    send(queues, "counted", {"n": 2}, {"n": 4}, {"n": 5})

    invoke(handler, queues, "counted")

    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    assert line["queue"] == "counted"
    assert (line["completed"], line["failed"], line["dead_lettered"]) == (2, 1, 0)
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["queue"]]
    assert {"completed", "failed"} <= {m["Name"] for m in directive["Metrics"]}


def broken_services() -> None:
    raise RuntimeError("database is unreachable")


def test_a_broken_deployment_fails_the_invocation_not_the_records(
    queues: Queues, new_handler: NewHandler
) -> None:
    """A failing services factory is no record's fault: the invocation raises, so Lambda
    retries the whole batch (and the redrive policy ends it), and the next call tries again."""
    queues.create("orders")
    reg = Registry([entry("orders", odd_fails)], services=f"{__name__}:broken_services")
    handler = new_handler(reg)
    send(queues, "orders", {"n": 2})
    event = queues.lambda_event("orders", queues.receive("orders"))

    for _ in range(2):
        with pytest.raises(RuntimeError, match="database is unreachable"):
            handler(event, FakeLambdaContext())
    assert handler.state.loop is None


def test_fifo_batch_processor_keeps_each_group_in_order(
    queues: Queues, new_handler: NewHandler
) -> None:
    # One call runs the whole batch; group a's -2 fails, so a's 3 (which succeeded in the same
    # call) must not be deleted ahead of it. Group b is not held back.
    queues.create("tot.fifo", attributes={"VisibilityTimeout": "300"})
    reg = registry(
        entry(
            "tot.fifo",
            totals,
            batch=BatchOptions(size=10),
            retry_options={"attempts": 3, "delay": 1_000},
        )
    )
    handler = new_handler(reg)
    for group, n in (("a", 1), ("b", 4), ("a", -2), ("b", 5), ("a", 3)):
        queues.sqs.send_message(
            QueueUrl=queues.url("tot.fifo"),
            MessageBody=json.dumps({"n": n}),
            MessageGroupId=group,
            MessageDeduplicationId=f"d{n}-{time.time()}",
        )
    batch_calls.clear()

    event, response = invoke(handler, queues, "tot.fifo")

    assert batch_calls == [[1, 4, -2, 5, 3]]
    assert bodies_of(event, response) == [-2, 3]
    # -2 returns after its 1 s backoff with 3 right behind it, in order
    again = queues.receive("tot.fifo", wait=5)
    assert [json.loads(m["Body"])["n"] for m in again] == [-2, 3]


def test_a_record_with_attributes_no_writer_writes_is_one_invalid_record_each(
    queues: Queues, new_handler: NewHandler, backend_url: str
) -> None:
    """The Lambda path reads attributes by the same rule as the long-poll worker: a receive
    count or a pikku attribute that is no count fails that record alone, once, as
    `invalid_record`; a body with a number that overflows a float is `invalid_payload`; the
    good record runs, and nothing is reported for a retry."""
    queues.create("ship-dlq")
    queues.create("ship", dlq="ship-dlq")
    handler = new_handler(registry(entry("ship", odd_fails, retry_options={"attempts": 5})))
    send(queues, "ship", {"n": 2}, {"n": 4}, {"n": 6}, '{"id": 1e400}')
    messages = queues.receive("ship")
    event = queues.lambda_event("ship", messages)
    by_body = {
        json.loads(r["body"]).get("n"): r for r in event["Records"] if "1e400" not in r["body"]
    }
    by_body[4]["attributes"]["ApproximateReceiveCount"] = "many"
    by_body[6]["messageAttributes"]["pikku_attempts_made"] = {
        "stringValue": "-1",
        "dataType": "Number",
    }
    calls.clear()

    response = handler(event, FakeLambdaContext(60_000))
    queues.lambda_deletes("ship", event, response)

    assert response["batchItemFailures"] == []
    assert [n for _, n, _ in calls] == [2]
    records = asyncio.run(dead_letters(backend_url, "ship-dlq"))
    found = sorted((r.reason, r.error.message.split(":")[0]) for r in records)
    assert found == [
        ("invalid_payload", "payload is not JSON"),
        ("invalid_record", "stored field 'ApproximateReceiveCount' holds 'many'"),
        ("invalid_record", "stored field 'pikku_attempts_made' holds '-1'"),
    ]
