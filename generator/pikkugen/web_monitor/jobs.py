"""A queue's recent jobs and one job in full.

Listing needs a backend with `recent_jobs` (SQLite, memory, Redis); SQS keeps no job records,
so there the list answers `supported: false` and the page says why instead of showing none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pikku_queue.records import JobInfo
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pikkugen.web_monitor.state import monitor_state

#: How many of a queue's most recent jobs the list shows.
RECENT = 50


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


async def recent_jobs(request: Request) -> Response:
    """`/api/queues/{queue}/jobs`."""
    lister = getattr(monitor_state(request).backend, "recent_jobs", None)
    if lister is None:
        return JSONResponse({"supported": False, "jobs": []})
    found: Sequence[JobInfo] = await lister(request.path_params["queue"], RECENT)
    return JSONResponse({"supported": True, "jobs": [job_json(j, False) for j in found]})


async def job(request: Request) -> Response:
    """`/api/queues/{queue}/jobs/{job_id}`."""
    info = await monitor_state(request).backend.get_job(
        request.path_params["queue"], request.path_params["job_id"]
    )
    if info is None:
        return JSONResponse({"error": "no such job (or this backend cannot look one up)"}, 404)
    return JSONResponse(job_json(info, True))
