"""A processor's own `repeat=` on SQS/Lambda: the SAM template's EventBridge schedule, the
Lambda handler running what such a schedule sends (a plain `{}` body, no pikku attributes),
and the refusal of a per-job Repeat that SQS cannot hold."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pikku_queue import JobContext, Repeat
from pikku_queue.adapters.catalog import CAPABILITIES
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter
from pikku_queue.adapters.sqs.lambda_handler import make_handler
from pikku_queue.client import TypedQueue
from pikku_queue.errors import BackendError
from pikku_queue.options import ProcessorOptions
from pikku_queue.registry import QueueEntry, Registry
from pikkugen.checks import check_runtimes
from pikkugen.config import Config
from pikkugen.emit.eventbridge import NotExpressible, cron_expression, rate_expression
from pydantic import TypeAdapter
from sqs_support import FakeLambdaContext, Queues
from test_sam import CFN_LINT, decl, emit, load

runs: list[tuple[str, int, Any]] = []


def cleanup(ctx: JobContext, data: dict[str, Any]) -> int:
    runs.append((ctx.job_id, ctx.attempt, data))
    return 0


@pytest.fixture
def scheduled_handler(backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("PIKKU_QUEUE", "cleanup")  # as the SAM template sets per function
    entry = QueueEntry(
        name="cleanup",
        function=f"{__name__}.cleanup",
        options=ProcessorOptions(repeat=Repeat(cron="0 2 * * *")),
    )
    handler = make_handler(Registry([entry]), backend_url=backend_url)
    yield handler
    handler.close()


@pytest.mark.sqs
def test_the_handler_runs_a_message_sent_by_an_eventbridge_schedule(
    queues: Queues, scheduled_handler: Any
) -> None:
    queues.create("cleanup")
    # What EventBridge Scheduler's SQS target sends: the Input as body, no message attributes.
    sent = queues.sqs.send_message(QueueUrl=queues.url("cleanup"), MessageBody="{}")
    # a first receive that is never settled (a crashed consumer), then the real one
    [lost] = queues.receive("cleanup", visibility=0)
    assert "MessageAttributes" not in lost
    messages = queues.receive("cleanup", wait=1)
    assert [m["MessageId"] for m in messages] == [sent["MessageId"]]
    event = queues.lambda_event("cleanup", messages)
    assert event["Records"][0]["messageAttributes"] == {}
    runs.clear()

    response = scheduled_handler(event, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    # job id = MessageId, attempt = ApproximateReceiveCount, payload = the schedule's Input
    assert runs == [(sent["MessageId"], 2, {})]


@pytest.mark.sqs
async def test_a_per_job_repeat_is_still_refused(backend: SQSQueueAdapter) -> None:
    assert CAPABILITIES["sqs"].supports("cron") and not CAPABILITIES["sqs"].job_repeat
    typed: TypedQueue[dict[str, Any], int] = TypedQueue(
        "cleanup", TypeAdapter(dict[str, Any]), TypeAdapter(int)
    )
    with pytest.raises(BackendError, match="per-job Repeat"):
        await typed.enqueue({}, repeat=Repeat(cron="0 2 * * *"), backend=backend)


def test_cron_and_rate_expressions() -> None:
    assert cron_expression("0 2 * * *") == "cron(0 2 * * ? *)"
    # day-of-week renumbered (SUN=1), Sunday as 0 or 7, names, steps expanded
    assert cron_expression("*/15 9-17 * * mon-fri") == "cron(0,15,30,45 9-17 ? * 2-6 *)"
    assert cron_expression("0 0 * * 7") == cron_expression("0 0 * * 0") == "cron(0 0 ? * 1 *)"
    assert cron_expression("0 0 * * 5-7") == "cron(0 0 ? * 1,6,7 *)"
    assert cron_expression("30 4 1,15 jan,jul *") == "cron(30 4 1,15 1,7 ? *)"
    assert cron_expression("@weekly") == "cron(0 0 ? * 1 *)"
    # both day fields written, one covering every day: cron's "either matches" is every day
    assert cron_expression("0 3 1-31 * 1") == "cron(0 3 * * ? *)"
    with pytest.raises(NotExpressible, match="both day-of-month and day-of-week"):
        cron_expression("0 0 1 * 1")
    assert rate_expression(60_000) == "rate(1 minute)"
    assert rate_expression(5_400_000) == "rate(90 minutes)"
    assert rate_expression(7_200_000) == "rate(2 hours)"
    assert rate_expression(86_400_000) == "rate(1 day)"
    with pytest.raises(NotExpressible, match="whole number of minutes"):
        rate_expression(90_000)


def test_the_template_schedules_each_repeating_processor(tmp_path: Path) -> None:
    files = emit(
        tmp_path,
        decl("nightly", repeat={"cron": "0 2 * * *"}),
        decl("hourly", repeat={"every": 3_600_000}),
        decl("plain"),
        decl("weird", repeat={"cron": "0 0 1 * 1"}),  # inexpressible: PK804, left out here
    )
    text = files["template.yaml"]
    res = load(text)["Resources"]
    schedules = {k: v for k, v in res.items() if v["Type"] == "AWS::Scheduler::Schedule"}
    assert sorted(schedules) == ["ScheduleHourly", "ScheduleNightly"]
    nightly = schedules["ScheduleNightly"]["Properties"]
    assert nightly["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert nightly["ScheduleExpressionTimezone"] == "UTC"
    assert nightly["FlexibleTimeWindow"] == {"Mode": "OFF"}  # quoted: not YAML's false
    target = nightly["Target"]
    assert target["Arn"] == {"GetAtt": "QueueNightly.Arn"}
    assert json.loads(target["Input"]) == {}
    assert target["RoleArn"] == {"GetAtt": "SchedulerRole.Arn"}
    assert schedules["ScheduleHourly"]["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    role = res["SchedulerRole"]["Properties"]
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "scheduler.amazonaws.com"}
    [statement] = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "sqs:SendMessage"
    # only the scheduled queues, not their DLQs or the others
    assert statement["Resource"] == [{"GetAtt": "QueueHourly.Arn"}, {"GetAtt": "QueueNightly.Arn"}]
    template = tmp_path / "template.yaml"
    template.write_text(text, encoding="utf-8")
    lint = subprocess.run(
        [str(CFN_LINT), str(template)], capture_output=True, text=True, timeout=120, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # and without any schedule, no role either
    unscheduled = load(emit(tmp_path, decl("plain"))["template.yaml"])["Resources"]
    assert "SchedulerRole" not in unscheduled


def checked(*decls: Any, strict: bool = False) -> list[tuple[str, str, str]]:
    config = Config(
        root=Path("/p"),
        paths=(Path("/p/src"),),
        out=Path("/p/src/app/generated"),
        out_package="app.generated",
        exclude=(),
        runtimes=("sqlite", "redis", "sqs"),
        services=None,
        strict=strict,
        backend=None,
        cache=False,
    )
    return [(d.level, d.code, d.message) for d in check_runtimes(config, list(decls))]


def test_what_eventbridge_cannot_run_is_an_error_for_sqs_only() -> None:
    assert checked(decl("nightly", repeat={"cron": "0 2 * * *"})) == []
    found = checked(
        decl("both-days", repeat={"cron": "0 0 1 * mon"}),
        decl("seconds", repeat={"every": 90_000}),
        decl("ordered.fifo", repeat={"cron": "0 2 * * *"}),
        decl("capped", repeat={"every": 60_000, "limit": 3}),
    )
    by_queue = {message.split("'")[1]: (level, code) for level, code, message in found}
    assert by_queue == {
        "both-days": ("error", "PK804"),  # an error without strict: the stack would differ
        "seconds": ("error", "PK804"),
        "ordered.fifo": ("error", "PK804"),
        "capped": ("warning", "PK801"),  # the schedule runs, only without its limit
    }
    assert len(found) == 4  # sqlite and redis honour all four
    assert ("error", "PK801") in {
        (lvl, code)
        for lvl, code, _ in checked(
            decl("capped", repeat={"every": 60_000, "limit": 3}), strict=True
        )
    }
