"""A queue's jobs in one state, a page at a time, and one job in full.

Listing needs a backend that declares `list_jobs` (SQLite, memory, Redis); SQS keeps no job
records, so there the list answers 404 with why (the page shows it) and the counts, charts
and dead letters still apply. Every parameter, the job id included, travels in the query
string, never the path: an id may be `..` or hold `/`, which a URL path would resolve away.
"""

from __future__ import annotations

from typing import Any

from pikku_queue.backend import ListsJobs
from pikku_queue.records import JobInfo
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pikkugen.web_monitor.auth import BadRequest
from pikkugen.web_monitor.queues import job_id, job_state, known_queue, page_of
from pikkugen.web_monitor.state import MonitorState, monitor_state


def job_json(info: JobInfo, full: bool) -> dict[str, Any]:
    """A job as the page shows it: a list row carries only the error's type and message; the
    full view (`full`) adds the payload, the result and the error with its traceback."""
    data: dict[str, Any] = {
        "id": info.id,
        "queue": info.queue,
        "state": str(info.state),
        "attempts": info.attempts_made,
        "progress": info.progress,
        "enqueued_at_ms": info.enqueued_at_ms,
        "finished_at_ms": info.finished_at_ms,
    }
    if full:
        data["payload"] = info.payload
        data["result"] = info.result
        data["error"] = info.error.as_dict() if info.error else None
    elif info.error:
        data["error"] = {"type": info.error.type, "message": info.error.message}
    return data


def lister(state: MonitorState) -> ListsJobs:
    backend = state.backend
    if "list_jobs" not in state.features or not isinstance(backend, ListsJobs):
        note = backend.capabilities.notes.get("list_jobs", "")
        raise BadRequest(404, "this backend cannot list jobs" + (f": {note}" if note else ""))
    return backend


async def jobs(request: Request) -> Response:
    """`/api/jobs?queue=&state=&limit=&cursor=`: a page, newest first, and the next cursor."""
    state = monitor_state(request)
    params = request.query_params
    queue = known_queue(request, params.get("queue"))
    wanted = job_state(params.get("state"))
    page = await page_of(lister(state), queue, wanted, request)
    return JSONResponse(
        {
            "queue": queue,
            "state": str(wanted),
            "jobs": [job_json(j, False) for j in page.jobs],
            "next_cursor": page.next_cursor,
        }
    )


async def job(request: Request) -> Response:
    """`/api/job?queue=&id=`: one job in full, or 404 (JSON) when there is none."""
    state = monitor_state(request)
    queue = known_queue(request, request.query_params.get("queue"))
    wanted = job_id(request.query_params.get("id"))
    info = await state.backend.get_job(queue, wanted)
    if info is None:
        note = state.backend.capabilities.notes.get("results")
        why = f" (this backend cannot look one up: {note})" if note else ""
        raise BadRequest(404, f"no job {wanted!r} in {queue!r}{why}")
    return JSONResponse(job_json(info, True))
