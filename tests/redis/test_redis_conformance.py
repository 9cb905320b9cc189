"""The shared conformance suite, run against BullMQ on a real redis-server."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import redis.asyncio
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import Backend
from pikku_queue.conformance import BackendConformance
from pikku_queue.conformance.suite import UNDECODABLE_IDS, UNDECODABLE_PAYLOADS

pytestmark = pytest.mark.redis

#: What a raw HSET can leave in any field: nothing (HDEL), text, bytes that are not UTF-8,
#: numbers of every size and the near misses found by hand.
RAW = (
    st.none()
    | st.text(max_size=20)
    | st.binary(min_size=1, max_size=20)
    | st.integers(-(2**70), 2**70).map(str)
    | st.floats().map(repr)
    | st.sampled_from(["", "-1", "1.5", "1e400", "NaN", "{}", "[]", "null", "true", "{{"])
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
#: The options BullMQ's readers look at, with any JSON value: wrong types inside the object.
OPTS_KEYS = st.sampled_from(
    ["attempts", "backoff", "delay", "priority", "removeOnComplete", "removeOnFail", "kl",
     "keepLogs", "stackTraceLimit", "lifo", "fpof", "rdof", "jobId", "tm", "parent", "de",
     "timestamp", "sizeLimit", "repeat", "other"]
)  # fmt: skip
OPTS = st.dictionaries(OPTS_KEYS, JSON_VALUE, max_size=3).map(json.dumps)
JSON_TEXT = JSON_VALUE.map(lambda value: json.dumps(value))
INTEGER = RAW | st.integers(-(2**64), 2**64).map(str)
TEXT = RAW | st.text(max_size=30)

REDIS_FIELDS: dict[str, SearchStrategy[object]] = {
    "data": RAW | JSON_TEXT | st.just('{"n": 1e400}'),
    "opts": RAW | OPTS | JSON_TEXT,
    "name": TEXT,
    "timestamp": INTEGER,
    "delay": INTEGER,
    "priority": INTEGER,
    "atm": INTEGER,
    "attemptsMade": INTEGER,
    "stc": INTEGER,
    "ats": INTEGER,
    "processedOn": INTEGER,
    "finishedOn": INTEGER,
    "progress": RAW | JSON_TEXT,
    "stacktrace": RAW | JSON_TEXT,
    "parent": RAW
    | JSON_TEXT
    | st.fixed_dictionaries({"id": st.text(max_size=5), "queueKey": st.text(max_size=12)}).map(
        json.dumps
    ),
    "parentKey": TEXT,
}
#: The cases of the hand-made report beyond the suite's own (opts of the wrong types inside, an
#: attempt count with a fraction): each must be dead-lettered, never run.
REDIS_NAMED: list[tuple[str, object]] = [
    ("opts", "{{"),
    ("opts", "[1]"),
    ("opts", '{"attempts": "3"}'),
    ("opts", '{"backoff": "fast"}'),
    ("opts", '{"removeOnFail": "yes"}'),
    ("opts", '{"attempts": 1e400}'),
    ("timestamp", "abc"),
    ("atm", "1.5"),
    ("attemptsMade", "1.5"),
    ("stc", "x"),
    ("ats", "1.5"),
    ("delay", "-1"),
    ("priority", str(2**70)),
    ("parent", "{{"),
    ("data", '{"id": 1e400}'),
    ("name", b"\xff\xfe"),
]


class TestRedisConformance(BackendConformance):
    lease_ms = 1000

    @pytest.fixture
    async def backend(self, redis_url: str) -> AsyncIterator[RedisBackend]:
        backend = RedisBackend(redis_url)
        try:
            yield backend
        finally:
            await backend.close()

    def stored_fields(self) -> Mapping[str, SearchStrategy[object]]:
        return REDIS_FIELDS

    async def corrupt(
        self, backend: Backend, queue: str, job_id: str, field: str, value: object
    ) -> None:
        """A raw HSET of the job hash (HDEL for None), as a producer writing hashes leaves it."""
        assert isinstance(backend, RedisBackend)
        client = await backend.client()
        key = backend.key(queue, job_id)
        assert await client.exists(key), f"no job {job_id} in {queue}"
        if value is None:
            await client.hdel(key, field)
        else:
            await client.hset(key, field, value if isinstance(value, bytes | str) else str(value))

    @pytest.mark.parametrize(("field", "value"), REDIS_NAMED, ids=[f for f, _ in REDIS_NAMED])
    async def test_a_named_bad_hash_field_is_dead_lettered_naming_it(
        self, backend: RedisBackend, field: str, value: object
    ) -> None:
        await self.poison_one(backend, field, value, named=True)

    async def inject_raw(self, backend: Backend, queue: str, raw: str | bytes) -> str:
        """A job added the BullMQ way whose `data` field is then overwritten by a raw HSET
        (no worker runs yet), as a producer writing the hash itself would leave it."""
        assert isinstance(backend, RedisBackend)
        bull = await backend.queue(queue)
        job = await bull.add(queue, {"n": 0})
        client = await backend.client()
        await client.hset(backend.key(queue, str(job.id)), "data", raw)
        return str(job.id)

    async def stored_raw(self, backend: Backend, queue: str, job_id: str) -> bytes:
        """The job hash's `data` field as bytes (a raw HGET on a client that decodes nothing)."""
        assert isinstance(backend, RedisBackend)
        client = redis.asyncio.Redis.from_url(backend.settings.connection_url)
        try:
            data = await client.hget(backend.key(queue, job_id), "data")
        finally:
            await client.aclose()
        assert isinstance(data, bytes), f"no job {job_id} in {queue}"
        return data

    @pytest.mark.parametrize("raw", UNDECODABLE_PAYLOADS, ids=UNDECODABLE_IDS)
    async def test_replay_re_adds_a_removed_undecodable_job_raw(
        self, backend: RedisBackend, queue: str, raw: str | bytes
    ) -> None:
        """The job BullMQ no longer holds (removed from the failed set, e.g. by `clean` or
        `removeOnFail`) is re-added by replay with its raw payload, not a JSON string."""
        dlq = f"{queue}-dlq"

        async def double(data: Any) -> None:
            return None

        bad = await self.inject_raw(backend, queue, raw)
        await self.run_burst(backend, [self.processor(queue, double, dead_letter_queue=dlq)])
        [record] = await backend.dead_letters(dlq)
        assert record.job_id == bad
        client = await backend.client()
        await client.delete(backend.key(queue, bad))
        await client.zrem(backend.key(queue, "failed"), bad)
        assert await (await backend.queue(queue)).getJobState(bad) == "unknown"
        assert await backend.replay(dlq) == 1
        original = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        assert await self.stored_raw(backend, queue, bad) == original
        assert await (await backend.queue(queue)).getJobState(bad) == "waiting"

    async def abandon(self, backend: Backend, queue: str) -> str:
        """Take one job the way a BullMQ worker does (moveToActive with a lock of `lease_ms`),
        then never renew the lock nor finish the job: a worker that died."""
        assert isinstance(backend, RedisBackend)
        bull = await backend.queue(queue)
        token = f"dead-worker-{uuid.uuid4().hex}:1"
        raw = await bull.backend.moveToActive(token, {"lockDuration": self.lease_ms})
        job_data, job_id = raw[0], raw[1]
        assert job_data, "no job to abandon"
        return str(job_id)
