"""What the cloudflare runtime generates from options, and the generate-time diagnostics for
what a cron trigger or a Cloudflare consumer cannot do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pikku_queue.options import ProcessorOptions, Repeat
from pikkugen.checks import check_runtimes
from pikkugen.config import load_config
from pikkugen.emit.eventbridge import NotExpressible
from pikkugen.model import Location, ProcessorDecl, TypeRef
from pikkugen.runtimes.cloudflare import plan, worker_dependencies


def decl(name: str = "q", *, is_async: bool = True, **options: Any) -> ProcessorDecl:
    return ProcessorDecl(
        name=name,
        function="app.jobs.handler",
        module="app.jobs",
        input=TypeRef(annotation="int"),
        output=TypeRef(annotation="int"),
        is_async=is_async,
        location=Location(path="src/app/jobs.py", line=3, column=1),
        options=ProcessorOptions.model_validate(options),
    )


def findings(tmp_path: Path, *decls: ProcessorDecl) -> list[tuple[str, str, str]]:
    config = load_config(None, paths=[str(tmp_path)], runtimes=["cloudflare"], cache=False)
    return [(d.level, d.code, d.message) for d in check_runtimes(config, list(decls))]


@pytest.mark.parametrize(
    ("cron", "trigger"),
    [
        ("0 9 * * 1-5", "0 9 * * 2-6"),  # Monday-Friday: Cloudflare counts 1-7 from Sunday
        ("0 9 * * 0", "0 9 * * 1"),
        ("0 9 * * 7", "0 9 * * 1"),  # Sunday as 7
        ("0 9 * * sat,sun", "0 9 * * 1,7"),
        ("*/10 * 1 * *", "0,10,20,30,40,50 * 1 * *"),
        ("@daily", "0 0 * * *"),
    ],
)
def test_cron_triggers_in_cloudflare_numbering(cron: str, trigger: str) -> None:
    assert plan.cron_trigger(Repeat(cron=cron)) == trigger


@pytest.mark.parametrize(
    ("every", "trigger"),
    [
        (60_000, "* * * * *"),
        (900_000, "*/15 * * * *"),
        (3_600_000, "0 * * * *"),
        (6 * 3_600_000, "0 */6 * * *"),
    ],
)
def test_intervals_that_divide_an_hour_or_a_day(every: int, trigger: str) -> None:
    assert plan.cron_trigger(Repeat(every=every)) == trigger


@pytest.mark.parametrize("repeat", [Repeat(every=90_000), Repeat(every=420_000)])
def test_intervals_no_cron_line_fires_on(repeat: Repeat) -> None:
    with pytest.raises(NotExpressible):
        plan.cron_trigger(repeat)


def test_consumer_settings_are_clamped_to_cloudflares_limits() -> None:
    c = plan.consumer(
        decl(
            batch={"size": 500, "timeout": 120_000},
            retry_options={"attempts": 500, "delay": 90_000_000},
            max_concurrency=10_000,
        )
    )
    assert (c.max_batch_size, c.max_batch_timeout, c.max_retries) == (100, 60, 100)
    assert c.retry_delay == 43_200
    assert c.max_concurrency == 100  # 10,000 jobs / 100 a batch invocation
    assert plan.consumer(decl(max_concurrency=3, concurrency=5)).max_concurrency == 1


def test_binding_names_are_derived_from_queue_names() -> None:
    assert plan.bindings([decl("orders-eu", dead_letter_queue="failed")]) == {
        "failed": "QUEUE_FAILED",
        "orders-eu": "QUEUE_ORDERS_EU",
    }
    assert plan.dead_letter_queue_of(decl("x" * 63)) == "x" * 59 + "-dlq"


def test_what_cloudflare_cannot_do_is_diagnosed(tmp_path: Path) -> None:
    found = findings(
        tmp_path,
        decl("both-days", repeat={"cron": "0 0 1 * 1"}),
        decl("limited", repeat={"every": 60_000, "limit": 2}),
        decl("big", batch={"size": 101}),
        decl("tries", retry_options={"attempts": 102}),
        decl("blocking", is_async=False, timeout=1_000),
        decl("plain-sync", is_async=False),  # runs on the event loop: nothing to report
        decl("Bad_Name", priority=1),
    )
    assert sorted((code, level, message.split(" ")[1]) for level, code, message in found) == [
        ("PK801", "warning", "'Bad_Name'"),
        ("PK801", "warning", "'blocking'"),
        ("PK801", "warning", "'limited'"),
        ("PK802", "warning", "'big'"),
        ("PK802", "warning", "'tries'"),
        ("PK803", "warning", "name"),  # "queue name 'Bad_Name' is not allowed …"
        ("PK804", "error", "'both-days':"),
    ]


def test_cpu_ms_follows_the_largest_timeout_above_the_default() -> None:
    assert plan.cpu_ms([decl("a", timeout=10_000), decl("b")]) is None  # the default, 30 s
    assert plan.cpu_ms([decl("a", timeout=30_000)]) is None
    assert plan.cpu_ms([decl("a", timeout=45_000), decl("b", timeout=90_000)]) == 90_000
    assert plan.cpu_ms([decl("a", timeout=900_000)]) == 300_000  # Cloudflare's most


def test_cloudflares_own_dead_letter_queue_is_never_the_records_queue() -> None:
    consumer = plan.consumer(decl("orders", dead_letter_queue="orders-failed"))
    assert consumer.dead_letter_queue == "orders-stalled"
    assert plan.stalled_consumer(decl("orders")).dead_letter_queue is None
    assert plan.stalled([decl("x" * 63)]) == {"x" * 55 + "-stalled": "x" * 63}
    assert "orders-stalled" not in plan.queues([decl("orders")])


def test_the_worker_project_vendors_your_project_and_rebases_your_uv_sources(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "my-app"\nversion = "1"\n'
        '[tool.uv.sources]\npikku-queue = { path = "vendor/runtime" }\n'
        'other = { path = "elsewhere" }\n'
        '[tool.pikkugen]\nout = "src/app/gen"\n'
    )
    (tmp_path / "src").mkdir()
    config = load_config(tmp_path, runtimes=["cloudflare"], cache=False)

    dependencies, sources = worker_dependencies(config)

    assert dependencies == ["pikku-queue", "pydantic", "my-app"]
    assert sources == {
        "my-app": {"path": "../../../..", "editable": False},
        "pikku-queue": {"path": "../../../../vendor/runtime"},
    }
