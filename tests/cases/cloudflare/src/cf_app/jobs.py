"""The cloudflare runtime's golden case, also the app the Cloudflare tests drive: a job that
fails on demand, a batch processor, a slow job, schedules, and options Cloudflare refuses."""

import asyncio

from pikku_queue import (
    BatchOptions,
    JobContext,
    NonRetryableError,
    Repeat,
    RetryOptions,
    queue_processor,
)
from pydantic import BaseModel


class Order(BaseModel):
    n: int
    fail_until: int = 0  # fail attempts before this one
    fatal: bool = False


class Shipped(BaseModel):
    n: int
    attempt: int


@queue_processor(
    "orders",
    retry_options=RetryOptions(attempts=3, backoff="exponential", delay=1_000),
    concurrency=4,
    max_concurrency=8,
)
async def ship(ctx: JobContext, order: Order) -> Shipped:
    if order.fatal:
        raise NonRetryableError(f"order {order.n} can never ship")
    if ctx.attempt < order.fail_until:
        raise RuntimeError(f"order {order.n}: try {ctx.attempt} failed")
    return Shipped(n=order.n, attempt=ctx.attempt)


@queue_processor(
    "totals",
    batch=BatchOptions(size=10, timeout=2_000),
    retry_options=RetryOptions(attempts=2, delay=2_000),
    dead_letter_queue="totals-failed",
)
async def totals(ctx: JobContext, orders: list[Order]) -> list[int]:
    for index, order in enumerate(orders):
        if order.n < 0:
            ctx.fail_item(index, f"negative order {order.n}")
    return [order.n for order in orders]


@queue_processor("slow", timeout=100, retry_options=RetryOptions(attempts=2))
async def slow(order: Order) -> int:
    await asyncio.sleep(5)
    return order.n


@queue_processor("nightly", repeat=Repeat(cron="30 2 * * 1-5"))
async def nightly(data: dict[str, int]) -> None:
    return None


@queue_processor("pulse", repeat=Repeat(every=900_000))
async def pulse(data: dict[str, int]) -> None:
    return None


# A cron trigger has no run limit (PK801).
@queue_processor("hourly-thrice", repeat=Repeat(every=3_600_000, limit=3))
async def odd(data: dict[str, int]) -> None:
    return None


# Options Cloudflare refuses: priority, a sync processor, an upper-case name.
@queue_processor("Urgent_Jobs", priority=1)
def urgent(data: dict[str, int]) -> None:
    return None
