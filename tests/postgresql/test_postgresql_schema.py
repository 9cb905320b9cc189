"""The schema the backend creates and migrates itself: several processes opening a fresh schema
at once migrate it once; a schema newer than this release is refused; URLs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import pytest
from pg_server import PostgresServer
from pikku_queue.adapters import connect
from pikku_queue.adapters.postgresql.backend import PostgresBackend
from pikku_queue.adapters.postgresql.schema import LATEST_VERSION
from pikku_queue.adapters.postgresql.url import parse_url
from pikku_queue.errors import BackendError

pytestmark = pytest.mark.postgresql

MIGRATE = """
import asyncio, sys
from pikku_queue.adapters.postgresql.backend import PostgresBackend

async def main():
    backend = PostgresBackend(sys.argv[1])
    await backend.migrate()
    await backend.close()

asyncio.run(main())
"""


async def test_processes_starting_together_migrate_once(postgres_server: PostgresServer) -> None:
    url = f"{postgres_server.url}?schema=m{uuid.uuid4().hex[:8]}"
    processes = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for process in processes:
        _, err = await asyncio.to_thread(process.communicate, timeout=60)
        assert process.returncode == 0, err.decode()
    backend = PostgresBackend(url)
    try:
        s = backend.settings.schema
        rows = await backend._run(lambda tx: tx.rows(f"SELECT version FROM {s}.version"))
        assert sorted(v for (v,) in rows) == list(range(1, LATEST_VERSION + 1))
    finally:
        await backend.close()


async def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    first = PostgresBackend(postgres_url)
    await first.migrate()
    s = first.settings.schema
    await first._run(
        lambda tx: tx.run(f"INSERT INTO {s}.version (version) VALUES (%s)", (LATEST_VERSION + 1,))
    )
    await first.close()
    later = PostgresBackend(postgres_url)
    try:
        with pytest.raises(BackendError, match="newer than this pikku-queue knows"):
            await later.counts("q")
    finally:
        await later.close()


def test_url_parameters() -> None:
    settings = parse_url(
        "postgres://u:p@h:5/db?schema=jobs&pool_size=2&remove_on_complete=100&sslmode=require"
    )
    assert settings.schema == "jobs" and settings.pool_size == 2
    assert settings.remove_on_complete == 100
    assert settings.conninfo == "postgresql://u:p@h:5/db?sslmode=require"
    with pytest.raises(BackendError, match="plain lowercase"):
        parse_url("postgresql://h/db?schema=Bad-Name")
    with pytest.raises(BackendError, match="pool_size"):
        parse_url("postgresql://h/db?pool_size=0")
    assert isinstance(connect("postgresql://h/db"), PostgresBackend)
