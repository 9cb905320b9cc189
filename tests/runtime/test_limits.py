"""`RateLimit` and `Dedupe`: the models' rules, the key templates, the client's refusals, and
the SQLite store's windows and keys (shared through the file; total over any stored value)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pikku_queue import Dedupe, RateLimit
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import RateLimits, WorkerOptions
from pikku_queue.client import TypedQueue, known_queues
from pikku_queue.clock import VirtualClock
from pikku_queue.errors import BackendError, InvalidEnqueueOptionsError
from pikku_queue.options import (
    EnqueueOptions,
    ProcessorOptions,
    Repeat,
    UnrenderableDedupeKey,
)
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pydantic import BaseModel, TypeAdapter, ValidationError


class Signup(BaseModel):
    user_id: str
    n: int = 0


def signups(name: str, options: ProcessorOptions | None = None) -> TypedQueue[Signup, None]:
    return TypedQueue(name, TypeAdapter(Signup), TypeAdapter(type(None)), options)


@pytest.fixture(autouse=True)
def _forget_declared_queues() -> Iterator[None]:
    """A `TypedQueue` declares its queue process-wide: other test files use the same names."""
    before = dict(known_queues)
    yield
    known_queues.clear()
    known_queues.update(before)


# ---------------------------------------------------------------------------- the models


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "cannot be empty"),
        ("{user id}", "placeholder names a payload field"),
        ("{0}", "placeholder names a payload field"),
        ("{}", "placeholder names a payload field"),
        ("a{b", "unmatched"),
        ("a}b", "unmatched"),
        ("{{x}}", "unmatched"),
        ("x" * 129, "at most 128"),
    ],
)
def test_a_bad_key_template_is_refused(key: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Dedupe(key=key, ttl_ms=1000)


@pytest.mark.parametrize(
    "options",
    [
        {"max": True, "per_ms": 1000},  # a bool is not a count
        {"max": "5", "per_ms": 1000},
        {"max": 0, "per_ms": 1000},
        {"max": 1, "per_ms": 0},
        {"max": 1, "per_ms": 1000, "group_key": "tenant.id"},
        {"max": 1, "per_ms": 1000, "burst": 2},
    ],
)
def test_rate_limit_is_strict(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RateLimit.model_validate(options)


def test_dedupe_is_strict_and_knows_its_modes() -> None:
    with pytest.raises(ValidationError):
        Dedupe.model_validate({"key": "k", "ttl_ms": 1000, "mode": "debounce"})
    with pytest.raises(ValidationError):
        Dedupe.model_validate({"key": "k", "ttl_ms": 1.5})
    assert EnqueueOptions.model_validate({"dedupe": {"key": "k", "ttl_ms": 5}}).dedupe == Dedupe(
        key="k", ttl_ms=5
    )


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
NAMES = st.sampled_from(["user_id", "tenant", "_n", "a1", "month"])


@given(st.dictionaries(NAMES, SCALARS, min_size=1))
def test_a_key_renders_each_field_as_text_or_json(payload: dict[str, Any]) -> None:
    names = sorted(payload)
    one_by_one = []
    for name in names:
        value = payload[name]
        rendered = Dedupe(key="{" + name + "}", ttl_ms=1000).render(payload)
        assert rendered == (value if isinstance(value, str) else json.dumps(value))
        one_by_one.append(rendered)
    template = "k:" + "|".join("{" + name + "}" for name in names)
    assert Dedupe(key=template, ttl_ms=1000).render(payload) == "k:" + "|".join(one_by_one)


def test_a_key_over_missing_or_composite_fields_does_not_render() -> None:
    dedupe = Dedupe(key="u-{user_id}", ttl_ms=1000)
    assert dedupe.fields == ("user_id",)
    assert dedupe.render({"user_id": 7}) == "u-7"
    assert dedupe.render({"user_id": None}) == "u-null"
    for payload in ({}, {"user": "a"}, [1], "text", {"user_id": [1]}, {"user_id": {"a": 1}}):
        with pytest.raises(UnrenderableDedupeKey):
            dedupe.render(payload)


# ---------------------------------------------------------------------------- the client


async def test_the_client_refuses_what_it_cannot_keep() -> None:
    backend = MemoryBackend()
    try:
        queue = signups("refusals")
        with pytest.raises(InvalidEnqueueOptionsError, match="repeat schedule"):
            await queue.enqueue(
                Signup(user_id="a"),
                dedupe=Dedupe(key="{user_id}", ttl_ms=1000),
                repeat=Repeat(every=60_000),
                backend=backend,
            )
        with pytest.raises(InvalidEnqueueOptionsError, match="ttl_ms"):
            await queue.enqueue(
                Signup(user_id="a"), dedupe={"key": "{user_id}", "ttl_ms": 0}, backend=backend
            )
        assert (await backend.counts("refusals")).waiting == 0
    finally:
        await backend.close()


async def test_a_backend_without_the_mode_refuses_a_jobs_dedupe_and_skips_the_processors() -> None:
    backend = MemoryBackend()
    caps = backend.capabilities
    backend.capabilities = dataclasses.replace(
        caps, supported=caps.supported - {"dedupe"}, notes={"dedupe": "not here"}
    )
    try:
        declared = signups(
            "no-dedupe", ProcessorOptions(dedupe=Dedupe(key="{user_id}", ttl_ms=60_000))
        )
        first = await declared.enqueue(Signup(user_id="a"), backend=backend)
        second = await declared.enqueue(Signup(user_id="a"), backend=backend)
        assert first.id != second.id  # left out, as a processor's default priority is
        with pytest.raises(BackendError, match=r"dedupe mode 'drop'.*not here"):
            await declared.enqueue(
                Signup(user_id="a"), dedupe=Dedupe(key="{user_id}", ttl_ms=1), backend=backend
            )
    finally:
        await backend.close()


async def test_enqueue_many_deduplicates_within_the_batch() -> None:
    backend = MemoryBackend()
    try:
        queue = signups("batch", ProcessorOptions(dedupe=Dedupe(key="{user_id}", ttl_ms=60_000)))
        handles = await queue.enqueue_many(
            [Signup(user_id=u, n=i) for i, u in enumerate("abab")], backend=backend
        )
        ids = [h.id for h in handles]
        assert ids[0] == ids[2] and ids[1] == ids[3] and ids[0] != ids[1]
        assert (await backend.counts("batch")).waiting == 2
    finally:
        await backend.close()


# ---------------------------------------------------------------------------- SQLite's store


async def test_the_window_is_shared_by_backends_on_one_file(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    one, two = SqliteBackend(db), SqliteBackend(db)
    try:
        await one.enqueue_many([EnqueueRequest(queue="q", payload={"n": n}) for n in range(5)])
        limit = RateLimit(max=3, per_ms=60_000)
        await one.set_rate_limit("q", limit)
        await two.set_rate_limit("q", limit)
        first = await one.reserve("q", 2, 30_000, "w1")
        second = await two.reserve("q", 5, 30_000, "w2")
        assert (len(first), len(second)) == (2, 1)  # 3 between them, not 3 each
        assert await one.reserve("q", 5, 30_000, "w1") == []
        await two.set_rate_limit("q", None)  # no limit declared: this backend leases freely
        assert len(await two.reserve("q", 5, 30_000, "w2")) == 2
    finally:
        await one.close()
        await two.close()


async def test_an_idle_worker_sleeps_until_the_window_ends() -> None:
    clock = VirtualClock(start_ms=1_000_000)
    backend = MemoryBackend(clock=clock)
    try:
        await backend.enqueue_many([EnqueueRequest(queue="q", payload={"n": n}) for n in range(2)])
        await backend.set_rate_limit("q", RateLimit(max=1, per_ms=5000))
        assert len(await backend.reserve("q", 2, 30_000, "w")) == 1
        assert await backend.next_due_ms(["q"]) == 1_005_000
        assert await backend.reserve("q", 2, 30_000, "w") == []
        clock.advance(5000)
        assert len(await backend.reserve("q", 2, 30_000, "w")) == 1
    finally:
        await backend.close()


async def test_a_key_is_free_again_after_its_ttl() -> None:
    clock = VirtualClock(start_ms=1_000_000)
    backend = MemoryBackend(clock=clock)
    try:
        queue = signups("ttl")
        dedupe = Dedupe(key="{user_id}", ttl_ms=1000)
        first = await queue.enqueue(Signup(user_id="a"), dedupe=dedupe, backend=backend)
        clock.advance(999)
        assert (await queue.enqueue(Signup(user_id="a"), dedupe=dedupe, backend=backend)).id == (
            first.id
        )
        clock.advance(1)
        assert (await queue.enqueue(Signup(user_id="a"), dedupe=dedupe, backend=backend)).id != (
            first.id
        )
    finally:
        await backend.close()


STORED = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.binary(max_size=12),
)


@settings(max_examples=60, deadline=None)
@given(ends_at=STORED, starts=STORED, job_id=STORED, expires_at=STORED)
async def test_any_stored_window_or_key_leaves_leases_and_enqueues_working(
    ends_at: Any, starts: Any, job_id: Any, expires_at: Any
) -> None:
    """A row another program wrote into `rate_windows` or `dedupe_keys` (any type: the
    columns are NOT NULL, so SQLite itself refuses a NULL) never makes a lease or an enqueue
    raise, and a limit never lets more than `max` jobs through one lease."""
    backend = MemoryBackend()
    try:
        await backend.enqueue_many([EnqueueRequest(queue="q", payload={"n": n}) for n in range(4)])

        def corrupt(conn: sqlite3.Connection) -> None:
            for sql, args in (
                ("INSERT INTO rate_windows VALUES ('q', '', ?, ?)", (ends_at, starts)),
                ("INSERT INTO dedupe_keys VALUES ('q', 'k', ?, ?)", (job_id, expires_at)),
            ):
                with contextlib.suppress(sqlite3.IntegrityError):  # NULL in a NOT NULL column
                    conn.execute(sql, args)

        await backend._db.write(corrupt)
        await backend.set_rate_limit("q", RateLimit(max=2, per_ms=1000))
        leased = await backend.reserve("q", 4, 30_000, "w")
        assert len(leased) <= 2
        await backend.next_due_ms(["q"])
        queue = signups("q")
        handle = await queue.enqueue(
            Signup(user_id="k"), dedupe=Dedupe(key="k", ttl_ms=1000), backend=backend
        )
        assert isinstance(handle.id, str) and handle.id
    finally:
        await backend.close()


class WithoutRateLimits(MemoryBackend):
    """A pull source that cannot keep a rate limit (no `RateLimits`)."""

    set_rate_limit = None  # type: ignore[assignment]


async def test_a_source_without_rate_limits_says_so_and_runs_the_jobs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = WithoutRateLimits()
    assert not isinstance(backend, RateLimits)
    try:
        await backend.enqueue_many([EnqueueRequest(queue="q", payload={"n": n}) for n in range(3)])

        async def run(data: dict[str, int]) -> int:
            return data["n"]

        limited = ProcessorOptions(rate_limit=RateLimit(max=1, per_ms=60_000))
        processor = Processor.from_function("q", run, limited)
        report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
        assert report.completed == 3
        assert "cannot keep the processor's rate limit" in caplog.text
    finally:
        await backend.close()
