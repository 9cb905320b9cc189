"""Commands packed by hiredis's C `pack_command` instead of redis-py's Python one.

redis-py's asyncio connections pack every command in Python (its sync connections use hiredis
when it is installed): for BullMQ's scripts, with 10-15 keys and args each, packing was the
largest cost left per job. `fast_packing(client)` makes a client's pool build connections that
let hiredis pack; anything hiredis cannot pack as redis-py would (a str that is not valid
UTF-8, such as undecodable job data read back with surrogateescape; a type redis-py refuses
with its own error) goes through redis-py's packer unchanged.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

try:
    import hiredis
except ImportError:  # the redis extra installs it; without it nothing changes
    hiredis = None  # type: ignore[assignment]

_PACKED: dict[type[Any], type[Any]] = {}


class _HiredisPacking:
    """Mixed in before a redis-py asyncio connection class."""

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        if isinstance(first, str) and " " not in first and all(type(a) is not bool for a in args):
            try:
                return [hiredis.pack_command(args)]
            except (TypeError, UnicodeError, ValueError):
                pass
        packed: list[bytes] = super().pack_command(*args)  # type: ignore[misc]
        return packed


def fast_packing(client: aioredis.Redis) -> aioredis.Redis:
    """`client`, whose connections (made from now on) let hiredis pack commands."""
    if hiredis is None:
        return client
    pool = client.connection_pool
    base = pool.connection_class
    if not issubclass(base, _HiredisPacking):
        packed = _PACKED.get(base)
        if packed is None:
            packed = _PACKED[base] = type(
                f"HiredisPacked{base.__name__}", (_HiredisPacking, base), {}
            )
        pool.connection_class = packed
    return client
