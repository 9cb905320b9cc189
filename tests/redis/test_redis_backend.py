"""The Redis backend against a real redis-server: every option lands in BullMQ's own records,
and the engine's verdicts come out as BullMQ states."""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import uuid
from typing import Any

import pytest
from bullmq import Queue
from pikku_queue.adapters import connect
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions, WorkerReport
from pikku_queue.client import JobHandle, TypedQueue, known_queues
from pikku_queue.context import JobContext
from pikku_queue.errors import BackendError, NonRetryableError
from pikku_queue.events import JobEvent
from pikku_queue.options import BatchOptions, ProcessorOptions, Repeat, RetryOptions
from pikku_queue.payloads import stored_form
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, JobState
from pydantic import BaseModel, TypeAdapter
from redis_server import RedisServer

pytestmark = pytest.mark.redis


class Order(BaseModel):
    n: int


async def run_burst(backend: RedisBackend, *processors: Processor, **kw: Any) -> WorkerReport:
    return await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=processors, burst=True, **kw)), 60
    )


async def raw_hash(backend: RedisBackend, queue: str, job_id: str) -> dict[str, str]:
    client = await backend.client()
    return dict(await client.hgetall(backend.key(queue, job_id)))


async def test_connect_opens_a_redis_backend_from_the_url(redis_url: str) -> None:
    backend = connect(redis_url)
    assert isinstance(backend, RedisBackend)
    assert backend.settings.prefix == redis_url.rsplit("prefix=", 1)[1]
    assert backend.capabilities.backend == "redis"


async def test_completes_jobs_and_stores_results_progress_and_plain_json_data(
    backend: RedisBackend,
) -> None:
    async def double(ctx: JobContext, data: Order) -> int:
        await ctx.progress.update(processed=1, total=4)
        return data.n * 2

    ids = [await backend.enqueue(EnqueueRequest("orders", {"n": n})) for n in range(5)]
    report = await run_burst(backend, Processor.from_function("orders", double))
    assert report.completed == 5
    info = await backend.get_job("orders", ids[3])
    assert info is not None
    assert (info.state, info.result, info.attempts_made) == (JobState.COMPLETED, 6, 1)
    assert info.progress == {"processed": 1, "total": 4, "percentage": 25.0}
    assert info.finished_at_ms is not None and info.finished_at_ms >= info.enqueued_at_ms
    # What a Node worker reads: the job's data is the payload itself, as JSON.
    assert (await raw_hash(backend, "orders", ids[0]))["data"] == '{"n":0}'
    counts = await backend.counts("orders")
    assert (counts.completed, counts.waiting, counts.failed) == (5, 0, 0)
    finished = await backend.finished_since("orders", 0)
    assert len(finished) == 5 and all(job.succeeded for job in finished)
    assert await backend.get_job("orders", "no-such-job") is None


async def test_retries_use_our_backoff_not_bullmqs(backend: RedisBackend) -> None:
    # BullMQ's exponential would wait 10 then 20 s; ours (factor 3, max 25 s) 10 then 25 s.
    retry = RetryOptions(
        attempts=3, backoff="exponential", delay=10_000, factor=3, max_delay=25_000
    )

    async def always_fails(data: Order) -> None:
        raise RuntimeError(f"no {data.n}")

    options = ProcessorOptions(retry_options=retry)
    backend.set_queue_options("flaky", options)
    job_id = await backend.enqueue(EnqueueRequest("flaky", {"n": 1}))
    stored = json.loads((await raw_hash(backend, "flaky", job_id))["opts"])
    # What a Node worker reads: our attempts and the nearest native backoff.
    assert (stored["attempts"], stored["backoff"]) == (3, {"type": "exponential", "delay": 10_000})

    stop = asyncio.Event()
    processor = Processor.from_function("flaky", always_fails, options)
    worker = asyncio.ensure_future(
        backend.run_worker(WorkerOptions(processors=[processor], stop=stop))
    )
    applied: list[str] = []
    try:
        bull = await backend.queue("flaky")
        for _ in range(2):  # read the delay BullMQ applied, then let the retry run at once
            while await bull.getJobState(job_id) != "delayed":
                await asyncio.sleep(0.02)
            applied.append((await raw_hash(backend, "flaky", job_id))["delay"])
            await (await bull.getJob(job_id)).promote()
        while await bull.getJobState(job_id) != "failed":
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        report = await asyncio.wait_for(worker, 30)
    assert applied == ["10000", "25000"]
    assert (report.retried, report.failed) == (2, 1)
    info = await backend.get_job("flaky", job_id)
    assert info is not None and info.state is JobState.FAILED and info.attempts_made == 3
    assert info.error is not None and info.error.type == "RuntimeError"
    assert "no 1" in info.error.message and "always_fails" in info.error.traceback


async def test_non_retryable_goes_to_the_dead_letter_queue_and_replays(
    backend: RedisBackend,
) -> None:
    healthy = False

    async def picky(data: Order) -> str:
        if not healthy:
            raise NonRetryableError("refused")
        return "ok"

    options = ProcessorOptions(
        retry_options=RetryOptions(attempts=5), dead_letter_queue="picky-dlq"
    )
    processor = Processor.from_function("picky", picky, options)
    job_id = await backend.enqueue(EnqueueRequest("picky", {"n": 7}))
    report = await run_burst(backend, processor)
    assert (report.dead_lettered, report.retried) == (1, 0)
    info = await backend.get_job("picky", job_id)
    assert info is not None and info.state is JobState.DEAD_LETTERED and info.attempts_made == 1
    counts = await backend.counts("picky")
    assert (counts.dead_lettered, counts.failed) == (1, 0)
    [record] = await backend.dead_letters("picky-dlq")
    assert (record.queue, record.job_id, record.payload) == ("picky", job_id, {"n": 7})
    assert (record.reason, record.error.type) == ("non_retryable", "NonRetryableError")
    dlq = await backend.queue("picky-dlq")
    assert (await dlq.getJob(record.id)).data == record.as_payload()

    healthy = True
    assert await backend.replay("picky-dlq") == 1
    assert await backend.dead_letters("picky-dlq") == []
    await run_burst(backend, processor)
    info = await backend.get_job("picky", job_id)
    assert info is not None and info.state is JobState.COMPLETED and info.result == "ok"
    assert (await backend.counts("picky")).dead_lettered == 0


async def test_invalid_payload_from_raw_bullmq_is_dead_lettered_and_the_worker_goes_on(
    backend: RedisBackend,
) -> None:
    done: list[int] = []

    async def handle(data: Order) -> None:
        done.append(data.n)

    queue = Queue(
        "typed", {"connection": await backend.client(), "prefix": backend.settings.prefix}
    )
    bad = await queue.add("typed", {"n": "not a number"})
    good = await queue.add("typed", {"n": 5})
    options = ProcessorOptions(dead_letter_queue="typed-dlq")
    report = await run_burst(backend, Processor.from_function("typed", handle, options))
    assert done == [5] and report.dead_lettered == 1
    [record] = await backend.dead_letters("typed-dlq")
    assert (record.job_id, record.reason) == (bad.id, "invalid_payload")
    info = await backend.get_job("typed", good.id)
    assert info is not None and info.state is JobState.COMPLETED


@pytest.mark.parametrize(
    ("stored", "error_type"),
    [
        (b"{not json", "JSONDecodeError"),
        (b"[" * 100_000 + b"]" * 100_000, "RecursionError"),
        (b"\xff\xfe{", "UnicodeDecodeError"),
        (b'"caf\xe9"', "UnicodeDecodeError"),  # parses, but holds a byte that is not UTF-8
    ],
    ids=["not-json", "too-deep", "not-utf8", "json-string-not-utf8"],
)
async def test_job_data_that_is_not_json_is_dead_lettered_and_a_burst_worker_ends(
    backend: RedisBackend, stored: bytes, error_type: str
) -> None:
    """bullmq-python parses the data before our callback runs (and redis-py decodes it even
    before): such a job used to stay active and stall forever, never reaching the DLQ, and a
    burst worker never ended."""
    raw = stored.decode("utf-8", "surrogateescape")  # the text the record keeps
    done: list[int] = []

    async def handle(data: Order) -> None:
        done.append(data.n)

    queue = Queue("raw", {"connection": await backend.client(), "prefix": backend.settings.prefix})
    bad = await queue.add("raw", {"n": 0})
    good = await queue.add("raw", {"n": 5})
    client = await backend.client()
    await client.hset(backend.key("raw", str(bad.id)), "data", stored)  # a foreign producer
    processor = Processor.from_function("raw", handle, ProcessorOptions(dead_letter_queue="dlq"))
    report = await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True, lease_ms=1000)), 30
    )
    assert done == [5] and (report.dead_lettered, report.completed) == (1, 1)
    info = await backend.get_job("raw", str(good.id))
    assert info is not None and info.state is JobState.COMPLETED
    [record] = await backend.dead_letters("dlq")
    # Kept as it can always be written back: the text, or base64 of bytes that are not UTF-8.
    encoding, kept = stored_form(stored)
    assert (record.job_id, record.reason) == (bad.id, "invalid_payload")
    assert (record.payload_encoding, record.payload) == (encoding, kept)
    assert record.error.type == error_type and record.error.message
    info = await backend.get_job("raw", str(bad.id))
    assert info is not None and info.state is JobState.DEAD_LETTERED and info.payload == raw

    # Replay finds the job in place (BullMQ cannot load it) and it dead-letters again.
    assert await backend.replay("dlq") == 1
    report = await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True, lease_ms=1000)), 30
    )
    assert report.dead_lettered == 1 and done == [5]
    assert [r.job_id for r in await backend.dead_letters("dlq")] == [bad.id]


async def until(check: Any, timeout_s: float = 30) -> None:
    """Poll `check()` (a coroutine function) until true; a guard against hangs, not a timer."""

    async def loop() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), timeout_s)


async def test_a_verdict_redis_refuses_to_record_is_not_retried_and_a_sweep_records_it(
    backend: RedisBackend, redis_server: RedisServer
) -> None:
    """A failed DLQ write used to replace UnrecoverableError: BullMQ then retried a
    NonRetryableError, or failed the job with no record for `dlq replay` to find."""
    admin = await backend.client()
    prefix = backend.settings.prefix
    user = f"pikku-{uuid.uuid4().hex[:8]}"
    # A Redis user that may use the queue but not (yet) its dead-letter queue: every write of
    # the record is refused by the server (NOPERM), as in a real outage of that write.
    acl = ("ACL", "SETUSER", user, "on", ">pw", "+@all", "&*", f"~{prefix}:refuse:*")
    await admin.execute_command(*acl)
    runs: list[int] = []

    async def refuse(data: Order) -> None:
        runs.append(data.n)
        raise NonRetryableError("refused")

    options = ProcessorOptions(
        retry_options=RetryOptions(attempts=3), dead_letter_queue="refuse-dlq"
    )
    processor = Processor.from_function("refuse", refuse, options)
    job_id = await backend.enqueue(EnqueueRequest("refuse", {"n": 1}))
    worker_backend = RedisBackend(
        redis_server.url.replace("redis://", f"redis://{user}:pw@") + f"?prefix={prefix}"
    )
    stop = asyncio.Event()
    options = WorkerOptions(processors=[processor], stop=stop, lease_ms=1000)
    task = asyncio.ensure_future(worker_backend.run_worker(options))

    async def failed() -> bool:
        info = await backend.get_job("refuse", job_id)
        return info is not None and info.state in (JobState.FAILED, JobState.DEAD_LETTERED)

    async def recorded() -> bool:
        return bool(await backend.dead_letters("refuse-dlq"))

    try:
        await until(failed)
        assert runs == [1] and await backend.dead_letters("refuse-dlq") == []
        await admin.execute_command("ACL", "SETUSER", user, f"~{prefix}:refuse-dlq:*")
        await until(recorded)
    finally:
        stop.set()
        report = await asyncio.wait_for(task, 30)
        await worker_backend.close()
        await admin.execute_command("ACL", "DELUSER", user)
    assert runs == [1] and (report.retried, report.dead_lettered) == (0, 1)
    [record] = await backend.dead_letters("refuse-dlq")
    assert (record.id, record.job_id, record.payload) == (f"refuse-{job_id}-1", job_id, {"n": 1})
    assert (record.reason, record.attempts) == ("non_retryable", 1)
    assert (record.error.type, record.error.message) == ("NonRetryableError", "refused")
    assert "raise NonRetryableError" in record.error.traceback
    info = await backend.get_job("refuse", job_id)
    assert info is not None and info.state is JobState.DEAD_LETTERED
    assert await backend.replay("refuse-dlq") == 1


async def test_priority_follows_bullmq_order_and_delay_and_job_id(backend: RedisBackend) -> None:
    seen: list[int] = []

    async def record(data: Order) -> None:
        seen.append(data.n)

    for n, priority in ((1, 5), (2, 1), (3, 10), (4, 1)):
        await backend.enqueue(EnqueueRequest("prio", {"n": n}, priority=priority))
    later = await backend.enqueue(EnqueueRequest("prio", {"n": 9}, delay_ms=600_000))
    info = await backend.get_job("prio", later)
    assert info is not None and info.state is JobState.DELAYED
    first = await backend.enqueue(EnqueueRequest("prio", {"n": 0}, job_id="order-42"))
    again = await backend.enqueue(EnqueueRequest("prio", {"n": 99}, job_id="order-42"))
    assert first == again == "order-42"
    counts = await backend.counts("prio")
    assert (counts.waiting, counts.delayed) == (5, 1)

    stop = asyncio.Event()
    task = asyncio.ensure_future(
        backend.run_worker(
            WorkerOptions(processors=[Processor.from_function("prio", record)], stop=stop)
        )
    )
    while len(seen) < 5:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)
    # BullMQ's native order: jobs without a priority first, then priority 1 (FIFO within), 5, 10.
    assert seen == [0, 2, 4, 1, 3]
    job = await backend.get_job("prio", "order-42")
    assert job is not None and job.payload == {"n": 0}


async def test_repeat_uses_a_job_scheduler_once_per_schedule(backend: RedisBackend) -> None:
    request = EnqueueRequest("cleanup", {}, repeat=Repeat(cron="0 2 * * *"))
    first = await backend.enqueue(request)
    second = await backend.enqueue(request)
    await backend.enqueue(EnqueueRequest("cleanup", {}, repeat=Repeat(every=60_000, limit=3)))
    queue = await backend.queue("cleanup")
    assert await queue.getJobSchedulersCount() == 2
    assert first == second
    info = await backend.get_job("cleanup", first)
    assert info is not None and info.state is JobState.DELAYED
    schedulers = {s.get("pattern") or s.get("every"): s for s in await queue.getJobSchedulers()}
    assert set(schedulers) == {"0 2 * * *", 60000}
    cron = schedulers["0 2 * * *"]
    assert cron["tz"] == "UTC" and cron["next"] % 86_400_000 == 2 * 3_600_000  # 02:00 UTC
    assert schedulers[60000]["limit"] == 3


async def test_timeout_fails_the_attempt(backend: RedisBackend) -> None:
    async def slow(data: Order) -> None:
        await asyncio.sleep(30)

    options = ProcessorOptions(timeout=200)
    job_id = await backend.enqueue(EnqueueRequest("slow", {"n": 1}))
    await run_burst(backend, Processor.from_function("slow", slow, options))
    info = await backend.get_job("slow", job_id)
    assert info is not None and info.state is JobState.FAILED
    assert info.error is not None and info.error.type == "JobTimeoutError"


async def test_batch_processor_gets_lists_and_a_failed_item_retries_alone(
    backend: RedisBackend,
) -> None:
    calls: list[list[int]] = []

    async def batch(ctx: JobContext, items: list[Order]) -> list[int]:
        calls.append([item.n for item in items])
        for index, item in enumerate(items):
            if item.n == 3 and ctx.attempt == 1:
                ctx.fail_item(index, "three fails once")
        return [item.n * 10 for item in items]

    options = ProcessorOptions(
        batch=BatchOptions(size=4, timeout=300), retry_options=RetryOptions(attempts=2)
    )
    ids = [await backend.enqueue(EnqueueRequest("batch", {"n": n})) for n in range(8)]
    report = await run_burst(backend, Processor.from_function("batch", batch, options))
    assert report.completed == 8 and report.retried == 1
    assert sorted(n for call in calls for n in call) == sorted([*range(8), 3])
    assert max(len(call) for call in calls) == 4
    assert [3] in calls  # the failed item came back on its own
    info = await backend.get_job("batch", ids[3])
    assert info is not None and info.result == 30 and info.attempts_made == 2


async def test_global_concurrency_is_set_from_max_concurrency(backend: RedisBackend) -> None:
    running = 0
    peak = 0

    async def busy(data: Order) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    options = ProcessorOptions(concurrency=8, max_concurrency=2)
    for n in range(12):
        await backend.enqueue(EnqueueRequest("capped", {"n": n}))
    report = await run_burst(backend, Processor.from_function("capped", busy, options))
    assert report.completed == 12
    assert await (await backend.queue("capped")).getGlobalConcurrency() == 2
    assert peak <= 2


async def test_events_reach_the_bus(backend: RedisBackend) -> None:
    seen: list[JobEvent] = []

    async def ok(data: Order) -> int:
        return data.n

    options = WorkerOptions(processors=[Processor.from_function("ev", ok)], burst=True)
    options.events.subscribe("*", seen.append)
    job_id = await backend.enqueue(EnqueueRequest("ev", {"n": 3}))
    await asyncio.wait_for(backend.run_worker(options), 60)
    assert [(e.name, e.job_id) for e in seen if e.name == "completed"] == [("completed", job_id)]


async def test_url_options_reach_bullmq(redis_server: Any) -> None:
    prefix = f"p{uuid.uuid4().hex[:8]}"
    backend = RedisBackend(f"{redis_server.url}?prefix={prefix}&remove_on_complete=true")
    try:

        async def ok(data: Order) -> None:
            return None

        job_id = await backend.enqueue(EnqueueRequest("gone", {"n": 1}))
        client = await backend.client()
        assert await client.exists(f"{prefix}:gone:{job_id}") == 1
        await run_burst(backend, Processor.from_function("gone", ok))
        assert await client.exists(f"{prefix}:gone:{job_id}") == 0  # removed on completion
        assert (await backend.counts("gone")).completed == 0
        # A handle on a removed job says so instead of waiting for a state it will never see.
        with pytest.raises(BackendError, match="remove_on_complete"):
            await asyncio.wait_for(JobHandle(job_id, "gone", backend).result(), 10)
    finally:
        await backend.close()


async def test_password_in_the_url_works_and_its_absence_fails_clearly(tmp_path: Any) -> None:
    from redis_server import RedisServer

    with RedisServer(tmp_path, password="s3cret-pw") as server:
        backend = RedisBackend(server.url)
        try:
            job_id = await backend.enqueue(EnqueueRequest("auth", {"n": 1}))
            assert (await backend.get_job("auth", job_id)) is not None
        finally:
            await backend.close()
        anonymous = RedisBackend(server.url_without_password)
        with pytest.raises(BackendError, match="needs a password"):
            await anonymous.enqueue(EnqueueRequest("auth", {"n": 2}))
        wrong = RedisBackend(server.url.replace("s3cret-pw", "wrong"))
        with pytest.raises(BackendError, match="refused") as caught:
            await wrong.enqueue(EnqueueRequest("auth", {"n": 3}))
        assert "wrong" not in str(caught.value)  # the password is masked in messages
        with pytest.raises(BackendError, match="needs a password"):
            await anonymous.run_worker(WorkerOptions(processors=[], burst=True))


async def test_enqueue_many_adds_in_one_pipeline_and_keeps_order(backend: RedisBackend) -> None:
    requests = [
        EnqueueRequest("bulk-a", {"n": 1}),
        EnqueueRequest("bulk-b", {"n": 2}, priority=3),
        EnqueueRequest("bulk-a", {"n": 3}, job_id="same"),
        EnqueueRequest("bulk-a", {"n": 4}, job_id="same"),
        EnqueueRequest("bulk-a", {"n": 5}, repeat=Repeat(every=60_000)),
        EnqueueRequest("bulk-a", {"n": 6}, delay_ms=60_000),
    ]
    ids = await backend.enqueue_many(requests)
    assert ids[2] == ids[3] == "same"
    for job_id, request in zip(ids, requests, strict=True):
        info = await backend.get_job(request.queue, job_id)
        assert info is not None
        if request.job_id is None:
            assert info.payload == request.payload
    assert (await backend.get_job("bulk-a", "same")).payload == {"n": 3}  # type: ignore[union-attr]
    counts = await backend.counts("bulk-a")
    # waiting: 1, "same" and the schedule's first run (an `every` schedule starts at once)
    assert (counts.waiting, counts.delayed) == (3, 1)


def test_sync_enqueue_in_fresh_loops_leaks_no_connection(redis_url: str) -> None:
    """`enqueue_sync` runs each call in `asyncio.run`; the connection each loop opened must be
    closed when that loop ends (a leak shows up as a ResourceWarning, an error here)."""
    backend = RedisBackend(redis_url)
    typed: TypedQueue[Order, int] = TypedQueue("sync-q", TypeAdapter(Order), TypeAdapter(int))
    try:
        handles = [typed.enqueue_sync(Order(n=n), backend=backend) for n in range(3)]
        assert len({h.id for h in handles}) == 3
        assert backend._connections == {}  # each loop's connection went with its loop
        gc.collect()
        counts = asyncio.run(backend.counts("sync-q"))
        assert counts.waiting == 3
        assert backend._connections == {}
    finally:
        known_queues.pop("sync-q", None)


async def test_graceful_stop_releases_jobs_still_running_after_the_grace_period(
    backend: RedisBackend,
) -> None:
    started = asyncio.Event()
    slow_mode = True

    async def maybe_slow(data: Order) -> int:
        if slow_mode:
            started.set()
            await asyncio.sleep(30)
        return data.n

    job_id = await backend.enqueue(EnqueueRequest("graceful", {"n": 5}))
    processor = Processor.from_function("graceful", maybe_slow)
    stop = asyncio.Event()
    worker = asyncio.ensure_future(
        backend.run_worker(WorkerOptions(processors=[processor], stop=stop, grace_period_s=0.2))
    )
    await asyncio.wait_for(started.wait(), 30)
    stop.set()
    report = await asyncio.wait_for(worker, 30)
    assert report.completed == 0
    info = await backend.get_job("graceful", job_id)
    assert info is not None
    assert info.state in (JobState.WAITING, JobState.DELAYED) and info.attempts_made == 0
    slow_mode = False
    await run_burst(backend, processor)
    info = await backend.get_job("graceful", job_id)
    assert info is not None and (info.state, info.result) == (JobState.COMPLETED, 5)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
async def test_rediss_url_speaks_tls_for_producer_and_worker(tmp_path: Any) -> None:
    from redis_server import RedisServer

    with RedisServer(tmp_path, tls=True) as server:
        backend = RedisBackend(server.url + "&prefix=tls")
        try:

            async def double(data: Order) -> int:
                return data.n * 2

            job_id = await backend.enqueue(EnqueueRequest("secure", {"n": 4}))
            await run_burst(backend, Processor.from_function("secure", double))
            info = await backend.get_job("secure", job_id)
            assert info is not None and info.result == 8
        finally:
            await backend.close()
        plain = RedisBackend(server.url.replace("rediss://", "redis://").split("?")[0])
        with pytest.raises(BackendError, match="Redis"):
            await plain.enqueue(EnqueueRequest("secure", {"n": 1}))


async def test_a_bullmq_worker_that_stops_on_its_own_is_replaced(backend: RedisBackend) -> None:
    """bullmq-python workers can end their loop after connection trouble (a known bullmq-python problem); the
    supervisor starts a new one instead of leaving a process that looks alive and does nothing."""
    from pikku_queue.adapters.redis.consumer import RedisWorker

    async def double(data: Order) -> int:
        return data.n * 2

    stop = asyncio.Event()
    options = WorkerOptions(processors=[Processor.from_function("phoenix", double)], stop=stop)
    worker = RedisWorker(backend, options)
    running = asyncio.ensure_future(worker.run())
    while not worker.runners or worker.runners[0].task is None:
        await asyncio.sleep(0.01)
    first = worker.runners[0].worker
    await first.close()  # its run loop ends, as after the bug
    job_id = await backend.enqueue(EnqueueRequest("phoenix", {"n": 4}))
    for _ in range(300):
        info = await backend.get_job("phoenix", job_id)
        if info is not None and info.state is JobState.COMPLETED:
            break
        await asyncio.sleep(0.05)
    stop.set()
    report = await asyncio.wait_for(running, 30)
    assert worker.runners[0].worker is not first
    assert report.completed == 1 and info is not None and info.result == 8


async def test_concurrent_first_use_opens_one_connection(backend: RedisBackend) -> None:
    clients = await asyncio.gather(*(backend.client() for _ in range(5)))
    assert len({id(client) for client in clients}) == 1
    assert len(backend._connections) == 1


async def test_metrics_true_turns_on_bullmqs_own_metrics(backend: RedisBackend) -> None:
    async def ok(data: Order) -> int:
        return data.n

    for n in range(3):
        await backend.enqueue(EnqueueRequest("measured", {"n": n}))
        await backend.enqueue(EnqueueRequest("unmeasured", {"n": n}))
    await run_burst(
        backend,
        Processor.from_function("measured", ok, ProcessorOptions(metrics=True)),
        Processor.from_function("unmeasured", ok),
    )
    client = await backend.client()
    # The key Node BullMQ's Queue.getMetrics("completed") reads (its per-minute data list
    # fills as minutes pass).
    assert await client.hget(backend.key("measured", "metrics:completed"), "count") == "3"
    assert not await client.exists(backend.key("unmeasured", "metrics:completed"))
