"""The monitor's state-changing routes: POST `/api/actions/<verb>` with a JSON object.

Each runs behind the token, the Host check and the CSRF check (`auth`, in the route table of
`app`), and only where the backend offers it (`state.offered`: its capabilities declare the
feature and it implements the protocol); elsewhere it answers 404 with the backend's reason.
Every answer is `{"ok": bool, "message": …}`: the page shows the message until dismissed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from pikku_queue.backend import CleansJobs, PausesQueues
from pikku_queue.capabilities import Feature
from pikku_queue.client import cancel_job
from pikku_queue.records import CLEANABLE_STATES, CancelResult, JobState
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pikkugen.web_monitor.auth import BadRequest, json_body
from pikkugen.web_monitor.queues import dead_letter_queue, job_id, job_state, known_queue
from pikkugen.web_monitor.state import monitor_state

#: Most record ids one replay names.
MAX_IDS = 1_000


def _answer(ok: bool, message: str) -> Response:
    return JSONResponse({"ok": ok, "message": message})


async def _offered(request: Request, feature: Feature) -> tuple[Any, dict[str, Any]]:
    """The backend, as one that has `feature`, and the request's JSON body."""
    state = monitor_state(request)
    if feature not in state.features:
        note = state.backend.capabilities.notes.get(feature, "")
        raise BadRequest(
            404, f"this backend cannot do that ({feature})" + (f": {note}" if note else "")
        )
    return state.backend, await json_body(request)


def _job_action(
    feature: Feature, verb: str, refused: str
) -> Callable[[Request], Awaitable[Response]]:
    """A route acting on one job (`{"queue": …, "id": …}`) through the backend's method."""

    async def act(request: Request) -> Response:
        backend, body = await _offered(request, feature)
        queue = known_queue(request, body.get("queue"))
        wanted = job_id(body.get("id"))
        method = cast(Callable[[str, str], Awaitable[bool]], getattr(backend, feature))
        if await method(queue, wanted):
            return _answer(True, f"{verb} job {wanted} of {queue}")
        return _answer(False, f"job {wanted} of {queue} was not {verb.lower()}: {refused}")

    act.__name__ = feature
    act.__doc__ = f"POST `/api/actions/{feature.split('_')[0]}`: `{feature}` on one job."
    return act


# `getattr(backend, feature)`: the method of that feature's protocol (`RetriesJobs.retry_job`,
# `RemovesJobs.remove_job`, `PromotesJobs.promote_job`), present since the feature is offered.
retry = _job_action(
    "retry_job", "Retried", "it is not failed (a dead-lettered job goes back by its replay)"
)
remove = _job_action(
    "remove_job", "Removed", "it is active, the next run of a schedule, or gone already"
)
promote = _job_action("promote_job", "Promoted", "it is not delayed")


#: What a cancel that changed nothing answers, by `CancelResult`.
_NOT_CANCELLED = {
    CancelResult.FINISHED: "it already ended",
    CancelResult.SCHEDULED: "it is the next run of a repeat schedule (remove the schedule)",
    CancelResult.NOT_FOUND: "it is gone already",
}


async def cancel(request: Request) -> Response:
    """POST `/api/actions/cancel` `{"queue": …, "id": …}`: `JobHandle.cancel` (a waiting or
    delayed job is removed; a running one is told to stop, where `cancel_running` is offered)."""
    backend, body = await _offered(request, "cancel")
    queue = known_queue(request, body.get("queue"))
    wanted = job_id(body.get("id"))
    if "cancel_running" not in monitor_state(request).features:
        info = await backend.get_job(queue, wanted)
        if info is not None and info.state is JobState.ACTIVE:
            note = backend.capabilities.notes.get("cancel_running", "")
            return _answer(False, f"job {wanted} of {queue} is running; this backend cannot"
                           f" stop a running job{': ' + note if note else ''}")  # fmt: skip
    result = await cancel_job(backend, queue, wanted)
    if result is CancelResult.REMOVED:
        return _answer(True, f"Cancelled job {wanted} of {queue}: removed, it never runs")
    if result is CancelResult.REQUESTED:
        return _answer(True, f"Cancelling job {wanted} of {queue}: its worker stops it")
    return _answer(False, f"job {wanted} of {queue} was not cancelled: {_NOT_CANCELLED[result]}")


async def _pausing(request: Request, paused: bool) -> Response:
    backend, body = await _offered(request, "pause_queue")
    queue = known_queue(request, body.get("queue"))
    pauser = cast(PausesQueues, backend)
    if paused:
        await pauser.pause_queue(queue)
    else:
        await pauser.resume_queue(queue)
    return _answer(True, f"{'Paused' if paused else 'Resumed'} {queue}")


async def pause(request: Request) -> Response:
    """POST `/api/actions/pause` `{"queue": …}`."""
    return await _pausing(request, True)


async def resume(request: Request) -> Response:
    """POST `/api/actions/resume` `{"queue": …}`."""
    return await _pausing(request, False)


async def clean(request: Request) -> Response:
    """POST `/api/actions/clean` `{"queue": …, "state": "completed" | "failed"}`: every job of
    that state goes ("failed": dead-lettered ones too; their records stay)."""
    backend, body = await _offered(request, "clean_jobs")
    queue = known_queue(request, body.get("queue"))
    state = job_state(body.get("state"))
    if state not in CLEANABLE_STATES:
        raise BadRequest(400, "only completed or failed jobs are cleaned")
    removed = await cast(CleansJobs, backend).clean_jobs(queue, state)
    return _answer(True, f"Cleaned {removed} {state} job(s) of {queue}")


async def replay(request: Request) -> Response:
    """POST `/api/actions/replay` `{"queue": <dlq>, "ids": [...]}` (those records) or
    `{"queue": <dlq>, "ids": null}` (all of them)."""
    backend, body = await _offered(request, "replay_dead_letters")
    dlq = dead_letter_queue(request, body.get("queue"))
    ids = body.get("ids")
    if ids is not None and not (
        isinstance(ids, list) and 0 < len(ids) <= MAX_IDS and all(isinstance(i, str) for i in ids)
    ):
        raise BadRequest(400, f"ids must be null (all) or a list of 1 to {MAX_IDS} record ids")
    replayed = await backend.replay(dlq, ids)
    return JSONResponse(
        {
            "ok": replayed > 0,
            "replayed": replayed,
            "message": f"Replayed {replayed} record(s) of {dlq}"
            if replayed
            else f"Nothing replayed: no such record in {dlq} any more",
        }
    )
