"""The request parameters every route reads the same way: a queue of this monitor (404 for
any other), a job state, a page size. A bad one is a `BadRequest` (`auth`), answered as JSON."""

from __future__ import annotations

from pikku_queue import counts
from pikku_queue.backend import ListsJobs
from pikku_queue.records import JobPage, JobState
from starlette.requests import Request

from pikkugen.web_monitor.auth import BadRequest
from pikkugen.web_monitor.state import monitor_state

#: The longest page a list returns, and the page when none is asked for.
MAX_PAGE = 200
DEFAULT_PAGE = 50


def known_queue(request: Request, name: object) -> str:
    """`name` if it is one of this monitor's queues (the registry's and their dead-letter
    queues): any other is 404, never a read of the backend."""
    if not isinstance(name, str) or not name:
        raise BadRequest(400, "name a queue (queue=…)")
    if name not in monitor_state(request).config.known_queues:
        raise BadRequest(404, f"{name!r} is not a queue of this monitor")
    return name


def dead_letter_queue(request: Request, name: object) -> str:
    name = known_queue(request, name)
    if name not in monitor_state(request).config.dlqs:
        raise BadRequest(404, f"{name!r} is no dead-letter queue of this monitor")
    return name


def job_state(value: object) -> JobState:
    if not isinstance(value, str) or value not in counts.STATES:
        raise BadRequest(400, f"state must be one of {', '.join(counts.STATES)}")
    return JobState(value)


def page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise BadRequest(400, f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(value)


def job_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(400, "name a job (id=…)")
    return value


async def page_of(lister: ListsJobs, queue: str, state: JobState, request: Request) -> JobPage:
    """The page the request's `limit` and `cursor` name (a cursor the backend never gave: 400)."""
    params = request.query_params
    try:
        return await lister.list_jobs(
            queue, state, page_size(params.get("limit")), params.get("cursor") or None
        )
    except ValueError as exc:
        raise BadRequest(400, str(exc)) from None
