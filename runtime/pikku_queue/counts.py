"""One definition of each count, read by everything that shows one.

The worker's live bars and final table, `QueueMonitor`, the web monitor (`pikkugen monitor`)
and `/metrics` (`pikku_queue_jobs{state}`) all take their numbers from `Backend.counts` through
this module, so a job is never "failed" in one place and "dead-lettered" in another:

    waiting        ready to run now (a delayed job whose time has come counts here)
    delayed        waiting for its delay or its retry backoff to pass; includes `scheduled`
    scheduled      of those, the next run of a repeat schedule (never drains)
    active         leased by a worker, running
    completed      finished: the processor returned
    failed         failed for good, and the processor names no dead-letter queue
    dead_lettered  failed for good and copied to the dead-letter queue (not in `failed`)
    cancelled      stopped while running by a cancel (`JobHandle.cancel`); a cancelled waiting
                   job is removed, so it is counted nowhere

Two sums are derived, once, here: `finished` = completed + failed + dead_lettered +
cancelled, and
`pending` = waiting + active + delayed - scheduled (what a burst worker waits for, what a bar's
total adds to what is done: a cron queue's next run is not "left to do", or its bar would never
fill). A retried attempt is not a state: its job is `delayed` (backoff) or `waiting` again;
`retried` and `stalled` are counts of attempts, kept by the worker (`WorkerReport`) and by
`/metrics`.
"""

from __future__ import annotations

from dataclasses import asdict

from pikku_queue.records import QueueCounts

#: The states in the order every view shows them.
STATES: tuple[str, ...] = (
    "waiting",
    "delayed",
    "active",
    "completed",
    "failed",
    "dead_lettered",
    "cancelled",
)

#: What each count means, for help texts, the README and the web monitor.
DEFINITIONS: dict[str, str] = {
    "waiting": "ready to run now",
    "delayed": "waiting for a delay or a retry backoff (includes scheduled)",
    "scheduled": "delayed jobs that are the next run of a repeat schedule",
    "active": "running on a worker",
    "completed": "finished: the processor returned",
    "failed": "failed for good; the processor names no dead-letter queue",
    "dead_lettered": "failed for good and copied to the dead-letter queue",
    "cancelled": "stopped while running by a cancel; neither retried nor dead-lettered",
    "retried": "failed attempts that will be tried again (attempts, not jobs)",
    "stalled": "attempts whose worker lost its lease (died); the job came back",
}


def finished(counts: QueueCounts) -> int:
    """Jobs in a final state."""
    return counts.completed + counts.failed + counts.dead_lettered + counts.cancelled


def pending(counts: QueueCounts) -> int:
    """Jobs still to run, not counting the next run of a repeat schedule."""
    return counts.waiting + counts.active + max(counts.delayed - counts.scheduled, 0)


def by_state(counts: QueueCounts) -> dict[str, int]:
    """`{state: count}` in `STATES` order."""
    values = asdict(counts)
    return {state: int(values[state]) for state in STATES}


def describe(counts: QueueCounts) -> str:
    """`waiting 0 · delayed 1 (scheduled 1) · active 0 · completed 24 · failed 0 ·
    dead-lettered 1`: the line the worker's bars and logs print."""
    parts = []
    for state, value in by_state(counts).items():
        text = f"{state.replace('_', '-')} {value}"
        if state == "delayed" and counts.scheduled:
            text += f" (scheduled {counts.scheduled})"
        parts.append(text)
    return " · ".join(parts)
