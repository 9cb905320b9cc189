"""`template.yaml`: the AWS SAM stack that runs the queues on SQS + Lambda.

Per processor: an SQS queue, its dead-letter queue (the processor's `dead_letter_queue`, else
`<queue>-dlq`) with a RedrivePolicy as the safety net for crashes, and a function whose SQS
event source reports partial batch failures. The numbers are derived, not guessed:

- maxReceiveCount = max(attempts, 5): the engine dead-letters on the last attempt itself, so
  SQS's redrive only acts when consumers crash (AWS recommends at least 5).
- function Timeout = the processor's timeout + a margin to settle (60 s when it has none; at
  most Lambda's 900 s); VisibilityTimeout = 6 × that, as AWS asks for SQS event sources.
- BatchSize = `batch.size` for batch processors (window from `batch.timeout`), else
  `concurrency` (at most 10): records of one invocation run side by side, up to `concurrency`.
- ScalingConfig.MaximumConcurrency = `max_concurrency` (SQS mappings accept 2–1000).

Schedules: a processor's own `repeat` becomes an `AWS::Scheduler::Schedule` (UTC) that sends
`{}` to its queue, through one role allowed only `sqs:SendMessage` on the scheduled queues.
The expression comes from `eventbridge`; one it cannot express is a PK804 error earlier
(`checks`), so it is left out here rather than approximated. A Repeat `limit` has no
EventBridge counterpart (a PK801 warning).

Permissions: one managed policy (output as ProducerPolicyArn) may enqueue to every queue of the
stack; each function has it, since processors often enqueue follow-up jobs and the handler
sends dead-letter records, plus ChangeMessageVisibility on its own queue for backoff.

Everything is computed and sorted in Python; the template only lays it out, so the YAML is
byte-for-byte stable.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass

from pikku_queue.options import ProcessorOptions

from pikkugen.emit.base import EmitInput, header, render
from pikkugen.emit.eventbridge import NotExpressible, schedule_expression
from pikkugen.model import ProcessorDecl
from pikkugen.runtimes.sqs.sqs_lambda import handler_path

LAMBDA_RUNTIME = "python3.12"
DEFAULT_FUNCTION_TIMEOUT_S = 60
MAX_FUNCTION_TIMEOUT_S = 900
#: Seconds added to a processor's timeout for the handler to settle the batch.
SETTLE_MARGIN_S = 2
MAX_VISIBILITY_S = 43_200
MIN_MAX_RECEIVE_COUNT = 5
MAX_MAX_RECEIVE_COUNT = 1_000
DLQ_RETENTION_S = 1_209_600  # 14 days, SQS's longest
MAX_QUEUE_NAME = 80


@dataclass(frozen=True)
class SamQueue:
    name: str
    logical_id: str
    fifo: bool
    visibility_timeout: int | None = None
    dead_letter_id: str | None = None
    max_receive_count: int | None = None
    retention: int | None = None


@dataclass(frozen=True)
class SamFunction:
    queue: str
    logical_id: str
    queue_id: str
    dead_letter_id: str
    timeout: int
    batch_size: int
    batching_window: int | None
    maximum_concurrency: int | None


@dataclass(frozen=True)
class SamSchedule:
    queue: str
    logical_id: str
    queue_id: str
    expression: str


def default_dead_letter_queue(name: str) -> str:
    """`<name>-dlq` (FIFO: `<name>-dlq.fifo`, as a FIFO queue's DLQ must be FIFO too),
    shortened to SQS's 80 characters."""
    base, suffix = (
        (name[: -len(".fifo")], "-dlq.fifo") if name.endswith(".fifo") else (name, "-dlq")
    )
    return base[: MAX_QUEUE_NAME - len(suffix)] + suffix


def dead_letter_queue_of(decl: ProcessorDecl) -> str:
    return decl.options.dead_letter_queue or default_dead_letter_queue(decl.name)


def function_timeout_s(options: ProcessorOptions) -> int:
    if options.timeout is None:
        return DEFAULT_FUNCTION_TIMEOUT_S
    return min(MAX_FUNCTION_TIMEOUT_S, math.ceil(options.timeout / 1000) + SETTLE_MARGIN_S)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


def logical_ids(names: list[str]) -> dict[str, str]:
    """Queue name → a CloudFormation-safe stem; names that would collide get a hash suffix."""
    stems = {name: _camel(name) for name in names}
    counts: dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {
        name: stem if counts[stem] == 1 else stem + hashlib.sha1(name.encode()).hexdigest()[:6]
        for name, stem in stems.items()
    }


def _batching(decl: ProcessorDecl, fifo: bool) -> tuple[int, int | None]:
    batch = decl.options.batch
    if batch is None:
        return min(10, decl.options.concurrency), None
    size = min(batch.size, 10) if fifo else batch.size
    window = min(300, math.ceil(batch.timeout / 1000))
    if size > 10:
        window = max(window, 1)  # SQS mappings need a window for batches over 10
    return size, window


def build(processors: list[ProcessorDecl]) -> tuple[list[SamQueue], list[SamFunction]]:
    """The stack's queues (sorted by name) and functions (sorted by queue)."""
    decls = sorted(processors, key=lambda p: p.name)
    by_name = {d.name: d for d in decls}
    dead_letters = {d.name: dead_letter_queue_of(d) for d in decls}
    names = sorted({*by_name, *dead_letters.values()})
    ids = logical_ids(names)
    queues: list[SamQueue] = []
    for name in names:
        logical_id = f"Queue{ids[name]}"
        fifo = name.endswith(".fifo")
        decl = by_name.get(name)
        if decl is None:  # a dead-letter queue no processor serves
            queues.append(SamQueue(name, logical_id, fifo, retention=DLQ_RETENTION_S))
            continue
        attempts = decl.options.retry_options.attempts
        queues.append(
            SamQueue(
                name,
                logical_id,
                fifo,
                visibility_timeout=min(MAX_VISIBILITY_S, 6 * function_timeout_s(decl.options)),
                dead_letter_id=f"Queue{ids[dead_letters[name]]}",
                max_receive_count=min(MAX_MAX_RECEIVE_COUNT, max(attempts, MIN_MAX_RECEIVE_COUNT)),
            )
        )
    functions = []
    for decl in decls:
        size, window = _batching(decl, decl.name.endswith(".fifo"))
        max_concurrency = decl.options.max_concurrency
        functions.append(
            SamFunction(
                queue=decl.name,
                logical_id=f"Function{ids[decl.name]}",
                queue_id=f"Queue{ids[decl.name]}",
                dead_letter_id=f"Queue{ids[dead_letters[decl.name]]}",
                timeout=function_timeout_s(decl.options),
                batch_size=size,
                batching_window=window,
                maximum_concurrency=(
                    None if max_concurrency is None else min(1000, max(2, max_concurrency))
                ),
            )
        )
    return queues, functions


def schedules(processors: list[ProcessorDecl]) -> list[SamSchedule]:
    """One schedule per processor with an expressible `repeat`, sorted by queue."""
    decls = sorted(processors, key=lambda p: p.name)
    names = sorted({d.name for d in decls} | {dead_letter_queue_of(d) for d in decls})
    ids = logical_ids(names)
    found = []
    for decl in decls:
        repeat = decl.options.repeat
        if repeat is None or decl.name.endswith(".fifo"):
            continue
        try:
            expression = schedule_expression(repeat)
        except NotExpressible:
            continue
        stem = ids[decl.name]
        found.append(SamSchedule(decl.name, f"Schedule{stem}", f"Queue{stem}", expression))
    return found


def code_uri(out_package: str) -> str:
    """From the template's folder up to the folder the package is imported from."""
    return "/".join([".."] * len(out_package.split(".")))


def yaml_str(text: str) -> str:
    """A double-quoted YAML scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(text)


def emit(data: EmitInput) -> dict[str, str]:
    config = data.config
    queues, functions = build(list(data.scan.processors))
    text = render(
        "sqs/template.yaml.j2",
        header=header(config.relative_paths()),
        description=yaml_str(f"Background queues of {config.out_package} (pikkugen)"),
        runtime=LAMBDA_RUNTIME,
        handler=yaml_str(handler_path(config.out_package)),
        code_uri=yaml_str(code_uri(config.out_package)),
        queues=queues,
        functions=functions,
        schedules=schedules(list(data.scan.processors)),
        q=yaml_str,
    )
    return {"template.yaml": text}
