"""The producer API against a real in-process backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
from pikku_queue.adapters.catalog import CAPABILITIES
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.client import (
    JobHandle,
    TypedQueue,
    get_default_backend,
    known_queues,
    queue_job,
    queue_job_sync,
    set_default_backend,
)
from pikku_queue.errors import (
    BackendError,
    InvalidEnqueueOptionsError,
    PayloadValidationError,
    UnknownQueueError,
)
from pikku_queue.options import ProcessorOptions, Repeat
from pikku_queue.records import JobState
from pikku_queue.registry import QueueEntry, Registry, known_registries
from pydantic import BaseModel, Field, TypeAdapter


class Email(BaseModel):
    to: str
    subject: str


@pytest.fixture
async def backend() -> AsyncIterator[MemoryBackend]:
    backend = MemoryBackend()
    yield backend
    await backend.close()


@pytest.fixture(autouse=True)
def registry() -> Iterator[Registry]:
    """The queues the untyped `queue_job` calls below use, known as a generated registry
    makes them known (a queue nobody knows is refused)."""
    names = ["cleanup-task", "q", "cleanup", "sync-q"]
    registry = Registry(
        [QueueEntry(name=n, function="tests.nowhere", options=ProcessorOptions()) for n in names]
    )
    yield registry
    known_registries.remove(registry)


@pytest.fixture
def email_queue() -> Iterator[TypedQueue[Email, str]]:
    queue = TypedQueue("email-client-test", TypeAdapter(Email), TypeAdapter(str))
    yield queue
    known_queues.pop(queue.name, None)


async def test_enqueue_dumps_json_and_returns_a_handle(
    backend: MemoryBackend, email_queue: TypedQueue[Email, str]
) -> None:
    handle = await email_queue.enqueue(Email(to="a@b.c", subject="hi"), backend=backend)
    info = await handle.info()
    assert info is not None
    assert info.payload == {"to": "a@b.c", "subject": "hi"}
    assert info.state == JobState.WAITING
    assert (handle.queue, handle.backend) == (email_queue.name, backend)


async def test_queue_job_validates_through_a_known_queue(
    backend: MemoryBackend, email_queue: TypedQueue[Email, str]
) -> None:
    with pytest.raises(PayloadValidationError, match="subject"):
        await queue_job(email_queue.name, {"to": "a@b.c"}, backend=backend)
    assert (await backend.counts(email_queue.name)).waiting == 0
    handle = await queue_job(email_queue.name, {"to": "a@b.c", "subject": "s"}, backend=backend)
    assert await handle.status() == JobState.WAITING


class Sized(BaseModel):
    width: int = Field(gt=0)


async def test_a_constructed_invalid_model_is_refused_at_enqueue(backend: MemoryBackend) -> None:
    queue = TypedQueue("sized-client-test", TypeAdapter(Sized), TypeAdapter(int))
    try:
        with pytest.raises(PayloadValidationError, match="width"):
            await queue.enqueue(Sized.model_construct(width=-1), backend=backend)
        assert (await backend.counts(queue.name)).waiting == 0
    finally:
        known_queues.pop(queue.name, None)


async def test_queue_job_on_a_queue_only_a_registry_knows_only_needs_json(
    backend: MemoryBackend,
) -> None:
    handle = await queue_job("cleanup-task", {}, backend=backend)
    assert (await handle.info()).payload == {}  # type: ignore[union-attr]
    with pytest.raises(PayloadValidationError, match="not JSON-serialisable"):
        await queue_job("cleanup-task", {"when": object()}, backend=backend)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [float("-inf")]])
async def test_untyped_queue_job_refuses_nan_and_infinity_instead_of_sending_null(
    backend: MemoryBackend, value: object
) -> None:
    with pytest.raises(PayloadValidationError, match="not JSON-serialisable"):
        await queue_job("cleanup-task", {"n": value}, backend=backend)
    assert (await backend.counts("cleanup-task")).waiting == 0


async def test_queue_job_on_a_queue_nobody_knows_is_refused(backend: MemoryBackend) -> None:
    with pytest.raises(UnknownQueueError, match=r"no queue 'cleanup-tsk'; known: .*cleanup-task"):
        await queue_job("cleanup-tsk", {}, backend=backend)
    assert (await backend.counts("cleanup-tsk")).waiting == 0


async def test_processor_defaults_apply_when_the_job_gives_none(backend: MemoryBackend) -> None:
    queue = TypedQueue(
        "defaults-test",
        TypeAdapter(int),
        TypeAdapter(int),
        ProcessorOptions(delay=5000, priority=3),
    )
    try:
        delayed = await queue.enqueue(1, backend=backend)
        now = await queue.enqueue(2, delay=0, backend=backend)
    finally:
        known_queues.pop(queue.name)
    assert await delayed.status() == JobState.DELAYED
    assert await now.status() == JobState.WAITING


async def test_unsupported_features_are_refused_before_sending(backend: MemoryBackend) -> None:
    backend.capabilities = replace(CAPABILITIES["sqs"], backend="sqs")
    with pytest.raises(BackendError, match="priorit"):
        await queue_job("q", 1, priority=1, backend=backend)
    with pytest.raises(InvalidEnqueueOptionsError, match="at most 900000 ms"):
        await queue_job("q", 1, delay=900_001, backend=backend)
    assert (await backend.counts("q")).waiting + (await backend.counts("q")).delayed == 0


async def test_a_default_priority_is_dropped_where_priorities_do_not_exist(
    backend: MemoryBackend,
) -> None:
    backend.capabilities = replace(CAPABILITIES["sqs"], backend="sqs")
    queue = TypedQueue(
        "prioritised-client-test",
        TypeAdapter(int),
        TypeAdapter(int),
        ProcessorOptions(priority=10),
    )
    try:
        handle = await queue.enqueue(7, backend=backend)
        assert (await backend.counts(queue.name)).waiting == 1
        assert handle.id
        with pytest.raises(BackendError, match="priorit"):
            await queue.enqueue(7, priority=1, backend=backend)
    finally:
        known_queues.pop(queue.name, None)


async def test_repeat_returns_one_schedule_per_key(backend: MemoryBackend) -> None:
    first = await queue_job("cleanup", {}, repeat=Repeat(cron="0 2 * * *"), backend=backend)
    again = await queue_job("cleanup", {}, repeat=Repeat(cron="0 2 * * *"), backend=backend)
    other = await queue_job("cleanup", {"x": 1}, repeat=Repeat(cron="0 2 * * *"), backend=backend)
    assert first.id == again.id != other.id
    assert first.id.startswith("repeat:")


async def test_enqueue_sync_works_inside_a_running_loop() -> None:
    # Sync code called from async code (a Django view under ASGI): runs on a helper thread.
    set_default_backend("memory://client-sync-test")
    try:
        handle = queue_job_sync("sync-q", {"a": 1})
        assert await handle.status() == JobState.WAITING
        assert get_default_backend() is handle.backend
    finally:
        await get_default_backend().close()
        set_default_backend(None)


def test_enqueue_sync_from_plain_sync_code(email_queue: TypedQueue[Email, str]) -> None:
    backend = MemoryBackend()
    try:
        handle = email_queue.enqueue_sync(Email(to="x@y.z", subject="s"), backend=backend)
        assert asyncio.run(handle.status()) == JobState.WAITING
    finally:
        asyncio.run(backend.close())  # its SQLite connection


async def test_result_times_out_while_the_job_waits(
    backend: MemoryBackend, email_queue: TypedQueue[Email, str]
) -> None:
    handle = await email_queue.enqueue(Email(to="a@b.c", subject="s"), backend=backend)
    with pytest.raises(TimeoutError):
        await handle.result(timeout=0.05)


async def test_result_of_a_job_that_is_not_there_fails_at_once(backend: MemoryBackend) -> None:
    handle: JobHandle[int] = JobHandle("no-such-job", "q", backend)
    with pytest.raises(BackendError, match="no-such-job"):
        await asyncio.wait_for(handle.result(), 10)  # not a wait for ever
    backend.capabilities = replace(CAPABILITIES["sqs"], backend="sqs")
    with pytest.raises(BackendError, match="does not support job results"):
        await handle.result()


async def test_enqueue_many_is_one_call(
    backend: MemoryBackend, email_queue: TypedQueue[Email, str]
) -> None:
    handles = await email_queue.enqueue_many(
        [Email(to=f"{n}@b.c", subject="s") for n in range(5)], backend=backend
    )
    assert len({h.id for h in handles}) == 5
    assert (await backend.counts(email_queue.name)).waiting == 5
    with pytest.raises(PayloadValidationError):
        await email_queue.enqueue_many([{"to": "x"}], backend=backend)  # type: ignore[list-item]


async def test_configured_url_is_used_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PIKKU_QUEUE_URL", raising=False)
    queue = TypedQueue("configured", TypeAdapter(int), TypeAdapter(int), backend_url="memory://cfg")
    try:
        configured = await queue.enqueue(1)
        assert configured.backend.url == "memory://cfg"
        monkeypatch.setenv("PIKKU_QUEUE_URL", "memory://from-env")
        from_env = await queue.enqueue(2)
        assert from_env.backend.url == "memory://from-env"
        explicit = MemoryBackend()
        set_default_backend(explicit)
        assert (await queue.enqueue(3)).backend is explicit
    finally:
        set_default_backend(None)
        known_queues.pop(queue.name, None)
        for handle in (configured, from_env):
            await handle.backend.close()
