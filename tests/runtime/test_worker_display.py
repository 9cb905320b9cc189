"""The worker's live display shows how far a running job is, from the engine's events."""

from __future__ import annotations

from pikku_queue.events import EventBus, JobEvent
from pikkugen.commands.display import JobProgress


def event(name: str, job_id: str, **data: object) -> JobEvent:
    return JobEvent(name=name, queue="large-dataset", job_id=job_id, attempt=1, data=data)


def test_latest_progress_per_running_job_until_it_finishes() -> None:
    bus = EventBus()
    shown = JobProgress(bus)
    assert shown.describe("large-dataset") == ""
    bus.emit(event("progress", "aaaaaaaa-1", progress={"processed": 40, "total": 200}))
    bus.emit(
        event("progress", "aaaaaaaa-1", progress={"processed": 90, "total": 200, "percentage": 45})
    )
    bus.emit(event("progress", "bbbbbbbb-2", progress={"percentage": 10.4}))
    assert shown.describe("large-dataset") == "job aaaaaaaa 45% (90/200), job bbbbbbbb 10%"
    assert shown.describe("other-queue") == ""
    bus.emit(event("completed", "aaaaaaaa-1"))
    bus.emit(event("retrying", "bbbbbbbb-2"))
    assert shown.describe("large-dataset") == ""
