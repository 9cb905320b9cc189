"""The generated Worker on Pyodide, its real conversion layer: `pikku_queue` and the golden
case's `cloudflare_worker.py` loaded into npm's Pyodide under Node, driven by JavaScript
doubles of Cloudflare Queues that follow workerd's contract (node/pyodide_harness.mjs), with
the consumer settings of the generated wrangler.jsonc. The same scenarios the CPython double
runs (test_cloudflare_worker.py), plus what only JavaScript does to a payload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyodide_worker import PyodideWorker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def isolate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PyodideWorker]:
    worker = PyodideWorker(tmp_path_factory.mktemp("pyodide"))
    try:
        yield worker
    finally:
        worker.close()


@pytest.fixture
def cf(isolate: PyodideWorker) -> PyodideWorker:
    isolate.request("reset")
    return isolate


def test_the_versions_that_ran(cf: PyodideWorker) -> None:
    versions = cf.request("version")
    assert versions["pyodide"] == "314.0.4"
    assert versions["python"].startswith("3.14.")
    print(versions)


def test_retry_with_backoff_then_success_and_never_redelivered(cf: PyodideWorker) -> None:
    cf.send("orders", {"n": 1, "fail_until": 3})
    cf.send("orders", {"n": 2})

    cf.drain("orders")

    assert cf.log("orders") == [
        ({"n": 1, "fail_until": 3}, 1, ["retry", 1]),
        ({"n": 2}, 1, ["ack", None]),
        ({"n": 1, "fail_until": 3}, 2, ["retry", 2]),
        ({"n": 1, "fail_until": 3}, 3, ["ack", None]),
    ]
    assert cf.values("orders") == [] and cf.values("orders-dlq") == []


def test_the_last_attempt_goes_to_the_dead_letter_queue_then_acked(cf: PyodideWorker) -> None:
    cf.send("orders", {"n": 7, "fail_until": 99})

    cf.drain("orders")

    assert [v for _, _, v in cf.log("orders")] == [["retry", 1], ["retry", 2], ["ack", None]]
    [record] = cf.values("orders-dlq")
    assert (record["queue"], record["payload"]) == ("orders", {"n": 7, "fail_until": 99})
    assert (record["attempts"], record["reason"]) == (3, "attempts_exhausted")
    assert record["error"]["type"] == "RuntimeError"
    assert cf.values("orders-stalled") == []


@pytest.mark.parametrize(
    ("body", "content_type", "reason", "kept"),
    [
        ({"n": 3, "fatal": True}, "json", "non_retryable", None),
        ({"n": "three"}, "json", "invalid_payload", None),
        ("just text", "text", "invalid_payload", ("text", "just text")),
        ({"bytes": [255, 110, 111]}, "bytes", "invalid_payload", ("base64", "/25v")),
        ({"bytes": list(b"not json {")}, "bytes", "invalid_payload", ("text", "not json {")),
    ],
    ids=["non-retryable", "invalid-payload", "text-body", "non-utf8-bytes", "non-json-bytes"],
)
def test_what_can_never_succeed_is_dead_lettered_at_once(
    cf: PyodideWorker, body: Any, content_type: str, reason: str, kept: Any
) -> None:
    cf.send("orders", body, content_type)

    cf.drain("orders")

    assert [(a, v) for _, a, v in cf.log("orders")] == [(1, ["ack", None])]
    [record] = cf.values("orders-dlq")
    assert (record["reason"], record["attempts"]) == (reason, 1)
    if kept is None:
        assert "payload_encoding" not in record and record["payload"] == body
    else:
        assert (record["payload_encoding"], record["payload"]) == kept


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"n": 4}', "text"),
        ({"bytes": list(b'{"n": 4}')}, "bytes"),
        ({"n": 4}, "json"),
        ({"n": 4}, "v8"),
    ],
    ids=["text", "bytes", "json", "v8"],
)
def test_a_body_of_each_content_type_is_read(
    cf: PyodideWorker, body: Any, content_type: str
) -> None:
    cf.send("orders", body, content_type)

    cf.drain("orders")

    assert [(a, v) for _, a, v in cf.log("orders")] == [(1, ["ack", None])]
    assert cf.values("orders-dlq") == []


def test_batch_with_one_failed_item_retries_that_message_alone(cf: PyodideWorker) -> None:
    for n in (1, -2, 3):
        cf.send("totals", f'{{"n": {n}}}', "text")

    cf.drain("totals")

    assert cf.log("totals") == [
        ('{"n": 1}', 1, ["ack", None]),
        ('{"n": -2}', 1, ["retry", 2]),
        ('{"n": 3}', 1, ["ack", None]),
        ('{"n": -2}', 2, ["ack", None]),
    ]
    [record] = cf.values("totals-failed")
    assert record["payload"] == {"n": -2}
    assert record["error"]["message"] == "negative order -2"


def test_the_processor_timeout_is_enforced(cf: PyodideWorker) -> None:
    cf.send("slow", {"n": 1})

    cf.drain("slow")

    [record] = cf.values("slow-dlq")
    assert (record["reason"], record["attempts"]) == ("attempts_exhausted", 2)
    assert record["error"]["type"] == "JobTimeoutError"


def test_a_batch_of_an_unknown_queue_is_retried(cf: PyodideWorker) -> None:
    cf.send("stray", {"n": 1})

    cf.request("deliver", queue="stray")

    assert cf.log("stray") == [({"n": 1}, 1, ["retry", None])]


def test_cron_triggers_enqueue_an_empty_payload(cf: PyodideWorker) -> None:
    cf.request("scheduled", cron="30 2 * * 2-6")

    assert cf.values("nightly") == [{}]
    assert cf.values("pulse") == []


def test_producer_limits_and_send_batch_calls(cf: PyodideWorker) -> None:
    refused = cf.python(
        """
from pikku_queue.adapters.cloudflare import CloudflareQueueAdapter
from pikku_queue.errors import PikkuQueueError
from pikku_queue.records import EnqueueRequest
import cf_gen.client as client
from cf_app.jobs import Order

backend = CloudflareQueueAdapter(env, main().BINDINGS)
await client.QUEUE_ORDERS.enqueue(Order(n=1), delay=1_500, backend=backend)
await client.QUEUE_ORDERS.enqueue_many([Order(n=i) for i in range(230)], backend=backend)
refused = []
for request in (
    EnqueueRequest(queue="orders", payload={"x": "a" * 128_000}),
    EnqueueRequest(queue="orders", payload={}, delay_ms=43_201_000),
):
    try:
        await backend.enqueue(request)
    except PikkuQueueError as exc:  # BackendError, InvalidEnqueueOptionsError
        refused.append(str(exc))
json.dumps(refused)
"""
    )
    assert "128 KB" in refused[0] and "43200 s" in refused[1]
    sends = [s for s in cf.state()["sends"] if s["queue"] == "orders"]
    assert sends[0] == {"queue": "orders", "contentType": "text", "delaySeconds": 2}
    assert len(sends) == 231
    assert cf.values("orders")[0] == {"n": 1, "fail_until": 0, "fatal": False}


def test_a_verdict_stands_when_its_record_cannot_be_sent(cf: PyodideWorker) -> None:
    cf.request("fail", queue="orders-dlq", count=99)
    cf.send("orders", {"n": 3, "fatal": True})

    cf.drain("orders")

    assert [(a, v) for _, a, v in cf.log("orders")] == [(1, ["ack", None])]
    assert cf.values("orders-stalled") == []
    failed = cf.python('json.dumps(worker().stats.count("orders", "failed"))')
    assert failed == 1


def test_messages_cloudflare_gave_up_on_become_stalled_records(cf: PyodideWorker) -> None:
    cf.python(
        """
async def dies(batch, env):
    raise RuntimeError("the invocation exceeded its CPU limit")
worker().queue = dies
"""
    )
    cf.send("orders", '{"n": 5}', "text")
    cf.drain("orders")
    cf.python("del worker().queue")
    assert [m["body"] for m in cf.state()["queues"]["orders-stalled"]] == ['{"n": 5}']

    cf.drain("orders-stalled")

    [record] = cf.values("orders-dlq")
    assert (record["reason"], record["attempts"], record["payload"]) == ("stalled", 3, {"n": 5})


def test_a_dead_letter_record_that_fails_on_its_dlq_is_never_dead_lettered_again(
    cf: PyodideWorker,
) -> None:
    cf.python(
        """
import cloudflare_worker
from pikku_queue.adapters.cloudflare import CloudflareWorker
from pikku_queue.engine import Engine
from pikku_queue.errors import NonRetryableError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.registry import Registry

async def refuses(data):
    raise NonRetryableError(f"refused {data!r}")

cycle = CloudflareWorker(Registry([]), bindings={"a": "QUEUE_A", "b": "QUEUE_B"})
cycle.engines = {
    name: Engine(
        Processor.from_function(name, refuses, ProcessorOptions(dead_letter_queue=dlq)),
        events=cycle.events,
        threads=False,
    )
    for name, dlq in (("a", "b"), ("b", "a"))
}
cloudflare_worker.WORKER = cycle
"""
    )
    cf.send("a", '{"n": 1}', "text")
    cf.drain("a")
    [record] = cf.values("b")
    assert (record["queue"], record["reason"]) == ("a", "non_retryable")

    cf.drain("b")

    assert [(a, v) for _, a, v in cf.log("b")] == [(1, ["ack", None])]
    assert cf.values("a") == [] and cf.values("b") == []
    counts = cf.python(
        "json.dumps([worker().stats.count(q, k) for q, k in "
        '(("a", "dead_lettered"), ("b", "failed"), ("b", "dead_lettered"))])'
    )
    assert counts == [1, 1, 0]


def test_a_js_object_body_would_lose_none_and_the_whole_float(cf: PyodideWorker) -> None:
    """Why pikkugen sends JSON text: `to_js(dict)` with contentType json goes through
    JSON.stringify, so `None` (undefined) vanishes and 1.0 reads back as 1, and an int beyond
    2**53 (a BigInt) cannot be sent at all."""
    outcome = cf.python(
        """
from pikku_queue.adapters.cloudflare import js
await env.QUEUE_ORDERS.send(js.to_js({"n": 1.0, "x": [1, {"y": None}]}), contentType="json")
try:
    await env.QUEUE_ORDERS.send(js.to_js({"big": 2**64}), contentType="json")
    error = None
except Exception as exc:
    error = str(exc)
json.dumps(error)
"""
    )
    assert "BigInt" in outcome
    assert cf.values("orders") == [{"n": 1, "x": [1, {}]}]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("attempts", {"undefined": True}),
        ("attempts", "second"),
        ("timestamp", "not a date"),
        ("id", 42),
        ("body", {"throws": "the body getter failed"}),
        ("body", {"date": 0}),
        ("body", {"bigint": "12345678901234567890123"}),
    ],
)
def test_a_message_field_that_cannot_be_read_gives_that_message_a_verdict(
    cf: PyodideWorker, field: str, value: Any
) -> None:
    for n in (1, 2, 3):
        cf.send("orders", f'{{"n": {n}}}', "text")

    answer = cf.request("tamper", queue="orders", index=1, field=field, value=value)

    if field == "body" and "bigint" in value:
        # A BigInt body (v8) reads as a Python int: JSON data, but no Order, so it fails
        # validation; the point is that it is read at all.
        [record] = cf.values("orders-dlq")
        assert record["payload"] == int(value["bigint"])
        return
    assert answer == {"verdicts": [["ack", None]] * 3, "threw": None}
    [record] = cf.values("orders-dlq")
    assert record["reason"] == ("invalid_payload" if field == "body" else "invalid_record")
    assert field in record["error"]["message"]


ECHO = """
from typing import Any
from pydantic import BaseModel
import cloudflare_worker
from pikku_queue.adapters.cloudflare import CloudflareQueueAdapter, CloudflareWorker
from pikku_queue.engine import Engine
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pikku_queue.registry import Registry


class Note(BaseModel):
    note: str | None
    x: float
    n: int
    tags: list[str]
    extra: dict[str, Any]


received = []


async def echo(note: Note) -> None:
    received.append(note)


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)


echoes = CloudflareWorker(Registry([]), bindings={"echo": "QUEUE_ECHO"})
echoes.engines = {
    "echo": Engine(
        Processor.from_function("echo", echo, ProcessorOptions()),
        events=echoes.events,
        threads=False,
    )
}
cloudflare_worker.WORKER = echoes
"""

json_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.integers(min_value=-(10**6), max_value=10**6).map(float)  # whole floats
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),  # non-ASCII included
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
notes = st.fixed_dictionaries(
    {
        "note": st.none() | st.text(max_size=8),
        "x": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-99, 99).map(float),
        "n": st.integers(min_value=-(2**70), max_value=2**70),
        "tags": st.lists(st.text(max_size=5), max_size=3),
        "extra": st.dictionaries(st.text(max_size=5), json_data, max_size=3),
    }
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(note=notes)
def test_payloads_round_trip_exactly_through_the_pyodide_producer_and_consumer(
    cf: PyodideWorker, note: dict[str, Any]
) -> None:
    """What the typed client dumps is what the consumer validates, through JavaScript: None,
    whole floats, nested lists and dicts, non-ASCII text and integers beyond 2**53 (JSON
    text, read back by Python's json, keeps them all exactly)."""
    cf.request("reset")
    cf.python(ECHO)
    text = json.dumps(note)
    cf.python(
        f"""
sent = Note.model_validate(json.loads({text!r}))
backend = CloudflareQueueAdapter(env, {{"echo": "QUEUE_ECHO"}})
await backend.enqueue(EnqueueRequest(queue="echo", payload=sent.model_dump(mode="json")))
None
"""
    )
    cf.drain("echo")
    outcome = cf.python(
        "json.dumps([len(received), same(received[-1].model_dump(), sent.model_dump())])"
    )
    assert outcome == [1, True], cf.log("echo")


#: JavaScript values, as the harness revives them: JSON, plus bytes, a BigInt, undefined, a
#: Date, NaN and the infinities, a Map, and a getter that throws.
js_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.builds(lambda b: {"bytes": list(b)}, st.binary(max_size=8))
    | st.builds(lambda n: {"bigint": str(n)}, st.integers())
    | st.just({"undefined": True})
    | st.builds(lambda n: {"date": n}, st.integers(-(10**13), 10**13))
    | st.sampled_from([{"number": "NaN"}, {"number": "Infinity"}, {"number": "-Infinity"}])
    | st.builds(lambda t: {"throws": t}, st.text(max_size=5)),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["n", "fail_until", "fatal", "x"]), inner, max_size=3)
        | st.builds(
            lambda pairs: {"map": pairs},
            st.lists(st.tuples(st.text(max_size=3), inner), max_size=2),
        )
    ),
    max_leaves=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(["body", "id", "timestamp", "attempts"]), value=js_values)
def test_any_js_value_in_any_message_field_gets_that_message_a_verdict(
    cf: PyodideWorker, field: str, value: Any
) -> None:
    """The stored-field rule on Pyodide: whatever JavaScript hands the Worker in one message's
    field, the invocation does not throw, every neighbour completes, and that message gets an
    explicit verdict of its own."""
    cf.request("reset")
    for n in (1, 2, 3):
        cf.send("orders", f'{{"n": {n}}}', "text")

    answer = cf.request("tamper", queue="orders", index=1, field=field, value=value)

    assert answer["threw"] is None
    first, poisoned, last = answer["verdicts"]
    assert first == last == ["ack", None]
    assert poisoned is not None
    records = cf.values("orders-dlq")
    assert len(records) <= 1  # the poisoned message's, when it was dead-lettered
    # unreadable, or read as an Order that says `fatal`
    assert {r["reason"] for r in records} <= {"invalid_payload", "invalid_record", "non_retryable"}
