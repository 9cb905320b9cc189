"""Payloads that cannot be written are refused at enqueue, never converted or crashed on.

`queue_job` on a queue only an imported registry knows (the generated client not imported)
sends JSON data as it is and refuses everything else, with the typed path's rule applied to
"any JSON value": pydantic's `Any` used to turn a datetime, `Decimal('NaN')`, a complex or a
set into a string or a list the processor never asked for. A model built with
`model_construct` whose bytes are not UTF-8 is a `PayloadValidationError` like any payload
that cannot be written (it was a raw `UnicodeDecodeError`)."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.client import TypedQueue, known_queues, queue_job, run_sync
from pikku_queue.errors import PayloadValidationError
from pikku_queue.options import ProcessorOptions
from pikku_queue.registry import QueueEntry, Registry, known_registries
from pydantic import BaseModel, TypeAdapter

QUEUE = "untyped-payloads"


class Colour(enum.Enum):
    RED = "red"


#: Not JSON data: each was sent converted (or crashed) before.
NOT_JSON: dict[str, Any] = {
    "datetime": datetime.datetime(2024, 5, 1, 12, 30),
    "date": datetime.date(2024, 5, 1),
    "time": datetime.time(12, 30),
    "timedelta": datetime.timedelta(seconds=5),
    "Decimal NaN": decimal.Decimal("NaN"),
    "Decimal": decimal.Decimal("1.50"),
    "complex": 1 + 2j,
    "set": {1, 2},
    "frozenset": frozenset({"a"}),
    "tuple": (1, 2),
    "bytes": b"raw",
    "bytearray": bytearray(b"raw"),
    "UUID": uuid.UUID(int=7),
    "Path": Path("/tmp/x"),
    "Enum": Colour.RED,
    "object": object(),
}


@pytest.fixture
async def backend() -> AsyncIterator[MemoryBackend]:
    backend = MemoryBackend()
    yield backend
    await backend.close()


@pytest.fixture(autouse=True)
def registry() -> Iterator[Registry]:
    entry = QueueEntry(
        name=QUEUE, function="x.y", options=ProcessorOptions(), input="dict", output="None"
    )
    made = Registry([entry])
    yield made
    known_registries.remove(made)


@pytest.mark.parametrize("value", NOT_JSON.values(), ids=NOT_JSON.keys())
@pytest.mark.parametrize("where", ["top", "in a dict", "in a list", "deep"])
async def test_a_value_that_is_not_json_is_refused_not_converted(
    backend: MemoryBackend, value: Any, where: str
) -> None:
    payload: Any = {
        "top": value,
        "in a dict": {"field": value},
        "in a list": [1, value],
        "deep": {"a": [{"b": value}]},
    }[where]
    with pytest.raises(PayloadValidationError, match="not JSON-serialisable") as caught:
        await queue_job(QUEUE, payload, backend=backend)
    named = {"top": "the payload", "in a dict": "field", "in a list": "1", "deep": "a.0.b"}
    assert f"{named[where]} is {type(value).__name__}" in str(caught.value)
    assert (await backend.counts(QUEUE)).waiting == 0


@pytest.mark.parametrize("key", [1, 1.5, None, True, (1, 2)], ids=repr)
async def test_a_key_that_is_not_a_string_is_refused(backend: MemoryBackend, key: Any) -> None:
    with pytest.raises(PayloadValidationError, match="a key is"):
        await queue_job(QUEUE, {key: "v"}, backend=backend)
    assert (await backend.counts(QUEUE)).waiting == 0


class Reminder(BaseModel):
    at: datetime.datetime
    amount: decimal.Decimal


@dataclass
class Point:
    x: int
    y: int


async def test_a_model_or_dataclass_is_sent_by_its_own_type(backend: MemoryBackend) -> None:
    reminder = Reminder(at=datetime.datetime(2024, 5, 1, 12, 30), amount=decimal.Decimal("1.5"))
    handle = await queue_job(QUEUE, reminder, backend=backend)
    stored = (await handle.info()).payload  # type: ignore[union-attr]
    assert stored == {"at": "2024-05-01T12:30:00", "amount": "1.5"}
    handle = await queue_job(QUEUE, Point(1, 2), backend=backend)
    assert (await handle.info()).payload == {"x": 1, "y": 2}  # type: ignore[union-attr]
    with pytest.raises(PayloadValidationError, match="amount"):
        await queue_job(
            QUEUE, Reminder.model_construct(at=reminder.at, amount="x"), backend=backend
        )


JSON_DATA = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=JSON_DATA)
def test_json_data_is_sent_exactly_as_it_is(backend: MemoryBackend, data: Any) -> None:
    async def send() -> Any:
        handle = await queue_job(QUEUE, data, backend=backend)
        return (await handle.info()).payload  # type: ignore[union-attr]

    try:
        assert run_sync(send()) == data
    except PayloadValidationError as exc:  # only a lone surrogate, which no writer can store
        assert "surrogate" in str(exc)


class Blob(BaseModel):
    data: bytes


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"ok\x80", b"\xc3"], ids=repr)
async def test_a_constructed_model_with_bytes_that_are_not_utf8_is_a_payload_error(
    backend: MemoryBackend, raw: bytes
) -> None:
    typed = TypedQueue("blob-payloads", TypeAdapter(Blob), TypeAdapter(int))
    try:
        with pytest.raises(PayloadValidationError, match="UnicodeDecodeError"):
            await typed.enqueue(Blob.model_construct(data=raw), backend=backend)
        with pytest.raises(PayloadValidationError, match="UnicodeDecodeError"):
            await typed.enqueue_many(
                [Blob(data=b"fine"), Blob.model_construct(data=raw)], backend=backend
            )
        with pytest.raises(PayloadValidationError, match="UnicodeDecodeError"):
            await queue_job("blob-payloads", Blob.model_construct(data=raw), backend=backend)
    finally:
        known_queues.pop("blob-payloads", None)
    assert (await backend.counts("blob-payloads")).waiting == 0
    with pytest.raises(PayloadValidationError, match="UnicodeDecodeError"):
        await queue_job(QUEUE, Blob.model_construct(data=raw), backend=backend)  # registry only
