"""Every reader is total: the field decoders (`pikku_queue.fields`), the total dead-letter
writer (`payloads.dead_letter_forms`) and, on SQLite, each place a stored value is read
(lease, sort, settle, stall recovery, schedules, views). The property-based scenario over
every column is the conformance suite's `test_any_value_in_any_stored_field_gets_a_verdict`;
these are the cases it cannot name, one by one."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pikku_queue import fields
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import WorkerOptions, WorkerReport
from pikku_queue.events import JobEvent
from pikku_queue.options import ProcessorOptions
from pikku_queue.outcomes import DEAD_LETTER_REASONS, DeadLetter, Delivery, ErrorInfo
from pikku_queue.payloads import (
    CUT_MESSAGE_CHARS,
    dead_letter_forms,
    decode_payload,
    dump_json,
    minimal_error,
)
from pikku_queue.processor import Processor
from pikku_queue.records import DeadLetterRecord, EnqueueRequest, JobState


def double(data: dict[str, int]) -> dict[str, int]:
    return {"n": data["n"] * 2}


def processor(queue: str = "q", **options: Any) -> Processor:
    return Processor.from_function(queue, double, ProcessorOptions(**options))


async def run_burst(backend: SqliteBackend, proc: Processor, **kw: Any) -> WorkerReport:
    kw.setdefault("lease_ms", 300)
    options = WorkerOptions(processors=[proc], burst=True, grace_period_s=1, **kw)
    return await asyncio.wait_for(backend.run_worker(options), 30)


async def raw(backend: SqliteBackend, sql: str, *args: Any) -> None:
    await backend._db.write(lambda conn: conn.execute(sql, args))


# ---------------------------------------------------------------------- the field decoders


@pytest.mark.parametrize("value", [5, "5", b"5", "007", 0, fields.MAX_STORED_INT])
def test_an_integer_field_takes_an_int_or_its_decimal_text(value: object) -> None:
    assert fields.integer("attempts", value) == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "value",
    [True, 5.0, "5.0", " 5", "+5", "５", "1_000", "", None, b"\xff", -1, 2**53, "9" * 30, []],
)
def test_an_integer_field_refuses_anything_else_naming_the_field(value: object) -> None:
    with pytest.raises(fields.InvalidRecord) as caught:
        fields.integer("attempts", value)
    error = caught.value.error
    assert error.type == fields.INVALID_RECORD_ERROR
    assert error.message.startswith("stored field 'attempts' holds ")
    assert caught.value.verdict() == DeadLetter("invalid_record", error)


def test_a_refused_value_is_shown_cut_and_never_raises() -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    long = fields.InvalidRecord("meta", "x" * 10_000, "not JSON").error.message
    assert len(long) < 200 and "…" in long
    assert "bits" in fields.shown(10**5000)  # repr refuses integers past 4300 digits
    assert "repr failed" in fields.shown(Hostile())
    assert fields.shown("\ud800") == "'\\ud800'"  # escaped: the message stays storable


def test_a_trace_context_is_none_or_a_json_object_of_strings() -> None:
    assert fields.trace_context("meta", None) is None
    assert fields.trace_context("meta", '{"traceparent": "00-x"}') == {"traceparent": "00-x"}
    for bad in ("not json {", "[1, 2]", '{"traceparent": 1}', '{"n": NaN}', 5, b"\xff"):
        with pytest.raises(fields.InvalidRecord, match="stored field 'meta'"):
            fields.trace_context("meta", bad)


def test_text_and_states() -> None:
    assert fields.optional_text("schedule", None) is None
    with pytest.raises(fields.InvalidRecord):
        fields.text("schedule", "key\udcff")  # a TEXT value that was not UTF-8
    with pytest.raises(fields.InvalidRecord, match="not one of"):
        fields.one_of("state", "zombie", ("waiting", "active"))


def test_invalid_record_is_a_dead_letter_reason() -> None:
    assert "invalid_record" in DEAD_LETTER_REASONS


# ---------------------------------------------------------------------- the total writer


def record(payload: Any, error: ErrorInfo | None = None, encoding: str = "json") -> Any:
    return DeadLetterRecord(
        id="r",
        queue="q",
        job_id="j",
        payload=payload,
        attempts=1,
        reason="invalid_payload",
        error=error or ErrorInfo("E", "boom", "Traceback …"),
        failed_at_ms=1,
        payload_encoding=encoding,
    )


def test_a_plain_record_is_written_as_itself() -> None:
    full, cut = dead_letter_forms(record({"n": 1}))
    assert full == dump_json(record({"n": 1}).as_payload())
    assert json.loads(cut)["error"] == {"type": "E", "message": "boom", "traceback": ""}


def test_a_payload_the_strict_writer_refuses_is_kept_as_text() -> None:
    """A value a reader let through (Infinity, NaN) no longer fails the record: the payload is
    kept as the text Python writes for it, and the record itself is strict JSON."""
    [first, *_] = dead_letter_forms(record({"n": float("inf"), "m": float("nan")}))
    data = decode_payload(first)  # the strict reader takes it back
    assert (data["payload_encoding"], data["payload"]) == ("text", '{"n":Infinity,"m":NaN}')


def test_any_error_text_is_written() -> None:
    error = ErrorInfo("Weird\ud800", "lone \udfff surrogate " + "x" * 50_000, "tb " * 10_000)
    full, cut = dead_letter_forms(record({"n": 1}, error))
    # read back by the strict reader: the lone surrogate kept as the text of its escape
    assert decode_payload(full)["error"]["message"].startswith("lone \\udfff surrogate")
    assert decode_payload(full)["error"]["type"] == "Weird\\ud800"
    small = decode_payload(cut)["error"]
    # cut to CUT_MESSAGE_CHARS characters (the surrogate then shown as its six-character escape)
    assert len(small["message"]) == CUT_MESSAGE_CHARS + 5 and small["message"].endswith("…")
    assert small["traceback"] == ""
    assert minimal_error(error).traceback == ""


def test_a_payload_with_no_text_at_all_has_no_form() -> None:
    circular: list[Any] = []
    circular.append(circular)
    assert list(dead_letter_forms(record(circular))) == []


async def test_a_record_that_cannot_be_written_fails_the_job_with_a_minimal_error(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    try:
        job = await backend.enqueue(EnqueueRequest(queue="q", payload={"n": 1}))
        [delivery] = await backend.reserve("q", 1, 5_000, "w")
        circular: list[Any] = []
        circular.append(circular)
        poisoned = Delivery(job, "q", circular, delivery.attempt, delivery.enqueued_at_ms)
        error = ErrorInfo("RuntimeError", "m" * 5_000, "a long traceback")
        await backend.settle(poisoned, DeadLetter("attempts_exhausted", error), "dlq")
        info = await backend.get_job("q", job)
        assert info is not None and info.state == JobState.FAILED
        assert info.error == minimal_error(error)
        assert await backend.dead_letters("dlq") == []
    finally:
        await backend.close()


# ---------------------------------------------------------------------- SQLite, case by case


async def three_jobs(backend: SqliteBackend) -> list[str]:
    return [await backend.enqueue(EnqueueRequest(queue="q", payload={"n": n})) for n in (1, 2, 3)]


async def test_one_meta_that_is_not_json_fails_only_its_own_job_in_the_lease() -> None:
    """The lease that once raised after leasing its batch (its neighbours then came back as
    stalls) hands out all three; only the middle one carries the verdict."""
    backend = MemoryBackend()
    try:
        first, bad, last = await three_jobs(backend)
        await raw(backend, "UPDATE jobs SET meta = 'not json {' WHERE id = ?", bad)
        leased = {d.job_id: d for d in await backend.reserve("q", 10, 5_000, "w")}
        assert set(leased) == {first, bad, last}
        assert leased[first].record_error is None and leased[last].record_error is None
        error = leased[bad].record_error
        assert error is not None and "stored field 'meta' holds 'not json {'" in error.message
    finally:
        await backend.close()


async def test_a_text_priority_sorts_last_and_fails_only_its_job() -> None:
    backend = MemoryBackend()
    try:
        first, bad, last = await three_jobs(backend)
        await raw(backend, "UPDATE jobs SET priority = 'abc' WHERE id = ?", bad)
        leased = await backend.reserve("q", 10, 5_000, "w")
        assert [d.job_id for d in leased] == [first, last, bad]
        assert [d.record_error is None for d in leased] == [True, True, False]
        report = await run_burst(backend, processor(dead_letter_queue="dlq"), lease_ms=200)
        assert (report.completed, report.dead_lettered, report.undone) == (2, 1, [])
        [record] = await backend.dead_letters("dlq")
        assert (record.job_id, record.reason) == (bad, "invalid_record")
        assert record.payload == {"n": 2}  # the payload was fine: kept as it was
    finally:
        await backend.close()


async def test_a_text_that_is_not_utf8_fails_its_job_not_the_fetch() -> None:
    backend = MemoryBackend()
    try:
        first, bad, _ = await three_jobs(backend)
        await raw(backend, "UPDATE jobs SET meta = CAST(x'7bff' AS TEXT) WHERE id = ?", bad)
        leased = {d.job_id: d for d in await backend.reserve("q", 10, 5_000, "w")}
        assert leased[bad].record_error is not None
        assert leased[first].record_error is None
        info = await backend.get_job("q", bad)  # a view reads it too
        assert info is not None and info.state == JobState.ACTIVE
    finally:
        await backend.close()


@pytest.mark.parametrize("lease_until", [None, "abc", b"\x00", 2**62, 1.5])
async def test_an_active_job_whose_lease_is_no_live_time_comes_back(lease_until: object) -> None:
    """A lease end no live worker could hold (NULL, text, a blob, later than MAX_LEASE_MS, or
    long past) has ended: the job is recovered, runs, and completes."""
    backend = MemoryBackend()
    try:
        [job, *_] = await three_jobs(backend)
        await raw(
            backend,
            "UPDATE jobs SET state = 'active', lease_until = ?, worker = 'gone' WHERE id = ?",
            lease_until,
            job,
        )
        report = await run_burst(backend, processor(max_stalled_count=1))
        assert (report.completed, report.stalled, report.undone) == (3, 1, [])
    finally:
        await backend.close()


async def test_a_stall_count_no_writer_writes_is_an_invalid_record_at_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = MemoryBackend()
    try:
        [job, *_] = await three_jobs(backend)
        await raw(
            backend,
            "UPDATE jobs SET state = 'active', lease_until = 1, stalls = 'x' WHERE id = ?",
            job,
        )
        seen: list[JobEvent] = []
        options = WorkerOptions(
            processors=[processor(dead_letter_queue="dlq")], burst=True, lease_ms=300
        )
        options.events.subscribe("dead_lettered", seen.append)
        with caplog.at_level(logging.WARNING, "pikku_queue.pull"):
            report = await asyncio.wait_for(backend.run_worker(options), 30)
        assert (report.completed, report.dead_lettered) == (2, 1)
        [record] = await backend.dead_letters("dlq")
        assert (record.job_id, record.reason) == (job, "invalid_record")
        assert "stored field 'stalls' holds 'x'" in record.error.message
        assert [e.data for e in seen] == [{"reason": "invalid_record"}]
        assert "q: recovered 1 stalled job(s) whose worker's lease expired" in caplog.text
    finally:
        await backend.close()


async def test_a_delayed_job_due_at_no_time_is_refused_not_waited_for() -> None:
    backend = MemoryBackend()
    try:
        [job, *_] = await three_jobs(backend)
        await raw(backend, "UPDATE jobs SET state = 'delayed', run_at = 'soon' WHERE id = ?", job)
        assert await backend.next_due_ms(["q"]) is None  # not a crash on the text
        report = await run_burst(backend, processor(dead_letter_queue="dlq"))
        assert (report.completed, report.dead_lettered) == (2, 1)
        [record] = await backend.dead_letters("dlq")
        assert "stored field 'run_at' holds 'soon'" in record.error.message
    finally:
        await backend.close()


async def test_a_schedule_row_no_writer_wrote_fails_its_run_not_the_lease() -> None:
    backend = MemoryBackend()
    try:
        await three_jobs(backend)
        await raw(
            backend,
            "INSERT INTO schedules (queue, key, cron, payload) VALUES ('q', 'k', 'every day', '{}')",
        )
        await raw(
            backend,
            "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at, schedule)"
            " VALUES ('q', 'run-1', 'waiting', 0, '{\"n\": 9}', 0, 'k')",
        )
        report = await run_burst(backend, processor(dead_letter_queue="dlq"))
        assert (report.completed, report.dead_lettered) == (3, 1)
        [record] = await backend.dead_letters("dlq")
        assert record.job_id == "run-1"
        assert "stored field 'schedules.cron' holds 'every day'" in record.error.message
    finally:
        await backend.close()


async def test_a_view_of_a_row_full_of_garbage_never_raises() -> None:
    backend = MemoryBackend()
    try:
        [job, *_] = await three_jobs(backend)
        await raw(
            backend,
            "UPDATE jobs SET state = 'zombie', progress = 'x{', result = x'ff', error = '[1]',"
            " attempts = 'a', enqueued_at = 'then', finished_at = 2.5 WHERE id = ?",
            job,
        )
        info = await backend.get_job("q", job)
        assert info is not None
        assert (info.state, info.attempts_made, info.progress) == (JobState.WAITING, 0, None)
        assert info.error is not None and "stored field 'error' holds '[1]'" in info.error.message
        assert len(await backend.recent_jobs("q")) == 3
    finally:
        await backend.close()


async def test_a_look_alike_record_in_a_dead_letter_queue_is_skipped() -> None:
    backend = MemoryBackend()
    try:
        look_alike = json.dumps({"queue": "q", "job_id": "j", "attempts": "many"})
        await backend.enqueue(EnqueueRequest(queue="dlq", payload={"plain": 1}))
        await raw(
            backend,
            "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
            " VALUES ('dlq', 'x', 'waiting', 0, ?, 0)",
            look_alike,
        )
        assert await backend.dead_letters("dlq") == []
    finally:
        await backend.close()


# ---------------------------------------------------------------------- a burst worker ends


class SettleFails(MemoryBackend):
    """A store whose verdicts for one job can never be written."""

    async def settle_many(self, settled: Any, dead_letter_queue: str | None) -> None:
        if any(d.payload == {"n": 2} for d, _ in settled):
            raise sqlite3.OperationalError("disk I/O error")
        await super().settle_many(settled, dead_letter_queue)


async def test_a_job_whose_verdict_cannot_be_stored_is_held_and_reported_undone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = SettleFails()
    try:
        _, bad, _ = await three_jobs(backend)
        with caplog.at_level(logging.WARNING, "pikku_queue.pull"):
            report = await run_burst(backend, processor(max_stalled_count=10), lease_ms=200)
        assert report.completed == 2
        [line] = report.undone
        assert line == (
            f"q job {bad}: handed to this worker 3 times and no verdict could be stored"
        )
        assert "burst: ending with 1 job(s) or queue(s) that cannot progress" in caplog.text
        info = await backend.get_job("q", bad)  # given back, untouched, for a later worker
        assert info is not None and info.state == JobState.WAITING
    finally:
        await backend.close()


class HandsOutNothing(MemoryBackend):
    """A source whose reserve never serves one job (as a state no lease selects would)."""

    async def reserve(self, queue: str, limit: int, *args: Any, **kw: Any) -> list[Delivery]:
        leased = await super().reserve(queue, limit, *args, **kw)
        await self.release(queue, [d.job_id for d in leased if d.payload == {}])
        return [d for d in leased if d.payload != {}]


async def test_ready_jobs_no_lease_hands_out_end_a_burst_after_a_lease_length() -> None:
    backend = HandsOutNothing()
    try:
        await backend.enqueue(EnqueueRequest(queue="q", payload={"n": 1}))
        await raw(
            backend,
            "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
            " VALUES ('q', 'unserved', 'waiting', 0, '{}', 0)",
        )
        report = await run_burst(backend, processor(), lease_ms=200)
        assert report.completed == 1
        assert report.undone == ["q: 1 job(s) that no lease hands out and no live lease holds"]
    finally:
        await backend.close()


async def test_a_job_under_another_live_lease_is_waited_for() -> None:
    """The other worker may still settle it: a burst worker waits, however long, rather than
    leave it undone; here the lease is let go after two lease lengths."""
    backend = MemoryBackend()
    try:
        job = await backend.enqueue(EnqueueRequest(queue="q", payload={"n": 1}))
        [held] = await backend.reserve("q", 1, 400, "another-worker")

        async def other_worker() -> None:
            for _ in range(4):
                await asyncio.sleep(0.1)
                await backend.extend_lease("q", [held.job_id], 400)
            await backend.release("q", [held.job_id])

        other = asyncio.create_task(other_worker())
        report = await run_burst(backend, processor(), lease_ms=200)
        await other
        assert (report.completed, report.undone) == (1, [])
        info = await backend.get_job("q", job)
        assert info is not None and info.state == JobState.COMPLETED
    finally:
        await backend.close()


class NeverAnswers(MemoryBackend):
    async def reserve(self, *args: Any, **kw: Any) -> list[Delivery]:
        raise sqlite3.OperationalError("database is locked")


async def test_a_burst_worker_gives_up_on_a_backend_that_fails_every_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pikku_queue.burst.MAX_FAILED_CALLS", 3)  # 0.1 + 0.2 s of backoff
    backend = NeverAnswers()
    try:
        await backend.enqueue(EnqueueRequest(queue="q", payload={"n": 1}))
        report = await run_burst(backend, processor())
        [line] = report.undone
        assert line.startswith("every job still pending on q: 3 backend calls failed in a row")
        assert "OperationalError: database is locked" in line
    finally:
        await backend.close()
