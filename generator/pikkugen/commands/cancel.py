"""`pikkugen cancel QUEUE JOB_ID`: cancel one job (`JobHandle.cancel`). A waiting or delayed job
is removed and never runs; a running one is told to stop and ends `cancelled`. A queue the
project does not declare is refused with the nearest names, as `enqueue` does; a job that is
not there, already ended, or is a schedule's pending next run is an `error:` line, exit 1."""

from __future__ import annotations

from typing import Annotated

import typer
from pikku_queue.adapters import masked_url
from pikku_queue.backend import Backend
from pikku_queue.client import cancel_job
from pikku_queue.errors import PikkuQueueError
from pikku_queue.records import CancelResult

from pikkugen.commands.project import (
    BackendOption,
    backend_url,
    fail,
    load_registry,
    on_backend,
    project_config,
)

#: Exit status of a cancel that changed nothing (the job is not there, or already ended).
NOTHING_CANCELLED = 1


def register(app: typer.Typer) -> None:
    """Add this command to `app`."""
    app.command("cancel")(cancel)


def cancel(
    queue: Annotated[str, typer.Argument(help="Queue name.")],
    job_id: Annotated[str, typer.Argument(help="The job's id (what enqueue printed).")],
    backend: BackendOption = None,
) -> None:
    """Cancel a job: remove it if it waits, tell its worker to stop it if it runs."""
    config = project_config()
    registry, generated_url = load_registry(config)
    try:
        registry.get(queue)
    except PikkuQueueError as exc:
        raise fail(str(exc)) from None
    url = backend_url(backend, config, generated_url)

    async def send(target: Backend) -> tuple[CancelResult, str | None]:
        result = await cancel_job(target, queue, job_id)
        state = None
        if result is CancelResult.FINISHED:
            info = await target.get_job(queue, job_id)
            state = None if info is None else info.state.value
        return result, state

    result, state = on_backend(url, send)
    where = f"queue {queue!r} in {masked_url(url)}"
    if result is CancelResult.REMOVED:
        typer.echo(f"cancelled job {job_id}: removed from {where}; it will not run")
    elif result is CancelResult.REQUESTED:
        typer.echo(
            f"cancelling job {job_id} of {where}: it is running; its worker stops it"
            " and it ends cancelled"
        )
    elif result is CancelResult.FINISHED:
        ended = f" (it is {state})" if state else ""
        raise fail(f"job {job_id} of {where} already ended{ended}; nothing cancelled",
                   NOTHING_CANCELLED)  # fmt: skip
    elif result is CancelResult.SCHEDULED:
        raise fail(
            f"job {job_id} of {where} is the next run of a repeat schedule; cancelling it"
            " would end the schedule: remove the schedule instead",
            NOTHING_CANCELLED,
        )
    else:
        raise fail(
            f"no job {job_id!r} in {where} (never enqueued there, or removed after it finished)",
            NOTHING_CANCELLED,
        )
