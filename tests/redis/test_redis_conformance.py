"""The shared conformance suite, run against BullMQ on a real redis-server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from pikku_queue.adapters.redis import RedisBackend
from pikku_queue.backend import Backend
from pikku_queue.conformance import BackendConformance

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
