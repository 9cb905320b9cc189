"""Runtime "sqs": the Lambda handler module and its bundle's requirements (`sqs_lambda`), the
SAM stack (`sam`), from templates/sqs/; its generate-time checks are what an EventBridge
Scheduler schedule cannot express for a processor's `repeat`."""

from __future__ import annotations

from collections.abc import Iterator

from pikkugen.emit.eventbridge import NotExpressible, schedule_expression
from pikkugen.model import ProcessorDecl
from pikkugen.runtimes import Problem, RuntimePlugin
from pikkugen.runtimes.sqs import sam, sqs_lambda


def problems(decl: ProcessorDecl) -> Iterator[Problem]:
    """What the SAM template's EventBridge Scheduler schedule cannot do for `repeat`, and a
    `dedupe` on a standard queue (only FIFO queues deduplicate)."""
    if decl.options.dedupe is not None and not decl.name.endswith(".fifo"):
        yield (
            "unsupported",
            f"queue {decl.name!r} sets dedupe=Dedupe(...) on a standard SQS queue, which "
            "cannot deduplicate (only a FIFO queue's MessageDeduplicationId does)",
            "name the queue with a final '.fifo'",
        )
    repeat = decl.options.repeat
    if repeat is None:
        return
    try:
        schedule_expression(repeat)
    except NotExpressible as exc:
        yield (
            "inexpressible",
            f"queue {decl.name!r}: {exc}",
            "use '?'-compatible cron (restrict only one of the day fields) or whole minutes",
        )
    if decl.name.endswith(".fifo"):
        yield (
            "inexpressible",
            f"queue {decl.name!r} is a FIFO queue: an EventBridge schedule's messages carry no "
            "deduplication id, so SQS would refuse them",
            "schedule a standard queue",
        )
    if repeat.limit is not None:
        yield (
            "unsupported",
            f"queue {decl.name!r} sets Repeat(limit={repeat.limit}), which the sqs runtime "
            "cannot honour: an EventBridge Scheduler schedule has no run limit",
            "remove limit=",
        )


PLUGIN = RuntimePlugin(
    name="sqs",
    emitters=(("sqs_lambda", sqs_lambda.emit), ("sam", sam.emit)),
    problems=problems,
    templates="sqs",
)
