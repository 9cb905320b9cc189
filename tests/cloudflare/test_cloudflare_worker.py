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
from cf_double import Cloudflare, Consumer, Env, MessageBatch, value
from pikku_queue.adapters.cloudflare import CloudflareQueueAdapter, CloudflareWorker, binding_name
from pikku_queue.adapters.cloudflare.consumer import InvocationBudget, push_message
from pikku_queue.engine import Engine
from pikku_queue.errors import BackendError, InvalidEnqueueOptionsError, NonRetryableError
from pikku_queue.monitor import QueueMonitor
from pikku_queue.options import ProcessorOptions, RetryOptions
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
            dead_letter_queue=c.get("dead_letter_queue"),
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
        stalled=generated.STALLED,
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
        "dead_letter_queue": "orders-stalled",  # Cloudflare's own; pikkugen's: orders-dlq
        "retry_delay": 1,
        "max_concurrency": 2,  # max_concurrency 8 / 4 jobs per invocation
    }
    assert consumers["totals"]["max_batch_size"] == 10
    assert consumers["totals"]["max_batch_timeout"] == 2
    assert consumers["totals"]["dead_letter_queue"] == "totals-stalled"
    assert consumers["totals-stalled"] == {
        "queue": "totals-stalled",  # consumed by this Worker: records on to totals-failed
        "max_batch_size": 10,
        "max_batch_timeout": 0,
        "max_retries": 100,
        "retry_delay": 60,
    }
    assert "totals-stalled" not in {p["queue"] for p in wrangler["queues"]["producers"]}
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
    [record] = platform.queue("orders-dlq").values()
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
    [record] = platform.queue("orders-dlq").values()
    assert (record["reason"], record["attempts"]) == (reason, 1)
    if content_type == "json":
        assert "payload_encoding" not in record  # "json": the decoded value itself
    elif content_type == "bytes" and body.startswith(b"\xff"):  # not UTF-8: base64
        assert record["payload_encoding"] == "base64"
        assert base64.b64decode(record["payload"]) == body
    else:  # a text body is read as JSON text; when it is not JSON, the record keeps its text
        text = body if isinstance(body, str) else body.decode()
        assert (record["payload_encoding"], record["payload"]) == ("text", text)


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
    [record] = platform.queue("totals-failed").values()
    assert record["payload"] == {"n": -2}
    assert record["error"]["message"] == "negative order -2"


async def test_the_processor_timeout_is_enforced(
    platform: Cloudflare, env: Env, handler: Handler
) -> None:
    await env.QUEUE_SLOW.send({"n": 1}, contentType="json")

    await drain(platform, handler, env, "slow")

    [record] = platform.queue("slow-dlq").values()
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

    assert platform.queue("nightly").sent() == [(0, {})]
    assert platform.queue("pulse").sent() == []


async def test_the_generated_client_sends_through_the_bindings(
    platform: Cloudflare, env: Env, generated: types.ModuleType
) -> None:
    client = __import__("cf_gen.client", fromlist=["QUEUE_ORDERS"])
    backend = CloudflareQueueAdapter(env, generated.BINDINGS)
    from cf_app.jobs import Order

    await client.QUEUE_ORDERS.enqueue(Order(n=1), delay=1_500, backend=backend)
    await client.QUEUE_ORDERS.enqueue_many([Order(n=i) for i in range(230)], backend=backend)

    queue = platform.queue("orders")
    assert queue.sent()[0] == (2, {"n": 1, "fail_until": 0, "fatal": False})
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
        [record] = platform.queue("b").values()
        assert (record["queue"], record["reason"]) == ("a", "non_retryable")

        await drain(platform, handler, env, "b")

        assert [(value(b), a, v) for b, a, v in verdicts(platform, "b")] == [
            (record, 1, ("ack", None))
        ]
        assert platform.queue("a").stored == {}  # nothing bounced back
        assert platform.queue("b").stored == {}
        assert (worker.stats.count("a", "dead_lettered"), worker.stats.count("b", "failed")) == (
            1,
            1,
        )
        assert worker.stats.count("b", "dead_lettered") == 0
    finally:
        pikku_queue.client.set_default_backend(None)


async def test_the_client_sends_json_text_so_none_whole_floats_and_big_ints_survive(
    platform: Cloudflare, env: Env, generated: types.ModuleType
) -> None:
    """A JS object body (`to_js` + contentType json) would drop the None key, turn 1.0 into 1
    and refuse 2**64; JSON text keeps each as the typed client dumped it."""
    backend = CloudflareQueueAdapter(env, generated.BINDINGS)
    payload = {"note": None, "x": 1.0, "big": 2**64 + 1, "nested": [1, {"y": None}], "é": "ü"}

    await backend.enqueue(EnqueueRequest(queue="orders", payload=payload))
    await backend.enqueue_many([EnqueueRequest(queue="orders", payload=payload, delay_ms=1)])

    [(delay, text), (batch_delay, batch_text)] = platform.queue("orders").sends
    assert isinstance(text, str) and (delay, batch_delay) == (0, 1)
    [message] = [push_message(m) for m in platform.batch("orders").messages]  # type: ignore[union-attr]
    delivery, verdict = message.delivery("orders")
    assert verdict is None
    assert delivery.payload == payload
    assert isinstance(delivery.payload["x"], float)
    assert value(batch_text) == payload


def _worker(
    name: str,
    function: Callable[..., Any],
    options: ProcessorOptions,
    **queues: str,
) -> CloudflareWorker:
    """A Worker of one processor `name` with `options`, its bindings `name` and `queues`."""
    bindings = {q: binding_name(q) for q in (name, *queues.values())}
    worker = CloudflareWorker(Registry([]), bindings=bindings, **queues)  # type: ignore[arg-type]
    worker.engines = {
        name: Engine(
            Processor.from_function(name, function, options),
            events=worker.events,
            threads=False,
        )
    }
    return worker


async def _fails(data: Any) -> None:
    raise RuntimeError(f"failed on {data!r}")


async def test_a_zero_backoff_retries_without_a_delay(platform: Cloudflare) -> None:
    worker = _worker("z", _fails, ProcessorOptions(retry_options=RetryOptions(attempts=2, delay=0)))
    env = platform.env(worker.bindings)
    try:
        await env.QUEUE_Z.send('{"n": 1}', contentType="text")
        await platform.deliver(lambda b, e: worker.queue(b, e), "z", env)
        # The double refuses delaySeconds=0, as Cloudflare documents a positive number.
        assert [v for _, _, _, v in platform.log] == [("retry", None)]
    finally:
        pikku_queue.client.set_default_backend(None)


@pytest.mark.parametrize("reason", ["non_retryable", "attempts_exhausted"])
async def test_a_verdict_stands_when_its_record_cannot_be_sent(
    platform: Cloudflare, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The DLQ binding fails every send: the message is still acked (counted failed, its
    record logged), so the processor never runs again because a send failed."""
    runs: list[Any] = []

    async def refuses(data: Any) -> None:
        runs.append(data)
        if reason == "non_retryable":
            raise NonRetryableError("never")
        raise RuntimeError("again")

    worker = _worker("v", refuses, ProcessorOptions(retry_options=RetryOptions(attempts=1)))
    worker.dead_letters = {"v": "v-dlq"}
    worker.bindings = {"v": "QUEUE_V", "v-dlq": "QUEUE_V_DLQ"}
    platform.consumers["v"] = Consumer(max_retries=3, dead_letter_queue="v-stalled")
    env = platform.env(worker.bindings)
    platform.queue("v-dlq").failing_sends = 99
    try:
        await env.QUEUE_V.send('{"n": 1}', contentType="text")
        await drain(platform, lambda b, e: worker.queue(b, e), env, "v")
    finally:
        pikku_queue.client.set_default_backend(None)

    assert runs == [{"n": 1}]
    assert [v for _, _, _, v in platform.log] == [("ack", None)]
    assert platform.queue("v-stalled").stored == {}
    assert (worker.stats.count("v", "failed"), worker.stats.count("v", "dead_lettered")) == (1, 0)
    [logged] = [r.getMessage() for r in caplog.records if "could not be sent" in r.getMessage()]
    assert reason in logged  # the record itself is in the log


async def test_a_record_send_that_fails_once_is_tried_again_in_the_invocation(
    platform: Cloudflare, env: Env, handler: Handler
) -> None:
    platform.queue("orders-dlq").failing_sends = 1
    await env.QUEUE_ORDERS.send({"n": 3, "fatal": True}, contentType="json")

    await drain(platform, handler, env, "orders")

    [record] = platform.queue("orders-dlq").values()
    assert record["reason"] == "non_retryable"


async def test_messages_cloudflare_gave_up_on_become_stalled_records(
    platform: Cloudflare, env: Env, handler: Handler, worker: CloudflareWorker
) -> None:
    """Every invocation of `orders` dies before answering (a CPU limit, an isolate crash):
    after max_retries Cloudflare moves the raw body to `orders-stalled`, Cloudflare's own
    dead_letter_queue, and the Worker turns it into a `stalled` record in `orders-dlq`, so
    the dead-letter queue holds records only."""

    async def dies(batch: MessageBatch, env: Env) -> None:
        raise RuntimeError("the invocation exceeded its CPU limit")

    await env.QUEUE_ORDERS.send('{"n": 5}', contentType="text")
    await drain(platform, dies, env, "orders")
    [raw] = platform.queue("orders-stalled").bodies()
    assert raw == '{"n": 5}'

    await drain(platform, handler, env, "orders-stalled")

    [record] = platform.queue("orders-dlq").values()
    assert (record["queue"], record["reason"], record["attempts"]) == ("orders", "stalled", 3)
    assert record["payload"] == {"n": 5}
    assert record["error"]["type"] == "StalledJobError"
    assert platform.queue("orders-stalled").stored == {}
    assert worker.stats.count("orders", "dead_lettered") == 1


async def test_a_stalled_record_that_cannot_be_sent_waits_in_the_stalled_queue(
    platform: Cloudflare, env: Env, handler: Handler
) -> None:
    await platform.queue("orders-stalled").send('{"n": 6}', contentType="text")
    platform.queue("orders-dlq").failing_sends = 99

    await platform.deliver(handler, "orders-stalled", env)

    assert [v for _, _, _, v in platform.log] == [("retry", 60)]  # no processor ran


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("attempts", "two"),
        ("attempts", 0),
        ("attempts", True),
        ("timestamp", float("nan")),
        ("timestamp", "yesterday"),
        ("id", None),
        ("body", {1: "not a string key"}),
        ("body", {"x": float("inf")}),
        ("body", {"when": object()}),
    ],
)
async def test_a_message_field_that_cannot_be_read_gives_that_message_a_verdict(
    platform: Cloudflare, env: Env, handler: Handler, field: str, raw: Any
) -> None:
    for n in (1, 2, 3):
        await env.QUEUE_ORDERS.send(f'{{"n": {n}}}', contentType="text")
    batch = platform.batch("orders")
    assert batch is not None
    setattr(batch.messages[1], field, raw)

    await handler(batch, env)

    assert [m.verdict for m in batch.messages] == [("ack", None)] * 3
    [record] = platform.queue("orders-dlq").values()
    assert field in record["error"]["message"]
    if field == "body":  # what can be shown of it, as text
        assert (record["reason"], record["payload_encoding"]) == ("invalid_payload", "text")
    else:  # the body itself was fine
        assert (record["reason"], record["payload"]) == ("invalid_record", {"n": 2})
        assert record["error"]["type"] == "InvalidRecordError"


def test_the_invocation_budget_is_the_wall_clock_as_last_seen() -> None:
    now = [1_000.0]
    budget = InvocationBudget.start(lambda: now[0])
    assert budget.remaining_ms() == 15 * 60_000 - 1_000
    now[0] += 600  # ten minutes pass (seen at an await)
    assert budget.remaining_ms() == 5 * 60_000 - 1_000
    now[0] += 600
    assert budget.remaining_ms() == 1
