"""`Dedupe(mode="drop")` on SQS: a FIFO queue's MessageDeduplicationId, which SQS keeps for its
own 5 minutes; a standard queue cannot deduplicate and refuses it."""

from __future__ import annotations

import json

import pytest
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter, dedupe_id
from pikku_queue.client import TypedQueue
from pikku_queue.errors import BackendError
from pikku_queue.options import Dedupe
from pydantic import TypeAdapter
from sqs_support import Queues

pytestmark = pytest.mark.sqs

DEDUPE = Dedupe(key="welcome-{user}", ttl_ms=300_000)


def signups(name: str) -> TypedQueue[dict[str, str], None]:
    return TypedQueue(name, TypeAdapter(dict[str, str]), TypeAdapter(type(None)))


async def test_a_fifo_queue_drops_a_second_job_with_the_key(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("signups.fifo")
    queue = signups("signups.fifo")
    first = await queue.enqueue({"user": "ä ö"}, dedupe=DEDUPE, backend=backend)
    again = await queue.enqueue({"user": "ä ö", "x": "1"}, dedupe=DEDUPE, backend=backend)
    other = await queue.enqueue({"user": "b"}, dedupe=DEDUPE, backend=backend)
    assert first.id == again.id == dedupe_id("welcome-ä ö")  # the handle points to the first
    assert other.id != first.id
    bodies = [json.loads(m["Body"]) for m in queues.receive("signups.fifo")]
    assert bodies == [{"user": "ä ö"}, {"user": "b"}]


async def test_a_standard_queue_refuses_dedupe(queues: Queues, backend: SQSQueueAdapter) -> None:
    queues.create("signups")
    with pytest.raises(BackendError, match="standard SQS queue"):
        await signups("signups").enqueue({"user": "a"}, dedupe=DEDUPE, backend=backend)
    assert queues.receive("signups") == []


@pytest.mark.parametrize("key", ["", "a" * 10_000, "\udcff", "line\nbreak", "ü:{}"])
def test_any_key_makes_an_id_sqs_accepts(key: str) -> None:
    made = dedupe_id(key)
    assert len(made) <= 128 and made.isascii() and made.replace("-", "").isalnum()
    assert made == dedupe_id(key) and made != dedupe_id(key + "x")
