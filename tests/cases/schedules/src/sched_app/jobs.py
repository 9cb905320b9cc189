"""Processor-level `repeat=` through every import form: an alias of the decorator and of
`Repeat`, the module alias, a followed constant, and the call form."""

from typing import Any

import pikku_queue as pq
from pikku_queue import Repeat as R
from pikku_queue import queue_processor as qp
from pydantic import BaseModel

from sched_app.schedule import HOURLY, WEEKDAY_MORNINGS


class Sweep(BaseModel):
    """Every field has a default, so the schedule's `{}` validates."""

    older_than_days: int = 30
    dry_run: bool = False


@qp("nightly-cleanup", repeat=R(cron="0 2 * * *"))
def nightly(ctx: pq.JobContext, data: dict[str, Any]) -> int:
    return 0


@pq.queue_processor("sweep", repeat=pq.Repeat(cron=WEEKDAY_MORNINGS))
async def sweep(data: Sweep) -> int:
    return data.older_than_days


@qp("hourly-report", repeat=HOURLY)
async def hourly(data: dict[str, Any]) -> None:
    return None


def limited(data: dict[str, Any]) -> None:
    return None


# A run limit is honoured by SQLite and Redis; EventBridge has none (a PK801 warning for sqs).
pq.add_queue_processor(name="twice", func=limited, repeat={"every": 60_000, "limit": 2})
