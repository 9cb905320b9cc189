"""One trace from producer to worker on Redis: the trace context rides in BullMQ's telemetry
opt (`opts.tm`), outside `data`, so the job's payload is exactly what Node would read."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "observability"))

from pikku_queue.adapters.redis.backend import RedisBackend
from test_tracing import one_trace, spans  # noqa: F401  (the fixture)

pytestmark = pytest.mark.redis


async def test_one_trace_on_redis(backend: RedisBackend, spans) -> None:  # noqa: F811
    await one_trace(backend, spans, "traced")
    client = await backend.client()
    [key] = [
        k
        for k in await client.keys(backend.key("traced", "*"))
        if (await client.type(k)) in (b"hash", "hash") and await client.hexists(k, "opts")
    ]
    stored = await client.hgetall(key)
    fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in stored.items()}
    assert json.loads(fields["data"]) == {"n": 21}  # the payload, untouched
    assert "traceparent" in json.loads(json.loads(fields["opts"])["tm"])
