"""The shared conformance suite, run against BullMQ on a real redis-server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import Backend
from pikku_queue.conformance import BackendConformance
from pikku_queue.conformance.suite import UNDECODABLE_IDS, UNDECODABLE_PAYLOADS

pytestmark = pytest.mark.redis


class TestRedisConformance(BackendConformance):
    lease_ms = 1000

    @pytest.fixture
    async def backend(self, redis_url: str) -> AsyncIterator[RedisBackend]:
        backend = RedisBackend(redis_url)
        try:
            yield backend
        finally:
            await backend.close()

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
