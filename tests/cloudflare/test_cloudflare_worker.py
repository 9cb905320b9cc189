"""The generated Cloudflare Worker (`cloudflare_worker.py` of the golden case) on the Python
double of Cloudflare Queues: every conformance scenario a push consumer can meet, with the
consumer settings of the generated wrangler.jsonc."""

from __future__ import annotations

import base64
import types
from collections.abc import Callable, Coroutine
from typing import Any

import pikku_queue.client
import pytest
from cf_double import Cloudflare, Consumer, Env, MessageBatch
from pikku_queue.adapters.cloudflare import CloudflareQueueAdapter, CloudflareWorker
from pikku_queue.engine import Engine
from pikku_queue.errors import BackendError, InvalidEnqueueOptionsError, NonRetryableError
from pikku_queue.monitor import QueueMonitor
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pikku_queue.registry import Registry

Handler = Callable[[MessageBatch, Env], Coroutine[Any, Any, None]]


@pytest.fixture
def platform(wrangler: Any) -> Cloudflare:
    cf = Cloudflare()
    for c in wrangler["queues"]["consumers"]:
        cf.consumers[c["queue"]] = Consumer(
            max_batch_size=c["max_batch_size"],
            max_retries=c["max_retries"],
            dead_letter_queue=c["dead_letter_queue"],
            retry_delay=c["retry_delay"],
        )
    return cf


@pytest.fixture
def worker(
    generated: types.ModuleType, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> CloudflareWorker:
    """A fresh isolate: the generated module's WORKER, rebuilt from its own constants."""
    fresh = CloudflareWorker(
        generated.REGISTRY,
        bindings=generated.BINDINGS,
        dead_letters=generated.DEAD_LETTERS,
        crons=generated.CRONS,
    )
    monkeypatch.setattr(generated, "WORKER", fresh)
    # Each invocation makes its bindings the default backend; the test session gets its own back.
    request.addfinalizer(lambda: pikku_queue.client.set_default_backend(None))
    return fresh


@pytest.fixture
def env(platform: Cloudflare, generated: types.ModuleType) -> Env:
    return platform.env(generated.BINDINGS)


@pytest.fixture
def handler(generated: types.ModuleType, worker: CloudflareWorker) -> Handler:
    """What Cloudflare calls: `Default(ctx, env).queue(batch)`."""

    async def call(batch: MessageBatch, env: Env) -> None:
        await generated.Default(None, env).queue(batch)

    return call


async def drain(platform: Cloudflare, handler: Handler, env: Env, queue: str) -> None:
    """Deliver until the queue is empty, moving the clock to each next visible message."""
    for _ in range(50):
        if await platform.deliver(handler, queue, env) is None:
            due = platform.next_visible(queue)
            if due is None:
                return
            platform.now = max(platform.now, due)
    raise AssertionError("queue never drained")


def verdicts(platform: Cloudflare, queue: str) -> list[tuple[Any, int, tuple[str, int | None]]]:
    return [(body, attempts, v) for q, body, attempts, v in platform.log if q == queue and v]


async def test_the_wrangler_settings_come_from_the_options(wrangler: Any) -> None:
    consumers = {c["queue"]: c for c in wrangler["queues"]["consumers"]}
    assert consumers["orders"] == {
        "queue": "orders",
        "max_batch_size": 4,  # concurrency
        "max_batch_timeout": 0,
        "max_retries": 2,  # attempts - 1
        "dead_letter_queue": "orders-dlq",
        "retry_delay": 1,
        "max_concurrency": 2,  # max_concurrency 8 / 4 jobs per invocation
    }
    assert consumers["totals"]["max_batch_size"] == 10
    assert consumers["totals"]["max_batch_timeout"] == 2
    assert consumers["totals"]["dead_letter_queue"] == "totals-failed"
    producers = {p["queue"]: p["binding"] for p in wrangler["queues"]["producers"]}
    assert producers["totals-failed"] == "QUEUE_TOTALS_FAILED"
    assert wrangler["triggers"]["crons"] == ["*/15 * * * *", "0 * * * *", "30 2 * * 2-6"]
    assert wrangler["compatibility_flags"] == ["python_workers"]


async def test_retry_with_backoff_then_success_and_never_redelivered(
    platform: Cloudflare, env: Env, handler: Handler
) -> None:
    await env.QUEUE_ORDERS.send({"n": 1, "fail_until": 3}, contentType="json")
    await env.QUEUE_ORDERS.send({"n": 2}, contentType="json")

    await drain(platform, handler, env, "orders")

    assert verdicts(platform, "orders") == [
        ({"n": 1, "fail_until": 3}, 1, ("retry", 1)),  # exponential: 1 s, then 2 s
        ({"n": 2}, 1, ("ack", None)),
        ({"n": 1, "fail_until": 3}, 2, ("retry", 2)),
        ({"n": 1, "fail_until": 3}, 3, ("ack", None)),
    ]
    assert platform.queue("orders").stored == {}
    assert platform.queue("orders-dlq").stored == {}


async def test_the_last_attempt_goes_to_the_dead_letter_queue_then_acked(
    platform: Cloudflare, env: Env, handler: Handler
) -> None:
    await env.QUEUE_ORDERS.send({"n": 7, "fail_until": 99}, contentType="json")

    await drain(platform, handler, env, "orders")

    assert [v for _, _, v in verdicts(platform, "orders")] == [
        ("retry", 1),
        ("retry", 2),
        ("ack", None),
    ]
    [record] = platform.queue("orders-dlq").bodies()
    assert record["queue"] == "orders"
    assert record["payload"] == {"n": 7, "fail_until": 99}
    assert (record["attempts"], record["reason"]) == (3, "attempts_exhausted")
    assert record["error"]["type"] == "RuntimeError"


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        ({"n": 3, "fatal": True}, "json", "non_retryable"),
        ({"n": "three"}, "json", "invalid_payload"),
        ("just text", "text", "invalid_payload"),
        (b"\xffnot json", "bytes", "invalid_payload"),
        (b"not json {", "bytes", "invalid_payload"),
    ],
    ids=["non-retryable", "invalid-payload", "text-body", "non-utf8-bytes", "non-json-bytes"],
)
async def test_what_can_never_succeed_is_dead_lettered_at_once(
    platform: Cloudflare,
    env: Env,
    handler: Handler,
    body: Any,
    content_type: str,
    reason: str,
) -> None:
    await env.QUEUE_ORDERS.send(body, contentType=content_type)

    await drain(platform, handler, env, "orders")

    assert [(a, v) for _, a, v in verdicts(platform, "orders")] == [(1, ("ack", None))]
    [record] = platform.queue("orders-dlq").bodies()
    assert (record["reason"], record["attempts"]) == (reason, 1)
    if content_type != "bytes":
        assert "payload_encoding" not in record  # "json": the decoded value itself
    elif body.startswith(b"\xff"):  # not UTF-8: the record keeps its bytes as base64
        assert record["payload_encoding"] == "base64"
        assert base64.b64decode(record["payload"]) == body
    else:  # UTF-8 but not JSON: the record keeps its text
        assert (record["payload_encoding"], record["payload"]) == ("text", body.decode())


async def test_batch_with_one_failed_item_retries_that_message_alone(
    platform: Cloudflare, env: Env, handler: Handler
) -> None:
    for n in (1, -2, 3):
        await env.QUEUE_TOTALS.send({"n": n}, contentType="json")

    await drain(platform, handler, env, "totals")

    assert verdicts(platform, "totals") == [
        ({"n": 1}, 1, ("ack", None)),
        ({"n": -2}, 1, ("retry", 2)),
        ({"n": 3}, 1, ("ack", None)),
        ({"n": -2}, 2, ("ack", None)),  # its last attempt: to the processor's DLQ
    ]
    [record] = platform.queue("totals-failed").bodies()
    assert record["payload"] == {"n": -2}
    assert record["error"]["message"] == "negative order -2"


async def test_the_processor_timeout_is_enforced(
    platform: Cloudflare, env: Env, handler: Handler
) -> None:
    await env.QUEUE_SLOW.send({"n": 1}, contentType="json")

    await drain(platform, handler, env, "slow")

    [record] = platform.queue("slow-dlq").bodies()
    assert (record["reason"], record["attempts"]) == ("attempts_exhausted", 2)
    assert record["error"]["type"] == "JobTimeoutError"


async def test_a_batch_of_an_unknown_queue_is_retried(
    platform: Cloudflare, env: Env, handler: Handler
) -> None:
    stray = platform.queue("stray")
    await stray.send({"n": 1}, contentType="json")

    await platform.deliver(handler, "stray", env)

    assert verdicts(platform, "stray") == [({"n": 1}, 1, ("retry", None))]


async def test_a_throw_retries_only_the_messages_without_a_verdict(platform: Cloudflare) -> None:
    """The double's rule that makes per-message verdicts matter: Real Pikku's consumer, which
    acks nothing and throws on the first failure, would redeliver the jobs that succeeded."""
    queue = platform.queue("q")
    for n in (1, 2, 3):
        await queue.send({"n": n}, contentType="json")

    async def acks_one_then_throws(batch: MessageBatch, env: Env) -> None:
        batch.messages[0].ack()
        batch.messages[0].retry()  # ignored: the first verdict wins
        raise RuntimeError("boom")

    await platform.deliver(acks_one_then_throws, "q", platform.env({}))

    assert [v for _, _, _, v in platform.log] == [("ack", None), ("retry", None), ("retry", None)]
    assert sorted(s.attempts for s in queue.stored.values()) == [1, 1]


async def test_cron_triggers_enqueue_an_empty_payload(
    platform: Cloudflare, env: Env, generated: types.ModuleType, worker: CloudflareWorker
) -> None:
    controller = types.SimpleNamespace(cron="30 2 * * 2-6", scheduledTime=0)

    await generated.Default(None, env).scheduled(controller)

    assert platform.queue("nightly").sends == [(0, {})]
    assert platform.queue("pulse").sends == []


async def test_the_generated_client_sends_through_the_bindings(
    platform: Cloudflare, env: Env, generated: types.ModuleType
) -> None:
    client = __import__("cf_gen.client", fromlist=["QUEUE_ORDERS"])
    backend = CloudflareQueueAdapter(env, generated.BINDINGS)
    from cf_app.jobs import Order

    await client.QUEUE_ORDERS.enqueue(Order(n=1), delay=1_500, backend=backend)
    await client.QUEUE_ORDERS.enqueue_many([Order(n=i) for i in range(230)], backend=backend)

    queue = platform.queue("orders")
    assert queue.sends[0] == (2, {"n": 1, "fail_until": 0, "fatal": False})
    assert queue.send_batch_sizes == [100, 100, 30]
    with pytest.raises(Exception, match="validation error"):
        await client.QUEUE_ORDERS.enqueue({"n": "x"}, backend=backend)


async def test_messages_over_128_kb_and_delays_over_12_hours_are_refused_before_sending(
    platform: Cloudflare, env: Env, generated: types.ModuleType
) -> None:
    backend = CloudflareQueueAdapter(env, generated.BINDINGS)
    with pytest.raises(BackendError, match="128 KB"):
        await backend.enqueue(EnqueueRequest(queue="orders", payload={"x": "a" * 128_000}))
    with pytest.raises(InvalidEnqueueOptionsError, match="43200 s"):
        await backend.enqueue(EnqueueRequest(queue="orders", payload={}, delay_ms=43_201_000))
    big = [EnqueueRequest(queue="orders", payload={"x": "a" * 60_000}) for _ in range(5)]
    await backend.enqueue_many(big)  # 256 KB a call: two messages of 60 KB fit, not five
    assert platform.queue("orders").send_batch_sizes == [4, 1]


async def test_the_monitor_reports_what_this_isolate_settled(
    platform: Cloudflare, env: Env, handler: Handler, worker: CloudflareWorker
) -> None:
    await env.QUEUE_ORDERS.send({"n": 1}, contentType="json")
    await env.QUEUE_ORDERS.send({"n": 2, "fatal": True}, contentType="json")
    await drain(platform, handler, env, "orders")

    monitor = QueueMonitor(["orders"], backend=worker.backend(env))
    stats = await monitor.get_stats("orders")

    assert (stats.completed, stats.dead_lettered, stats.waiting) == (1, 1, 0)
    assert stats.error_rate == 0.5


async def test_a_sync_processor_runs_on_the_isolates_event_loop(
    platform: Cloudflare, env: Env, handler: Handler
) -> None:
    """A Worker isolate has no threads; the sync processor runs inline and completes."""
    await env.QUEUE_URGENT_JOBS.send({}, contentType="json")

    await drain(platform, handler, env, "Urgent_Jobs")

    assert verdicts(platform, "Urgent_Jobs") == [({}, 1, ("ack", None))]


async def _refuses(data: Any) -> None:
    raise NonRetryableError(f"refused {data!r}")


async def test_a_dead_letter_record_that_fails_on_its_dlq_is_never_dead_lettered_again(
    platform: Cloudflare,
) -> None:
    """`a` dead-letters to `b` and `b` to `a`, both refuse: the job is recorded once in `b`,
    and the record that fails there is acked as failed (`backend.dead_letter_target`), not
    sent back to `a`."""
    worker = CloudflareWorker(Registry([]), bindings={"a": "QUEUE_A", "b": "QUEUE_B"})
    worker.engines = {
        name: Engine(
            Processor.from_function(name, _refuses, ProcessorOptions(dead_letter_queue=dlq)),
            events=worker.events,
            threads=False,
        )
        for name, dlq in (("a", "b"), ("b", "a"))
    }
    env = platform.env(worker.bindings)

    async def handler(batch: MessageBatch, env: Env) -> None:
        await worker.queue(batch, env)

    try:
        await env.QUEUE_A.send({"n": 1}, contentType="json")
        await drain(platform, handler, env, "a")
        [record] = platform.queue("b").bodies()
        assert (record["queue"], record["reason"]) == ("a", "non_retryable")

        await drain(platform, handler, env, "b")

        assert verdicts(platform, "b") == [(record, 1, ("ack", None))]
        assert platform.queue("a").stored == {}  # nothing bounced back
        assert platform.queue("b").stored == {}
        assert (worker.stats.count("a", "dead_lettered"), worker.stats.count("b", "failed")) == (
            1,
            1,
        )
        assert worker.stats.count("b", "dead_lettered") == 0
    finally:
        pikku_queue.client.set_default_backend(None)
