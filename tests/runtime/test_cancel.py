"""Cancelling below the conformance suite: the engine's rule (a stop asked before or during an
attempt ends it `Cancelled`; a worker's shutdown is no cancel), SQLite's stored request (any
value in the column is a request, the column is added to an older file), the refusal on a
backend that cannot cancel, and the metrics of a cancelled attempt."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pikku_queue.adapters.sqlite import cancel as sqlite_cancel
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.adapters.sqlite.schema import SCHEMA, open_connection
from pikku_queue.adapters.sqs import BACKEND as SQS
from pikku_queue.backend import Backend
from pikku_queue.client import JobHandle, cancel_job
from pikku_queue.context import CancelSignal, JobContext
from pikku_queue.engine import Engine
from pikku_queue.errors import BackendError
from pikku_queue.events import JobEvent
from pikku_queue.metrics import Metrics
from pikku_queue.options import Repeat
from pikku_queue.outcomes import Cancelled, Completed, Delivery, cancelled_error
from pikku_queue.processor import Processor
from pikku_queue.records import CancelResult, EnqueueRequest, JobState


def delivery(job_id: str = "j1") -> Delivery:
    return Delivery(job_id=job_id, queue="q", payload={"n": 1}, attempt=1, enqueued_at_ms=0)


def engine(func: Any) -> tuple[Engine, list[JobEvent]]:
    built = Engine(Processor.from_function("q", func))
    events: list[JobEvent] = []
    built.events.subscribe("*", events.append)
    return built, events


async def test_an_async_processor_that_swallows_the_cancel_still_ends_cancelled() -> None:
    started = asyncio.Event()

    async def stubborn(data: Any) -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return "returned anyway"
        return "never"

    run, events = engine(stubborn)
    signal = CancelSignal()
    task = asyncio.ensure_future(run.run(delivery(), signal))
    await asyncio.wait_for(started.wait(), 10)
    signal.request()
    outcome = await asyncio.wait_for(task, 10)
    assert isinstance(outcome, Cancelled)
    assert outcome.error.type == "JobCancelledError"
    assert [e.name for e in events] == ["cancelled"]


async def test_a_stop_asked_before_the_attempt_starts_never_calls_the_processor() -> None:
    called: list[int] = []

    async def record(data: Any) -> None:
        called.append(1)

    run, events = engine(record)
    signal = CancelSignal()
    signal.request()
    assert isinstance(await run.run(delivery(), signal), Cancelled)
    assert called == []
    assert [e.name for e in events] == ["cancelled"]


async def test_without_a_stop_the_attempt_completes_as_before() -> None:
    async def double(data: Any) -> int:
        return int(data["n"]) * 2

    run, events = engine(double)
    assert await run.run(delivery(), CancelSignal()) == Completed(2)
    assert [e.name for e in events] == ["completed"]


async def test_a_worker_shutdown_is_no_cancel() -> None:
    """The attempt's own task cancelled (the worker stopping) re-raises CancelledError: no
    verdict, so the pull worker releases the job, even though a stop signal was given."""
    started = asyncio.Event()

    async def hangs(data: Any) -> None:
        started.set()
        await asyncio.sleep(3600)

    run, events = engine(hangs)
    task = asyncio.ensure_future(run.run(delivery(), CancelSignal()))
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == []


async def test_a_sync_processor_sees_ctx_cancelled_from_its_thread() -> None:
    started = threading.Event()
    seen: list[bool] = []

    def steps(ctx: JobContext, data: Any) -> str:
        started.set()
        while not ctx.cancelled:
            threading.Event().wait(0.005)
        seen.append(ctx.cancelled)
        return "stopped"

    run, _ = engine(steps)
    signal = CancelSignal()
    task = asyncio.ensure_future(run.run(delivery(), signal))
    await asyncio.wait_for(asyncio.to_thread(started.wait, 10), 15)
    signal.request()
    assert isinstance(await asyncio.wait_for(task, 15), Cancelled)
    assert seen == [True]


def test_a_signal_calls_back_once_and_at_once_when_late() -> None:
    signal = CancelSignal()
    calls: list[str] = []
    signal.on_request(lambda: calls.append("early"))
    signal.request()
    signal.request()
    signal.on_request(lambda: calls.append("late"))
    assert calls == ["early", "late"]
    assert signal.requested


# ------------------------------------------------------------------ SQLite


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False),
        st.text(),
        st.binary(),
    )
)
def test_any_stored_request_value_is_a_request_and_null_is_none(
    tmp_path: Path, value: object
) -> None:
    """Whatever another program writes into `cancel_requested` of an active job reads as a
    request (the reader is total: no value raises or hides it); NULL reads as none."""
    conn = open_connection(":memory:", 1000)
    conn.execute(
        "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at, token)"
        " VALUES ('q', 'a', 'active', 0, '{}', 0, 1), ('q', 'b', 'active', 0, '{}', 0, 1)"
    )
    conn.execute("UPDATE jobs SET cancel_requested = ? WHERE id = 'a'", (value,))
    assert sqlite_cancel.requested(conn, "q", ["a", "b"]) == {"a"}
    assert sqlite_cancel.is_requested(conn, ("q", "a", 1))
    assert not sqlite_cancel.is_requested(conn, ("q", "b", 1))
    conn.close()


async def test_an_older_file_gets_the_column_and_cancels(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace("    cancel_requested INTEGER,\n", ""))
    old.execute(
        "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
        " VALUES ('q', 'old-1', 'waiting', 0, '{\"n\": 1}', 0)"
    )
    old.commit()
    assert "cancel_requested" not in {r[1] for r in old.execute("PRAGMA table_info(jobs)")}
    old.close()
    backend = SqliteBackend(path)
    try:
        assert await JobHandle("old-1", "q", backend).cancel() is CancelResult.REMOVED
        assert await backend.get_job("q", "old-1") is None
    finally:
        await backend.close()


async def test_a_schedules_next_run_is_not_cancelled(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    try:
        request = EnqueueRequest("q", {"n": 1}, job_id="tick", repeat=Repeat(every=60_000))
        job_id = await backend.enqueue(request)
        info = await backend.get_job("q", job_id)
        assert info is not None and info.state is JobState.WAITING  # the first run is due now
        assert await backend.cancel_job("q", job_id) is CancelResult.SCHEDULED
        assert await backend.get_job("q", job_id) is not None
        assert await backend.cancel_job("q", "nope") is CancelResult.NOT_FOUND
    finally:
        await backend.close()


# ------------------------------------------------------------------ refusals, metrics


class _NoCancel:
    url = "sqs://sqs.eu-west-1.amazonaws.com/123456789012/q"
    capabilities = SQS.capabilities


async def test_a_backend_that_cannot_cancel_says_why() -> None:
    backend = cast(Backend, _NoCancel())
    with pytest.raises(BackendError, match=r"does not support cancelling jobs.*receipt handle"):
        await cancel_job(backend, "q", "j1")
    with pytest.raises(BackendError, match="does not support cancelling jobs"):
        JobHandle("j1", "q", backend).cancel_sync()


def test_a_cancelled_attempt_is_counted_as_cancelled_not_failed() -> None:
    metrics = Metrics()
    processor = Processor.from_function("mq", lambda data: None)
    ended = metrics.attempt_started(processor, [delivery()])
    ended([(delivery(), Cancelled(cancelled_error(1)))], 0.01)
    value = metrics.registry.get_sample_value
    assert value("pikku_jobs_cancelled_total", {"queue": "mq"}) == 1.0
    assert value("pikku_jobs_failed_total", {"queue": "mq"}) == 0.0


@pytest.mark.parametrize("how", ["retry", "dead_letter", "release", "expiry"])
async def test_every_end_of_a_flagged_lease_ends_the_job_cancelled(
    tmp_path: Path, how: str
) -> None:
    """SQLite: a job asked to stop whose attempt then fails (retry or dead letter), whose
    lease is given back (a stopping worker) or expires (a dead worker) ends `cancelled`, in
    the transaction that ends the lease, never back in the queue nor in the dead-letter queue."""
    from pikku_queue.outcomes import DeadLetter, ErrorInfo, Retry

    backend = SqliteBackend(tmp_path / "q.db")
    try:
        await backend.enqueue(EnqueueRequest("q", {"n": 1}, job_id="j1"))
        [leased] = await backend.reserve("q", 1, 60_000 if how != "expiry" else 1, "w1")
        assert await backend.cancel_job("q", "j1") is CancelResult.REQUESTED
        assert await backend.cancel_requested("q", ["j1", "other"]) == {"j1"}
        error = ErrorInfo("RuntimeError", "boom")
        if how == "retry":
            await backend.settle(leased, Retry(0, error), "q-dlq")
        elif how == "dead_letter":
            await backend.settle(leased, DeadLetter("non_retryable", error), "q-dlq")
        elif how == "release":
            await backend.release("q", ["j1"])
        else:
            await asyncio.sleep(0.05)
            assert await backend.recover_stalled("q", 5, "q-dlq") == ["j1"]
        info = await backend.get_job("q", "j1")
        assert info is not None and info.state is JobState.CANCELLED
        assert info.error is not None and info.error.type == "JobCancelledError"
        assert await backend.dead_letters("q-dlq") == []
        counts = await backend.counts("q")
        assert (counts.cancelled, counts.waiting, counts.failed) == (1, 0, 0)
    finally:
        await backend.close()


async def test_a_completed_attempt_stays_completed_though_flagged(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    try:
        await backend.enqueue(EnqueueRequest("q", {"n": 1}, job_id="j1"))
        [leased] = await backend.reserve("q", 1, 60_000, "w1")
        assert await backend.cancel_job("q", "j1") is CancelResult.REQUESTED
        await backend.settle(leased, Completed(7), None)
        info = await backend.get_job("q", "j1")
        assert info is not None and (info.state, info.result) == (JobState.COMPLETED, 7)
        assert await backend.cancel_job("q", "j1") is CancelResult.FINISHED
    finally:
        await backend.close()
