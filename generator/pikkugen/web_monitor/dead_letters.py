"""A dead-letter queue's records, a page at a time.

Where the backend lists jobs, the records are the dead-letter queue's waiting jobs, paged
like any list (newest first); elsewhere (SQS) the backend's `dead_letters` gives the first
`UNPAGED` of them. Replaying is an action (`actions.replay`).
"""

from __future__ import annotations

from typing import Any

from pikku_queue.backend import ListsJobs
from pikku_queue.records import DeadLetterRecord, JobState, is_dead_letter_record
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pikkugen.web_monitor.queues import dead_letter_queue, page_of
from pikkugen.web_monitor.state import monitor_state

#: How many records a backend that cannot page them shows.
UNPAGED = 200


def record_json(record: DeadLetterRecord) -> dict[str, Any]:
    return {"id": record.id, "record": True, **record.as_payload()}


async def records(request: Request) -> Response:
    """`/api/dlq?queue=&limit=&cursor=`."""
    state = monitor_state(request)
    name = dead_letter_queue(request, request.query_params.get("queue"))
    backend = state.backend
    if "list_jobs" in state.features and isinstance(backend, ListsJobs):
        page = await page_of(backend, name, JobState.WAITING, request)
        shown = [
            record_json(DeadLetterRecord.from_payload(job.id, job.payload))
            if is_dead_letter_record(job.payload)
            else {"id": job.id, "record": False, "payload": job.payload}
            for job in page.jobs
        ]
        return JSONResponse({"dlq": name, "records": shown, "next_cursor": page.next_cursor})
    found = await backend.dead_letters(name, UNPAGED)
    return JSONResponse(
        {"dlq": name, "records": [record_json(r) for r in found], "next_cursor": None}
    )
