"""Dead-letter queues between processors: a cycle is an error (a failing job bounced 982 times
in 30 s between `cyc-a` and `cyc-b`), a DLQ that another processor serves is a warning."""

from __future__ import annotations

from scanner_helpers import Tree, position_of

HEADER = "from pikku_queue import queue_processor\n"


def processor(queue: str, dlq: str | None, function: str) -> str:
    option = f", dead_letter_queue={dlq!r}" if dlq else ""
    return (
        f"\n\n@queue_processor({queue!r}{option})\n"
        f"async def {function}(data: int) -> None:\n    return None\n"
    )


def scan(tree: Tree, *decls: tuple[str, str | None]) -> tuple[str, list[tuple[str, str, str, str]]]:
    source = HEADER + "".join(processor(q, d, f"handle_{i}") for i, (q, d) in enumerate(decls))
    found = tree.write({"app/__init__.py": "", "app/jobs.py": source}).scan()
    rows: list[tuple[str, str, str, str]] = [
        (d.code, str(d.level), f"{d.line}:{d.column}", d.message) for d in found.result.diagnostics
    ]
    return source, rows


def at(source: str, queue: str) -> str:
    line, column = position_of(source, f"queue_processor({queue!r}")
    return f"{line}:{column}"


def test_two_queues_dead_lettering_to_each_other_are_one_error(tree: Tree) -> None:
    source, rows = scan(tree, ("cyc-a", "cyc-b"), ("cyc-b", "cyc-a"))
    assert rows == [
        (
            "PK206",
            "error",
            at(source, "cyc-a"),
            "dead-letter queues form a cycle: 'cyc-a' -> 'cyc-b' -> 'cyc-a'; a failing job "
            "would be dead-lettered from one to the next for ever",
        )
    ]


def test_a_longer_cycle_is_named_from_its_first_declaration(tree: Tree) -> None:
    source, rows = scan(tree, ("c", "a"), ("a", "b"), ("b", "c"))
    assert [(code, where) for code, _, where, _ in rows] == [("PK206", at(source, "c"))]
    assert "'c' -> 'a' -> 'b' -> 'c'" in rows[0][3]


def test_a_queue_that_is_its_own_dead_letter_queue_stays_pk205(tree: Tree) -> None:
    _, rows = scan(tree, ("self", "self"))
    assert [r[0] for r in rows] == ["PK205"]


def test_a_dead_letter_queue_served_by_another_processor_is_a_warning(tree: Tree) -> None:
    source, rows = scan(tree, ("orders", "fallback"), ("fallback", "fallback-dlq"))
    assert rows == [
        (
            "PK207",
            "warning",
            at(source, "orders"),
            "dead_letter_queue 'fallback' of queue 'orders' is processed by "
            "`app.jobs.handle_1`: it will run the jobs that fail here, with this queue's "
            "payloads",
        )
    ]


def test_a_queue_feeding_a_cycle_is_warned_and_the_cycle_reported_once(tree: Tree) -> None:
    source, rows = scan(tree, ("x", "a"), ("a", "b"), ("b", "a"))
    assert sorted((code, where) for code, _, where, _ in rows) == sorted(
        [("PK206", at(source, "a")), ("PK207", at(source, "x"))]
    )


def test_plain_dead_letter_queues_are_silent(tree: Tree) -> None:
    _, rows = scan(tree, ("a", "a-dlq"), ("b", "a-dlq"), ("c", None))
    assert rows == []
