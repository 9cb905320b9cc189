"""Every `backend=` parameter takes what `--backend` takes: a backend, or a URL, resolved by
the one resolver (anchored at the project root, opened once per process). A URL there used to
be an `AttributeError` deep inside the enqueue; anything else is a TypeError saying what the
parameter takes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pikku_queue import client
from pikku_queue.adapters import connect
from pikku_queue.backend import Backend, Closable
from pikku_queue.client import TypedQueue, backend_for, known_queues, queue_job, queue_job_sync
from pikku_queue.errors import BackendError
from pikku_queue.monitor import QueueMonitor
from pikku_queue.options import ProcessorOptions
from pikku_queue.registry import QueueEntry, Registry, known_registries
from pydantic import TypeAdapter

QUEUE = "backend-argument"
ONLY_IN_REGISTRY = "backend-argument-registry"


@pytest.fixture(autouse=True)
async def opened() -> AsyncIterator[None]:
    """Close what the client opened from a URL in this test, and forget it."""
    before = dict(client._opened)
    yield
    for url, backend in list(client._opened.items()):
        if url not in before:
            del client._opened[url]
            if isinstance(backend, Closable):
                await backend.close()


@pytest.fixture
def typed(tmp_path: Path) -> Iterator[TypedQueue[int, int]]:
    queue: TypedQueue[int, int] = TypedQueue(
        QUEUE, TypeAdapter(int), TypeAdapter(int), root=tmp_path
    )
    yield queue
    known_queues.pop(QUEUE, None)


@pytest.fixture
def registry() -> Iterator[Registry]:
    entry = QueueEntry(
        name=ONLY_IN_REGISTRY, function="x.y", options=ProcessorOptions(), input="int", output="int"
    )
    made = Registry([entry])
    yield made
    known_registries.remove(made)


async def _waiting(url: str, queue: str) -> int:
    backend = connect(url)
    try:
        return (await backend.counts(queue)).waiting
    finally:
        if isinstance(backend, Closable):
            await backend.close()


async def test_every_enqueue_path_takes_a_url(
    tmp_path: Path, typed: TypedQueue[int, int], registry: Registry
) -> None:
    url = f"sqlite:///{tmp_path}/by-url.db"
    await typed.enqueue(1, backend=url)
    await typed.enqueue_many([2, 3], backend=url)
    await queue_job(QUEUE, 4, backend=url)
    await queue_job(ONLY_IN_REGISTRY, 5, backend=url)
    await asyncio.to_thread(typed.enqueue_sync, 6, backend=url)
    await asyncio.to_thread(queue_job_sync, QUEUE, 7, backend=url)
    assert await _waiting(url, QUEUE) == 6
    assert await _waiting(url, ONLY_IN_REGISTRY) == 1
    stats = await QueueMonitor([QUEUE], backend=url).get_stats(QUEUE)
    assert stats.waiting == 6


async def test_a_relative_sqlite_url_is_the_project_s_file(
    tmp_path: Path, typed: TypedQueue[int, int]
) -> None:
    handle = await typed.enqueue(1, backend="sqlite:///.pikku/relative.db")
    assert (tmp_path / ".pikku" / "relative.db").is_file()  # anchored at the queue's root
    assert handle.backend is backend_for(f"sqlite:///{tmp_path}/.pikku/relative.db")


def test_one_url_is_one_backend_per_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/once.db"
    first = backend_for(url)
    assert isinstance(first, Backend)
    assert backend_for(url) is first
    assert backend_for(first) is first


async def test_a_url_nobody_serves_is_a_backend_error_not_an_attribute_error(
    typed: TypedQueue[int, int],
) -> None:
    with pytest.raises(BackendError, match="unknown backend URL scheme"):
        await typed.enqueue(1, backend="sqlit:///typo.db")


@pytest.mark.parametrize("wrong", [42, b"sqlite:///x.db", object()])
async def test_anything_else_says_what_backend_takes(
    typed: TypedQueue[int, int], wrong: object
) -> None:
    with pytest.raises(TypeError, match=r"backend= takes a backend .* or a backend URL"):
        await typed.enqueue(1, backend=wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="backend= takes"):
        await QueueMonitor([QUEUE], backend=wrong).get_stats(QUEUE)  # type: ignore[arg-type]
