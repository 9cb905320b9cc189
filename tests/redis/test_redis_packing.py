"""hiredis packs commands byte for byte as redis-py would, and what it cannot pack the same
way (a str holding surrogate escapes of undecodable bytes, a bool) still goes through
redis-py's own packer, with its own result or error."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from pikku_queue.adapters.redis.jobs import ENCODING_ERRORS
from pikku_queue.adapters.redis.packing import fast_packing
from redis.exceptions import DataError

CASES: list[tuple[Any, ...]] = [
    ("EVALSHA", "abc123", 2, "bull:q:wait", "bull:q:active", 1733050000000, b"\x82\xa1t\x01"),
    ("SET", "key", "caf\u00e9", "PX", 30000),
    ("ZADD", "bull:q:marker", 0.5, "0"),
    ("CONFIG GET", "maxmemory"),  # a command name with a space: split by redis-py
    ("SET", "raw", "\udcff\udcfe{"),  # undecodable bytes read back with surrogateescape
]


def connections() -> tuple[Any, Any]:
    url = "redis://127.0.0.1:1/0"
    plain = aioredis.Redis.from_url(url, encoding_errors=ENCODING_ERRORS)
    fast = fast_packing(aioredis.Redis.from_url(url, encoding_errors=ENCODING_ERRORS))
    assert fast.connection_pool.connection_class is not plain.connection_pool.connection_class
    return (
        plain.connection_pool.make_connection(),
        fast.connection_pool.make_connection(),
    )


@pytest.mark.parametrize("args", CASES)
def test_packed_bytes_are_redis_pys(args: tuple[Any, ...]) -> None:
    plain, fast = connections()
    assert b"".join(fast.pack_command(*args)) == b"".join(plain.pack_command(*args))


def test_what_redis_py_refuses_it_still_refuses() -> None:
    _, fast = connections()
    with pytest.raises(DataError):
        fast.pack_command("SET", "key", True)
