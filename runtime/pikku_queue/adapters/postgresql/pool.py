"""A small pool of autocommit connections for one event loop, without background tasks.

Why not psycopg-pool: its pool runs tasks of its own (connecting, health checks), and an
event loop that ends without closing it first (every `enqueue_sync` call runs in a fresh
`asyncio.run`) hangs cancelling them. Here a connection is opened when a statement needs one
and none is idle, at most `size` at a time; one that comes back broken (a server restart,
a connection killed) or inside a transaction is closed instead of kept, so the next
statement opens a fresh one: workers reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus


class ConnectionPool:
    def __init__(self, conninfo: str, size: int) -> None:
        self.conninfo = conninfo
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            try:
                yield conn
            finally:
                healthy = (
                    not conn.closed
                    and not self._closed
                    and conn.info.transaction_status == TransactionStatus.IDLE
                )
                if healthy:
                    self._idle.append(conn)
                else:
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close()
