"""When a `--burst` worker stops waiting: one rule for every pull worker (the generic pull
loop, `pikku_queue.pull`, and the SQS long-poll worker).

A burst worker drains its queues and exits. It waits for everything that can still progress:
a job running (here, or under another worker's live lease), a delay or a retry backoff (time
passes), a lease that will expire (its job comes back). It does not wait for what cannot
progress, which is exactly one of:

1. **no verdict can be stored**: a job this worker was handed `MAX_DELIVERIES` times without
   a verdict for it ever being stored (each time its settle failed, or its lease was lost
   before it) is held, not run again: a further delivery would end the same way;
2. **out of reach**: jobs of a queue that no reserve hands out and no live lease holds, for a
   whole lease length: ready jobs while no live lease is held on the queue (none is waiting for
   a slot under `max_concurrency`), or active jobs whose lease has ended but which stall
   recovery cannot put back (a row the store refuses to update);
3. **no backend**: `MAX_FAILED_CALLS` backend calls failed in a row (about 11 s of the
   pull worker's retry backoff, or that many failed long polls on SQS).

Then it logs which jobs it leaves and why, ends, and `WorkerReport.undone` lists them; the
runner exits with `EXIT_UNDONE` (3) instead of 0. A held job is given back when the worker
ends, untouched (its attempt is not counted), for a later worker. Every other way a job can
loop is bounded where it happens (`max_stalled_count`, the retry attempts, SQS's redrive).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pikku_queue.backend import WorkerReport

logger = logging.getLogger("pikku_queue.burst")

#: Deliveries of one job to one burst worker, none ending in a stored verdict, before the
#: worker holds it instead of running it again.
MAX_DELIVERIES = 3
#: Backend calls failing in a row before a burst worker gives up on its backend.
MAX_FAILED_CALLS = 8


@dataclass
class BurstWatch:
    """What a burst worker has seen that cannot progress (a no-op unless `enabled`)."""

    enabled: bool
    #: (queue, job id) → deliveries to this worker with no verdict stored since.
    unsettled: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (queue, job id) → why it is held instead of run.
    held: dict[tuple[str, str], str] = field(default_factory=dict)
    failed_calls: int = 0
    #: queue → when (ms) jobs of it were first seen out of reach.
    out_of_reach_since: dict[str, int] = field(default_factory=dict)

    def delivered(self, queue: str, job_id: str) -> bool:
        """Count a delivery; False when the job cannot progress and is to be held, not run."""
        if not self.enabled:
            return True
        key = (queue, job_id)
        if key in self.held:
            return False
        self.unsettled[key] += 1
        if self.unsettled[key] <= MAX_DELIVERIES:
            return True
        self.held[key] = (
            f"{queue} job {job_id}: handed to this worker {MAX_DELIVERIES} times and no"
            " verdict could be stored"
        )
        return False

    def settled(self, queue: str, job_id: str) -> None:
        """A verdict for the job is stored: its deliveries start again from zero."""
        if self.enabled:
            self.unsettled.pop((queue, job_id), None)

    def held_in(self, queue: str) -> int:
        return sum(1 for q, _ in self.held if q == queue)

    def call_failed(self) -> bool:
        """Count a failed backend call; True when a burst worker must give up on its backend."""
        self.failed_calls += 1
        return self.enabled and self.failed_calls >= MAX_FAILED_CALLS

    def call_succeeded(self) -> None:
        self.failed_calls = 0

    def gave_up(self, queues: str, exc: BaseException) -> str:
        """The `undone` line of a worker that gives up on its backend."""
        return (
            f"every job still pending on {queues}: {self.failed_calls} backend calls failed in"
            f" a row (the last: {type(exc).__name__}: {exc})"
        )

    def out_of_reach(self, queue: str, stuck: int, now_ms: int, lease_ms: int) -> bool:
        """Whether `stuck` jobs of `queue` (no reserve hands them out, no live lease holds
        them) have been so for a lease length."""
        if not self.enabled or stuck <= 0:
            self.out_of_reach_since.pop(queue, None)
            return False
        since = self.out_of_reach_since.setdefault(queue, now_ms)
        return now_ms - since >= lease_ms

    def progressed(self) -> None:
        """A reserve handed out a job: nothing is out of reach any more."""
        self.out_of_reach_since.clear()

    def undone(self) -> list[str]:
        """The held jobs, as `WorkerReport.undone` lists them."""
        return list(self.held.values())

    def end(self, report: WorkerReport, more: Sequence[str] = ()) -> None:
        """The worker ends: the held jobs and `more` go to `report.undone`, and one line says
        which jobs are left and why."""
        undone = [*self.undone(), *more]
        if not undone:
            return
        report.undone.extend(undone)
        logger.warning(
            "burst: ending with %d job(s) or queue(s) that cannot progress: %s",
            len(undone),
            "; ".join(undone),
        )
