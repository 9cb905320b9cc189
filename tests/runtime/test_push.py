"""The push-consumer core's contract, once, against a fake push platform.

`FakePlatform` is what Lambda or Cloudflare is to the core: it holds messages, hands out
batches (counting each delivery as an attempt), and applies what the sink answers — a
completed or dead-lettered message is gone, a retried one comes back after its delay, a given
back one at once, one without an answer after a visibility timeout. Time is a counter the test
moves, so backoff delays are checked exactly and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from pikku_queue import BatchOptions, JobContext, NonRetryableError
from pikku_queue.engine import Engine
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.outcomes import Completed, DeadLetter, Delivery, Outcome, Retry
from pikku_queue.processor import Processor
from pikku_queue.push import PushMessage, PushResult, consume
from pydantic import BaseModel

VISIBILITY_MS = 30_000


class Order(BaseModel):
    n: int


@dataclass
class Stored:
    id: str
    body: Any
    group: str | None = None
    attempts: int = 0
    visible_at: int = 0


@dataclass
class FakePlatform:
    now: int = 0
    stored: dict[str, Stored] = field(default_factory=dict)
    dead: list[tuple[str, DeadLetter, int]] = field(default_factory=list)
    retries: list[tuple[str, int]] = field(default_factory=list)
    given_back: list[str] = field(default_factory=list)
    fail_settle: set[str] = field(default_factory=set)
    json_text: bool = True

    def send(self, *bodies: Any, group: str | None = None) -> list[str]:
        ids = []
        for body in bodies:
            mid = f"m{len(self.stored) + len(self.dead) + 1}-{self.now}"
            text = body if isinstance(body, str) or not self.json_text else json.dumps(body)
            self.stored[mid] = Stored(mid, text, group)
            ids.append(mid)
        return ids

    def receive(self, limit: int = 100) -> list[PushMessage]:
        batch: list[PushMessage] = []
        for s in list(self.stored.values()):
            if s.visible_at <= self.now and len(batch) < limit:
                s.attempts += 1
                s.visible_at = self.now + VISIBILITY_MS  # in flight until answered
                batch.append(
                    PushMessage(
                        message_id=s.id,
                        body=s.body,
                        attempt=s.attempts,
                        enqueued_at_ms=0,
                        group=s.group,
                        json_text=self.json_text,
                    )
                )
        return batch

    # the PushSink
    async def settle(self, message: PushMessage, delivery: Delivery, outcome: Outcome) -> bool:
        if message.message_id in self.fail_settle:
            raise ConnectionError("platform unreachable")
        stored = self.stored[message.message_id]
        if isinstance(outcome, Retry):
            stored.visible_at = self.now + outcome.delay_ms
            self.retries.append((message.message_id, outcome.delay_ms))
            return False
        del self.stored[message.message_id]
        if isinstance(outcome, DeadLetter):
            self.dead.append((message.message_id, outcome, delivery.attempt))
        return True

    async def give_back(self, message: PushMessage) -> None:
        self.stored[message.message_id].visible_at = self.now
        self.given_back.append(message.message_id)


calls: list[tuple[int, int]] = []


async def odd_fails(ctx: JobContext, data: Order) -> Order:
    calls.append((data.n, ctx.attempt))
    if data.n % 2:
        raise RuntimeError(f"odd order {data.n}")
    return data


async def refuses(data: Order) -> Order:
    raise NonRetryableError("never")


async def slow(data: Order) -> Order:
    await asyncio.sleep(5)
    return data


batch_calls: list[list[int]] = []


async def totals(ctx: JobContext, items: list[Order]) -> list[Order]:
    batch_calls.append([i.n for i in items])
    for index, item in enumerate(items):
        if item.n < 0:
            ctx.fail_item(index, f"negative {item.n}")
    return items


def engine(func: Any, **options: Any) -> Engine:
    calls.clear()
    batch_calls.clear()
    return Engine(Processor.from_function("q", func, ProcessorOptions(**options)))


def run(eng: Engine, platform: FakePlatform, **kw: Any) -> PushResult:
    return asyncio.run(consume(eng, platform.receive(), platform, **kw))


def kinds(result: PushResult) -> list[str]:
    return [v.outcome.kind if v.outcome else v.state for v in result.verdicts]


def test_every_message_gets_its_own_verdict_in_input_order() -> None:
    platform = FakePlatform()
    platform.send({"n": 2}, {"n": 3}, {"n": 4})
    eng = engine(odd_fails, retry_options=RetryOptions(attempts=3, delay=1_500), concurrency=3)

    result = run(eng, platform)

    assert kinds(result) == ["completed", "retry", "completed"]
    assert [m.body for m in result.unfinished] == ['{"n": 3}']
    assert isinstance(result.verdicts[0].outcome, Completed)
    assert result.verdicts[0].outcome.result == {"n": 2}
    assert len(platform.stored) == 1


def test_retry_comes_back_after_the_backoff_with_the_next_attempt_then_dead_letters() -> None:
    platform = FakePlatform()
    [mid] = platform.send({"n": 5})
    eng = engine(
        odd_fails, retry_options=RetryOptions(attempts=3, delay=1_000, backoff="exponential")
    )

    for _ in range(3):
        run(eng, platform)
        assert platform.receive() == []  # hidden for its backoff (or gone)
        if platform.stored:
            platform.now = platform.stored[mid].visible_at

    assert calls == [(5, 1), (5, 2), (5, 3)]
    assert platform.retries == [(mid, 1_000), (mid, 2_000)]
    [(dead_id, verdict, attempt)] = platform.dead
    assert (dead_id, verdict.reason, attempt) == (mid, "attempts_exhausted", 3)
    assert verdict.error.type == "RuntimeError"


def test_non_retryable_invalid_payload_and_non_json_body_skip_the_retries() -> None:
    platform = FakePlatform()
    platform.send({"n": 1}, {"n": "x"}, "{not json")
    eng = engine(refuses, retry_options=RetryOptions(attempts=5))

    result = run(eng, platform)

    assert kinds(result) == ["dead_letter"] * 3
    reasons = [d.reason for _, d, _ in platform.dead]
    assert reasons == ["non_retryable", "invalid_payload", "invalid_payload"]
    assert platform.dead[2][1].error.type == "JSONDecodeError"
    assert result.unfinished == []


def test_an_already_decoded_body_is_validated_not_parsed() -> None:
    platform = FakePlatform(json_text=False)
    platform.send({"n": 2}, "just text")
    eng = engine(odd_fails)

    assert kinds(run(eng, platform)) == ["completed", "dead_letter"]
    assert platform.dead[0][1].reason == "invalid_payload"


def test_batch_processor_gets_one_list_and_fail_item_retries_that_message_alone() -> None:
    platform = FakePlatform()
    platform.send({"n": 1}, {"n": -2}, {"n": "bad"}, {"n": 3}, {"n": 4})
    eng = engine(totals, batch=BatchOptions(size=2), retry_options=RetryOptions(attempts=2))

    result = run(eng, platform)

    # chunks of batch.size; the invalid payload never reaches the processor
    assert batch_calls == [[1, -2], [3], [4]]
    assert kinds(result) == ["completed", "retry", "dead_letter", "completed", "completed"]
    assert [json.loads(m.body)["n"] for m in result.unfinished] == [-2]


def test_timeout_is_capped_by_the_remaining_time() -> None:
    platform = FakePlatform()
    platform.send({"n": 2})
    eng = engine(slow, timeout=60_000, retry_options=RetryOptions(attempts=2))

    result = run(eng, platform, remaining_ms=lambda: 50)

    [verdict] = result.verdicts
    assert isinstance(verdict.outcome, Retry)
    assert verdict.outcome.error.type == "JobTimeoutError"
    assert "50 ms" in verdict.outcome.error.message


def test_a_failed_settle_leaves_the_message_unfinished() -> None:
    platform = FakePlatform()
    [first, _] = platform.send({"n": 2}, {"n": 4})
    platform.fail_settle.add(first)
    eng = engine(odd_fails, concurrency=2)

    result = run(eng, platform)

    assert [v.finished for v in result.verdicts] == [False, True]
    assert [m.message_id for m in result.unfinished] == [first]


def test_fifo_single_processor_stops_a_group_at_its_first_unfinished_message() -> None:
    platform = FakePlatform()
    a = platform.send({"n": 2}, {"n": 3}, {"n": 4}, group="a")
    b = platform.send({"n": 6}, {"n": 8}, group="b")
    eng = engine(odd_fails, retry_options=RetryOptions(attempts=3, delay=1_000))

    result = run(eng, platform, ordered=True)

    assert sorted(calls) == [(2, 1), (3, 1), (6, 1), (8, 1)]  # 4 never ran: it must not overtake 3
    assert [v.state for v in result.verdicts] == [
        "settled",
        "settled",
        "given_back",
        "settled",
        "settled",
    ]
    assert platform.given_back == [a[2]]
    assert [m.message_id for m in result.unfinished] == a[1:]
    assert b[0] not in platform.stored and b[1] not in platform.stored


def test_fifo_batch_processor_holds_a_group_from_its_first_unfinished_message() -> None:
    platform = FakePlatform()
    ids = [platform.send({"n": n}, group=g)[0] for g, n in (("a", 1), ("b", 4), ("a", -2))]
    ids += [platform.send({"n": n}, group=g)[0] for g, n in (("b", 5), ("a", 3), ("a", 7))]
    eng = engine(totals, batch=BatchOptions(size=5), retry_options=RetryOptions(attempts=3))

    result = run(eng, platform, ordered=True)

    # the whole first chunk ran; a's 3 succeeded but is given back behind -2, and so is a's 7
    # in the next chunk (the hold spans the batch's chunks), which therefore never runs
    assert batch_calls == [[1, 4, -2, 5, 3]]
    assert [v.state for v in result.verdicts] == ["settled"] * 4 + ["given_back"] * 2
    assert [m.message_id for m in result.unfinished] == [ids[2], ids[4], ids[5]]
    assert platform.given_back == [ids[4], ids[5]]
