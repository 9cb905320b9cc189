"""A dead-letter queue's records and their replay (the monitor's one state-changing route).

The replay's CSRF and Origin checks are `auth.require_csrf`, run before this handler (see
the route table in `app`), so a refused request never reaches the backend.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pikkugen.web_monitor.state import monitor_state

#: How many records of a dead-letter queue the page shows.
SHOWN = 200


def _unknown(name: str) -> Response:
    return JSONResponse({"error": f"{name!r} is no dead-letter queue"}, status_code=404)


async def records(request: Request) -> Response:
    """`/api/dlq/{dlq}`."""
    state = monitor_state(request)
    name = request.path_params["dlq"]
    if name not in state.config.dlqs:
        return _unknown(name)
    found = await state.backend.dead_letters(name, SHOWN)
    return JSONResponse({"dlq": name, "records": [{"id": r.id, **r.as_payload()} for r in found]})


async def replay(request: Request) -> Response:
    """POST `/api/dlq/{dlq}/replay` with `{"ids": [...]}` (some records) or `{"ids": null}`
    (all of them)."""
    state = monitor_state(request)
    name = request.path_params["dlq"]
    if name not in state.config.dlqs:
        return _unknown(name)
    body = await request.json()
    ids = body.get("ids") if isinstance(body, dict) else None
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        return JSONResponse({"error": "ids must be a list of record ids"}, status_code=400)
    replayed = await state.backend.replay(name, ids)
    return JSONResponse({"replayed": replayed})
