"""Schedules pikkugen refuses at generate time."""

from pikku_queue import Repeat, queue_processor

from sched_err_app.models import Report


# PK704: scheduled runs carry {}, which Report rejects (account and month are required).
@queue_processor("monthly-report", repeat=Repeat(cron="0 6 1 * *"))
def monthly(data: Report) -> None:
    return None


# PK804 for sqs: both day fields restricted (the 1st, or any Monday); EventBridge cannot.
@queue_processor("first-or-monday", repeat=Repeat(cron="0 0 1 * mon"))
def first_or_monday(data: dict[str, int]) -> None:
    return None


# PK804 for sqs: EventBridge rates count whole minutes.
@queue_processor("ninety-seconds", repeat=Repeat(every=90_000))
def ninety(data: dict[str, int]) -> None:
    return None


# PK203: not a cron expression (the runtime's own parser says why).
@queue_processor("bad-cron", repeat=Repeat(cron="0 25 * * *"))
def bad_cron(data: dict[str, int]) -> None:
    return None
