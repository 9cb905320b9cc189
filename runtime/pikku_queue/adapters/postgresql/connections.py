"""Statements on a connection that may be ours or the caller's, async or sync.

Why one small interface (`Tx`): the backend's own statements run on its pool's async psycopg
connections; a transactional enqueue runs the very same statements on the caller's connection,
inside the caller's transaction, and that connection may be a psycopg `AsyncConnection`, a
sync psycopg `Connection` (Django), or wrapped by SQLAlchemy. Each statement is written once,
against `Tx`.

`raw_connection` unwraps what a caller may hand over:

* a psycopg `AsyncConnection` or `Connection` (also an `AsyncCursor`/`Cursor`'s connection);
* SQLAlchemy: an `AsyncSession` or `AsyncConnection` (driver `postgresql+psycopg`), a sync
  `Session` or `Connection`: the psycopg connection under the session's current transaction;
* Django: `django.db.connection` (engine `django.db.backends.postgresql`, psycopg 3): its
  psycopg connection, open inside `transaction.atomic()`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Protocol

import psycopg

from pikku_queue.errors import BackendError

Params = Sequence[Any] | dict[str, Any] | None


class Tx(Protocol):
    """One transaction's statements."""

    async def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]: ...

    async def run(self, sql: str, params: Params = None) -> int:
        """Execute; return the rows it touched."""
        ...


class AsyncTx:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        cursor = await self.conn.execute(sql, params)
        return await cursor.fetchall() if cursor.description is not None else []

    async def run(self, sql: str, params: Params = None) -> int:
        cursor = await self.conn.execute(sql, params)
        return cursor.rowcount


class SyncTx:
    """A sync connection's statements, run in place: the caller's thread owns that connection
    (a Django request), so they block the loop for one round trip each, as the caller's own
    statements do."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    async def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []

    async def run(self, sql: str, params: Params = None) -> int:
        return self.conn.execute(sql, params).rowcount


async def raw_connection(
    connection: Any,
) -> psycopg.AsyncConnection[Any] | psycopg.Connection[Any]:
    """The psycopg connection behind what a caller passed (see the module doc)."""
    if isinstance(connection, psycopg.AsyncConnection | psycopg.Connection):
        return connection
    if isinstance(connection, psycopg.AsyncCursor | psycopg.Cursor):
        return connection.connection
    # SQLAlchemy: AsyncSession.connection() / Session.connection() → its Connection, whose
    # get_raw_connection() (a coroutine on AsyncConnection) is the pool's wrapper of the
    # driver's connection (`driver_connection`).
    sessionish = getattr(connection, "connection", None)
    if callable(sessionish) and hasattr(connection, "get_bind"):
        connection = sessionish()
        if inspect.isawaitable(connection):
            connection = await connection
    get_raw = getattr(connection, "get_raw_connection", None)
    if callable(get_raw):
        raw = get_raw()
        if inspect.isawaitable(raw):
            raw = await raw
        return await raw_connection(getattr(raw, "driver_connection", raw))
    # SQLAlchemy's sync Connection exposes the pool's wrapper as `.connection`.
    driver = getattr(sessionish, "driver_connection", None)
    if driver is not None:
        return await raw_connection(driver)
    if callable(getattr(connection, "ensure_connection", None)):
        raise BackendError(
            "Django's connection is bound to its thread and context: pass it to"
            " enqueue_sync / queue_job_sync (sync code), or pass connection.connection"
        )
    raise BackendError(
        "connection= takes a psycopg (3) connection or cursor, a SQLAlchemy session or"
        f" connection on psycopg, or Django's connection; got {type(connection).__name__}"
    )


def bind_connection(connection: Any) -> Any:
    """What a sync caller passed, resolved in the caller's own thread and context, before the
    enqueue runs in an event loop: Django's `connection` is local to them (inside a loop it
    is another, unopened wrapper), so its psycopg connection is taken here (Django opens it
    if need be). Anything else is returned as it is."""
    if callable(getattr(connection, "ensure_connection", None)) and not isinstance(
        connection, psycopg.Connection | psycopg.AsyncConnection
    ):
        connection.ensure_connection()
        return connection.connection
    return connection


def tx_of(conn: psycopg.AsyncConnection[Any] | psycopg.Connection[Any]) -> Tx:
    return AsyncTx(conn) if isinstance(conn, psycopg.AsyncConnection) else SyncTx(conn)
