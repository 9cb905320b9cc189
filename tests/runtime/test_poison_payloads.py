"""Poison rows on SQLite: one row the engine cannot read (or one row no statement
can handle) never blocks a transaction that serves other jobs, and a worker restarted on a
file left by an older version recovers every dead worker's jobs. (The per-backend scenarios
for each undecodable payload are in the conformance suite: `inject_raw`.)"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.options import ProcessorOptions
from pikku_queue.payloads import UndecodablePayload, decode_payload, raw_bytes, stored_form
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, JobState


def double(data: dict[str, int]) -> dict[str, int]:
    return {"n": data["n"] * 2}


def processor(**options: Any) -> Processor:
    return Processor.from_function("q", double, ProcessorOptions(**options))


def expired_row(conn: sqlite3.Connection, job_id: str, payload: Any, stalls: int) -> None:
    """A job a dead worker leased (lease long expired), as an older version left it."""
    conn.execute(
        "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at, attempts, stalls,"
        " token, lease_until, worker) VALUES ('q', ?, 'active', 0, ?, 0, 1, ?, 1, 1, 'dead')",
        (job_id, payload, stalls),
    )


async def run_burst(backend: SqliteBackend, proc: Processor) -> Any:
    options = WorkerOptions(processors=[proc], burst=True, lease_ms=500, grace_period_s=1)
    return await asyncio.wait_for(backend.run_worker(options), 30)


async def test_a_poison_row_stuck_active_does_not_block_recovering_the_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.db"
    await SqliteBackend(path).close()  # the schema
    with sqlite3.connect(path) as conn:
        expired_row(conn, "nan", '{"n":NaN}', stalls=10)  # past max_stalled_count: a verdict
        expired_row(conn, "bad-bytes", b'{"n":\xff}', stalls=10)
        for index in range(3):  # other dead workers' jobs, to be put back and run
            expired_row(conn, f"good-{index}", f'{{"n":{index}}}', stalls=0)
    backend = SqliteBackend(path)
    try:
        report = await run_burst(backend, processor(dead_letter_queue="dlq"))
        assert report.completed == 3
        for index in range(3):
            info = await backend.get_job("q", f"good-{index}")
            assert info is not None and info.result == {"n": index * 2}
        records = {r.job_id: r for r in await backend.dead_letters("dlq")}
        assert set(records) == {"nan", "bad-bytes"}
        assert (records["nan"].payload_encoding, records["nan"].payload) == ("text", '{"n":NaN}')
        assert records["bad-bytes"].payload_encoding == "base64"
        assert raw_bytes("base64", records["bad-bytes"].payload) == b'{"n":\xff}'
        assert {r.reason for r in records.values()} == {"stalled"}
    finally:
        await backend.close()


async def test_one_row_no_statement_can_handle_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A row whose every update SQLite refuses (here a trigger raises for it) is logged and
    left; the recovery of the other expired leases in the same round still commits."""
    path = tmp_path / "q.db"
    await SqliteBackend(path).close()
    with sqlite3.connect(path) as conn:
        expired_row(conn, "cursed", '{"n":1}', stalls=0)
        expired_row(conn, "fine", '{"n":2}', stalls=0)
        conn.execute(
            "CREATE TRIGGER cursed BEFORE UPDATE ON jobs WHEN old.id = 'cursed'"
            " BEGIN SELECT RAISE(ABORT, 'this row cannot change'); END"
        )
    backend = SqliteBackend(path)
    try:
        with caplog.at_level(logging.ERROR, "pikku_queue"):
            recovered = await backend.recover_stalled("q", max_stalled_count=1)
        assert recovered == ["fine"]
        info = await backend.get_job("q", "fine")
        assert info is not None and info.state == JobState.WAITING
        assert any("cursed" in r.getMessage() for r in caplog.records)
    finally:
        await backend.close()


async def test_a_bad_blob_does_not_roll_back_the_lease_of_good_jobs(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    backend = SqliteBackend(path)
    try:
        await backend.enqueue(EnqueueRequest(queue="q", payload={"n": 1}))
        with sqlite3.connect(path) as conn:
            conn.execute(
                "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
                " VALUES ('q', 'blob', 'waiting', 0, x'7b226e223aff7d', 0)"
            )
        await backend.enqueue(EnqueueRequest(queue="q", payload={"n": 2}))
        leased = await backend.reserve("q", 10, 5_000, "w")
        good = [d for d in leased if d.payload_error is None]
        assert sorted(d.payload["n"] for d in good) == [1, 2]
        # The bad one is handed out too, marked, for the engine to dead-letter unrun.
        [bad] = [d for d in leased if d.payload_error is not None]
        assert (bad.job_id, bad.payload_encoding) == ("blob", "base64")
        info = await backend.get_job("q", "blob")  # readable, as its raw form
        assert info is not None and info.state == JobState.ACTIVE
    finally:
        await backend.close()


async def test_replay_writes_the_raw_payload_back_as_it_was(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    try:

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
                " VALUES ('q', 'nan', 'waiting', 0, '{\"n\":NaN}', 0)"
            )

        await backend._db.write(insert)
        await run_burst(backend, processor(dead_letter_queue="dlq"))
        assert await backend.replay("dlq") == 1
        with sqlite3.connect(tmp_path / "q.db") as conn:
            [(payload,)] = conn.execute("SELECT payload FROM jobs WHERE id = 'nan'").fetchall()
        assert payload == '{"n":NaN}'
    finally:
        await backend.close()


@pytest.mark.parametrize(
    "raw",
    [
        '{"n":NaN}',
        "[Infinity]",
        '{"id": 1e400}',  # overflows a float: Python would read infinity
        '{"n": -1e400}',
        "[1.5E+309]",
        '{"\\udfff":1}',
        b"\xff",
        "\ud800",
        "{",
        "[" * 100_000,
    ],
)
def test_the_reader_refuses_and_keeps_a_writable_raw_form(raw: str | bytes) -> None:
    with pytest.raises(UndecodablePayload) as caught:
        decode_payload(raw)
    encoding, stored = caught.value.encoding, caught.value.stored
    stored.encode("utf-8")  # always writable as UTF-8 text
    assert (encoding, stored) == stored_form(raw)
    assert caught.value.verdict().reason == "invalid_payload"


def test_the_reader_accepts_what_strict_writers_write() -> None:
    assert decode_payload("[1e-400, 1.7976931348623157e308, 10e-3]") == [
        0.0,
        1.7976931348623157e308,
        0.01,
    ]
    for value in ({"n": 1}, ["\U0001f600", "é"], {"s": "\\ud800 as text"}, None, 1.5):
        import json

        assert decode_payload(json.dumps(value)) == value
        assert decode_payload(json.dumps(value, ensure_ascii=False).encode()) == value
