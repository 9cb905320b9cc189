"""A batch processor's result that cannot be stored fails that item alone, in the engine
(the single-job case is the conformance scenario `test_unstorable_result_fails_the_attempt`)."""

from __future__ import annotations

import math

from pikku_queue.engine import Engine
from pikku_queue.options import BatchOptions, ProcessorOptions, RetryOptions
from pikku_queue.outcomes import Completed, DeadLetter, Delivery, Retry
from pikku_queue.processor import Processor
from pydantic import BaseModel


class Value(BaseModel):
    x: float


async def measure(data: list[int]) -> list[Value]:
    return [Value(x=math.nan if n < 0 else float(n)) for n in data]


async def test_an_unstorable_item_of_a_batch_fails_alone() -> None:
    options = ProcessorOptions(
        batch=BatchOptions(size=3), retry_options=RetryOptions(attempts=2, delay=1)
    )
    engine = Engine(Processor.from_function("m", measure, options))
    deliveries = [Delivery(f"j{n}", "m", n, attempt=1, enqueued_at_ms=0) for n in (1, -1, 2)]

    first, bad, last = await engine.run_batch(deliveries)

    assert (first, last) == (Completed({"x": 1.0}), Completed({"x": 2.0}))
    assert isinstance(bad, Retry)
    assert bad.error.type == "UnstorableResultError"
    assert bad.error.message.startswith("result is not JSON-serialisable: ")
    [again] = await engine.run_batch([Delivery("j-1", "m", -1, attempt=2, enqueued_at_ms=0)])
    assert isinstance(again, DeadLetter) and again.reason == "attempts_exhausted"
