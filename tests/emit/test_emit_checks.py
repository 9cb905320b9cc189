"""Options a configured runtime cannot honour are found at generate time, at the
processor's position: warnings, or errors under strict."""

from __future__ import annotations

from pathlib import Path

from emit_support import config_for, decl
from pikkugen.checks import check_runtimes


def codes(
    runtimes: tuple[str, ...], *decls_: object, strict: bool = False
) -> list[tuple[str, str, str]]:
    config = config_for(Path("/p"), runtimes=runtimes, strict=strict)
    found = check_runtimes(config, list(decls_))  # type: ignore[arg-type]
    return [(d.level, d.code, d.message) for d in found]


def test_everything_passes_on_sqlite_and_redis() -> None:
    everything = decl("q", priority=3, delay=10**9, max_concurrency=2, metrics=True)
    assert codes(("sqlite", "redis", "memory"), everything) == []


def test_sqs_priority_delay_and_global_concurrency() -> None:
    found = codes(("sqs",), decl("q", priority=3, delay=900_001, max_concurrency=2, line=7))
    assert [(level, code) for level, code, _ in found] == [
        ("warning", "PK801"),
        ("warning", "PK801"),
        ("warning", "PK802"),
    ]
    messages = " | ".join(m for _, _, m in found)
    assert "priority=3" in messages and "max_concurrency=2" in messages
    assert "900001" in messages and "900000" in messages


def test_delay_within_the_limit_is_fine() -> None:
    assert codes(("sqs",), decl("q", delay=900_000)) == []


def test_cloudflare_queue_names_and_dead_letter_names() -> None:
    found = codes(
        ("cloudflare",),
        decl("Upper_Case", dead_letter_queue="ok-dlq", line=1),
        decl("x", dead_letter_queue="Bad.DLQ", line=2),
    )
    assert [(code, message.split(" is not")[0]) for _, code, message in found] == [
        ("PK803", "queue name 'Upper_Case'"),
        ("PK803", "dead_letter_queue 'Bad.DLQ'"),
    ]


def test_strict_turns_every_finding_into_an_error() -> None:
    found = codes(("cloudflare", "sqs"), decl("q", priority=1), strict=True)
    assert found and {level for level, _, _ in found} == {"error"}


def test_findings_carry_the_processor_position() -> None:
    config = config_for(Path("/p"), runtimes=("sqs",))
    (finding,) = check_runtimes(config, [decl("q", priority=2, path="src/a/b.py", line=41)])
    assert (finding.path, finding.line, finding.column) == ("src/a/b.py", 41, 1)


def test_a_cancelled_event_asked_for_where_no_running_job_can_be_cancelled() -> None:
    listens = decl("q", events=["completed", "cancelled"], line=3)
    found = codes(("sqs", "cloudflare", "postgresql", "sqlite", "redis"), listens)
    assert [(level, code) for level, code, _ in found] == [("warning", "PK801")] * 2
    messages = " | ".join(m for _, _, m in found)
    assert "the sqs runtime" in messages and "the cloudflare runtime" in messages
    assert 'events=[..., "cancelled"]' in messages
    assert "SQS keeps no record of a running job" in messages
    assert codes(("sqs",), decl("q", events=["completed"])) == []
