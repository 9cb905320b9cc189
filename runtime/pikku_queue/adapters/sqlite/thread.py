"""The one thread that owns a SQLite backend's connection, and its group commit.

Why a thread of its own: the event loop must never block on the file (a busy lock can wait
for seconds). All statements of one backend run on one thread, so the connection is never
shared between threads at the same moment.

Why group commit: writes issued while a transaction runs are queued and run together in the
next one, so 50 processors finishing at once cost one commit (one fsync), not 50. A write
that raises is rolled back and the others of its group are re-run alone, so it never takes
them down with it.

`inline=True` (the `memory://` backend) runs every statement on the event loop instead, still
behind a real suspension point, so tests exercise the same transactions without a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from pikku_queue.adapters.sqlite.schema import open_connection
from pikku_queue.errors import BackendError

T = TypeVar("T")
#: A unit of work on the connection; writes run inside a transaction opened for them.
Tx = Callable[[sqlite3.Connection], T]
_Waiting = tuple[Tx[Any], asyncio.AbstractEventLoop, asyncio.Future[Any]]


def _make_folder(database: Path) -> None:
    """Create the database's own folder (`.pikku/` of the default URL), never more: a URL with
    a mistyped absolute path (`sqlite:////nonexistent-dir/x/q.db`) is refused, not turned into
    a tree of folders under `/`."""
    folder = database.parent
    if folder.is_dir():
        return
    if not folder.parent.is_dir():
        raise BackendError(
            f"cannot open the SQLite database {database}: neither its folder {folder} nor "
            f"{folder.parent} exists (only the database's own folder is created, like .pikku/);"
            " create the path first or fix the URL (sqlite:////abs/path.db is absolute,"
            " sqlite:///rel/path.db relative to the project root)"
        )
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise BackendError(
            f"cannot create the folder {folder} of the SQLite database: {exc.strerror or exc}"
        ) from None


class ConnectionThread:
    """Runs reads and batched write transactions on one connection, off the event loop."""

    def __init__(self, path: str, *, label: str, busy_timeout_ms: int, inline: bool) -> None:
        self.label = label
        self._inline = inline
        self._lock = threading.Lock()
        self._pending: list[_Waiting] = []
        self._flush_scheduled = False
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        if not inline:
            if path != ":memory:":
                _make_folder(Path(path))
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pikku-sqlite")
        self._conn = open_connection(path, busy_timeout_ms)

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(f"{self.label} is closed")

    async def write(self, fn: Tx[T]) -> T:
        """Run `fn` in a write transaction, grouped with the writes queued beside it."""
        self._check_open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._inline:
            await asyncio.sleep(0)  # still a real suspension point, like every other backend
            with self._lock:
                self._run_group([(fn, loop, future)])
            return await future
        with self._lock:
            self._pending.append((fn, loop, future))
            schedule = not self._flush_scheduled
            self._flush_scheduled = True
        if schedule:
            assert self._executor is not None
            self._executor.submit(self._flush)
        return await future

    async def read(self, fn: Tx[T]) -> T:
        """Run `fn` outside any transaction (WAL gives it a consistent snapshot per statement)."""
        self._check_open()
        if self._inline:
            await asyncio.sleep(0)
            with self._lock:
                return fn(self._conn)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._conn)

    async def close(self) -> None:
        """Finish the writes already queued, then close the connection and the thread."""
        if self._closed:
            return
        self._closed = True
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._flush)
            await loop.run_in_executor(self._executor, self._conn.close)
            self._executor.shutdown(wait=True)
        else:
            with self._lock:
                self._conn.close()

    def _flush(self) -> None:
        with self._lock:
            group, self._pending = self._pending, []
            self._flush_scheduled = False
        if group:
            self._run_group(group)

    def _run_group(self, group: list[_Waiting]) -> None:
        """Run writes in one transaction and hand every result back to the loop that asked.

        Optimistic: the whole group runs in one transaction; only if a write raises is it
        rolled back and every write re-run alone, so one bad write never undoes the others
        and the common case pays no savepoints."""
        try:
            results = self._transaction([fn for fn, _, _ in group])
        except Exception as exc:
            if len(group) == 1:
                results = [(False, exc)]
            else:
                results = []
                for fn, _, _ in group:
                    try:
                        results.extend(self._transaction([fn]))
                    except Exception as alone:
                        results.append((False, alone))
        for (_, loop, future), (ok, value) in zip(group, results, strict=True):
            if self._inline:
                _resolve(future, ok, value)
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_resolve, future, ok, value)

    def _transaction(self, fns: list[Tx[Any]]) -> list[tuple[bool, Any]]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            values = [(True, fn(conn)) for fn in fns]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return values


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
