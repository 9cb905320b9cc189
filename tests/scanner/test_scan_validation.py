"""Every validation rule lands on the right line and column, with the runtime's message."""

from __future__ import annotations

import pytest
from scanner_helpers import Tree, position_of

HEADER = "from pikku_queue import queue_processor, add_queue_processor, RetryOptions\n"


def scan_source(tree: Tree, body: str) -> tuple[str, list[tuple[str, int | None, int | None, str]]]:
    source = HEADER + body
    found = tree.write({"app/__init__.py": "", "app/tasks.py": source}).scan()
    return source, [(d.code, d.line, d.column, d.message) for d in found.result.diagnostics]


CASES: list[tuple[str, str, str, str]] = [
    # (decorator arguments, code, text the diagnostic points at, message contains)
    (
        "'q', retry_options={'attempts': 0}",
        "PK203",
        "'attempts'",
        "retry_options.attempts: Input should be greater than or equal to 1",
    ),
    (
        "'q', retry_options=RetryOptions(backoff='linear')",
        "PK203",
        "backoff=",
        "retry_options.backoff: Input should be 'fixed' or 'exponential'",
    ),
    (
        "'q', retry_options={'delay': 500, 'max_delay': 10}",
        "PK203",
        "retry_options=",
        "retry_options: max_delay (10) must be >= delay (500)",
    ),
    (
        "'q', priority=0",
        "PK203",
        "priority=",
        "priority: Input should be greater than or equal to 1",
    ),
    (
        "'q', priority=2097152",  # one past BullMQ's limit
        "PK203",
        "priority=",
        "priority: Input should be less than or equal to 2097151",
    ),
    ("'q', timeout=0", "PK203", "timeout=", "timeout: Input should be greater than 0"),
    (
        "'q', concurrency=-1",
        "PK203",
        "concurrency=",
        "concurrency: Input should be greater than or equal to 1",
    ),
    ("'q', delay='soon'", "PK203", "delay=", "delay: Input should be a valid integer"),
    # Strict options: a bool is not an integer and "5" is not 5 (pydantic's lax mode would
    # write 1, 5000, True and 3 into the registry).
    (
        "'q', concurrency=True",
        "PK203",
        "concurrency=",
        "concurrency: Input should be a valid integer, got bool True",
    ),
    (
        "'q', timeout='5000'",
        "PK203",
        "timeout=",
        "timeout: Input should be a valid integer, got str '5000'",
    ),
    (
        "'q', metrics='yes'",
        "PK203",
        "metrics=",
        "metrics: Input should be a valid boolean, got str 'yes'",
    ),
    (
        "'q', metrics=1",
        "PK203",
        "metrics=",
        "metrics: Input should be a valid boolean, got int 1",
    ),
    (
        "'q', retry_options=RetryOptions(attempts='3')",
        "PK203",
        "attempts=",
        "retry_options.attempts: Input should be a valid integer, got str '3'",
    ),
    (
        "'q', retry_options={'attempts': True}",
        "PK203",
        "'attempts'",
        "retry_options.attempts: Input should be a valid integer, got bool True",
    ),
    (
        "'q', priority=True",
        "PK203",
        "priority=",
        "priority: Input should be a valid integer, got bool True",
    ),
    (
        "'q', max_stalled_count=2.0",
        "PK203",
        "max_stalled_count=",
        "max_stalled_count: Input should be a valid integer, got float 2.0",
    ),
    (
        "'q', max_concurrency='10'",
        "PK203",
        "max_concurrency=",
        "max_concurrency: Input should be a valid integer, got str '10'",
    ),
    (
        "'q', repeat={'every': True}",
        "PK203",
        "'every'",
        "repeat.every: Input should be a valid integer, got bool True",
    ),
    (
        "'q', retry_options={'jitter': True}",
        "PK203",
        "'jitter'",
        "retry_options.jitter: Input should be a valid number, got bool True",
    ),
    # One maximum for every delay, what every backend can store (`MAX_DELAY_MS`, ten years)
    (
        "'q', delay=9223372036854775808",  # 2**63: an OverflowError inside SQLite
        "PK203",
        "delay=",
        "delay: Input should be less than or equal to 315360000000",
    ),
    (
        "'q', delay=315360000001",
        "PK203",
        "delay=",
        "delay: Input should be less than or equal to 315360000000",
    ),
    (
        "'q', retry_options={'delay': 18446744073709551616}",
        "PK203",
        "'delay'",
        "retry_options.delay: Input should be less than or equal to 315360000000",
    ),
    (
        "'q', retry_options={'max_delay': 315360000001}",
        "PK203",
        "'max_delay'",
        "retry_options.max_delay: Input should be less than or equal to 315360000000",
    ),
    (
        "'q', repeat={'every': 315360000001}",
        "PK203",
        "'every'",
        "repeat.every: Input should be less than or equal to 315360000000",
    ),
    (
        "'q', events=['completed', 'exploded']",
        "PK203",
        "'exploded'",
        "events.1: Input should be 'completed'",
    ),
    (
        "'q', dead_letter_queue='bad name'",
        "PK203",
        "dead_letter_queue=",
        "a queue name may only hold letters",
    ),
    (
        "'q', dead_letter_queue='q'",
        "PK205",
        "dead_letter_queue=",
        "dead_letter_queue cannot be the queue itself",
    ),
    ("'has space'", "PK103", "'has space'", "a queue name may only hold letters, digits"),
    ("'" + "x" * 81 + "'", "PK103", "'xxx", "a queue name has at most 80 characters (got 81)"),
    ("''", "PK103", "''", "a queue name cannot be empty"),
    ("42", "PK102", "42", "the queue name must be a string, not int"),
    ("concurrency=2", "PK102", "queue_processor(", "queue_processor needs the queue name"),
    ("'q', 3", "PK105", "3", "takes the queue name and then keyword arguments only"),
    ("'q', name='r'", "PK105", "name=", "the queue name is given twice"),
    (
        "'q', retries=3",
        "PK202",
        "retries=",
        "unknown option `retries`; valid options: concurrency, max_concurrency, retry_options",
    ),
]


@pytest.mark.parametrize(
    ("args", "code", "at", "message"), CASES, ids=[c[1] + ":" + c[0][:30] for c in CASES]
)
def test_rule_position_and_message(tree: Tree, args: str, code: str, at: str, message: str) -> None:
    body = f"\n@queue_processor({args})\ndef handle(data: int) -> int:\n    return data\n"
    source, diagnostics = scan_source(tree, body)
    assert len(diagnostics) == 1, diagnostics
    got_code, line, column, got_message = diagnostics[0]
    nth = 1 if at == "queue_processor(" else 0
    if at == "queue_processor(":
        expected = position_of(source, "queue_processor(", 0)
    else:
        start = source.index("@queue_processor")
        expected = position_of(source[start:], at, nth)
        expected = (expected[0] + source[:start].count("\n"), expected[1])
    assert got_code == code
    assert (line, column) == expected
    assert message in got_message


def test_what_stays_lenient_scans_clean(tree: Tree) -> None:
    # An int for a float option, events as a list, a sub-model as a mapping or a call, and
    # the largest delay: strictness is about bools and strings posing as numbers, not these.
    body = (
        "@queue_processor('q', retry_options={'factor': 3, 'jitter': 0, 'delay': 315360000000},"
        " events=['completed'], repeat={'cron': '0 2 * * *'}, batch=None, delay=315360000000)\n"
        "def handle(data: dict[str, int]) -> None: ...\n"
        "@queue_processor('r', retry_options=RetryOptions(attempts=3, factor=1.5),"
        " repeat={'every': 315360000000}, metrics=False)\n"
        "def other(data: dict[str, int]) -> None: ...\n"
    )
    found = tree.write({"app/__init__.py": "", "app/tasks.py": HEADER + body}).scan()
    assert found.codes == []
    options = found.processor("q").options
    assert options.retry_options.factor == 3.0 and options.delay == 315_360_000_000
    assert found.processor("r").options.retry_options.factor == 1.5


def test_bare_decorator_and_add_queue_processor_shapes(tree: Tree) -> None:
    body = (
        "@queue_processor\n"
        "def a(data: int) -> int: ...\n"
        "add_queue_processor(name='b')\n"
        "add_queue_processor(name='c', func=lambda d: d)\n"
        "add_queue_processor(name='d', func=missing)\n"
        "add_queue_processor('e', func=a)\n"
    )
    source, diagnostics = scan_source(tree, body)
    assert [(c, line, col) for c, line, col, _ in diagnostics] == [
        ("PK102", *position_of(source, "queue_processor\n")),
        ("PK106", *position_of(source, "add_queue_processor(name='b')")),
        ("PK106", *position_of(source, "func=lambda")),
        ("PK107", *position_of(source, "missing")),
        ("PK102", *position_of(source, "add_queue_processor('e'")),
        ("PK105", *position_of(source, "'e'")),
    ]


def test_duplicate_queue_names_across_files(tree: Tree) -> None:
    first = HEADER + "@queue_processor('same')\ndef one(data: int) -> int: ...\n"
    second = HEADER + "\n\n@queue_processor('same')\ndef two(data: int) -> int: ...\n"
    found = tree.write({"app/__init__.py": "", "app/a.py": first, "app/b.py": second}).scan()
    assert [p.function for p in found.result.processors] == ["app.a.one"]
    d = found.only("PK104")
    assert (d.path, d.line, d.column) == ("app/b.py", 4, 2)
    assert d.hint is not None and "first declared at app/a.py:2:2" in d.hint
    assert "app.a.one" in d.message


def test_signature_and_annotation_rules(tree: Tree) -> None:
    body = (
        "@queue_processor('none')\n"
        "def none() -> int: ...\n"
        "@queue_processor('three')\n"
        "def three(ctx, data: int, extra: int) -> int: ...\n"
        "@queue_processor('untyped')\n"
        "def untyped(ctx, data):\n"
        "    ...\n"
        "@queue_processor('batch', batch={'size': 5})\n"
        "def batch(data: int) -> list[int]: ...\n"
        "@queue_processor('kwonly')\n"
        "def kwonly(ctx, *, data: int) -> int: ...\n"
        "@queue_processor('kwdefault')\n"
        "def kwdefault(data: int, *, flag: bool = False) -> int: ...\n"
    )
    source, diagnostics = scan_source(tree, body)
    assert [(c, line, col) for c, line, col, _ in diagnostics] == [
        ("PK305", *position_of(source, "none()")),
        ("PK305", *position_of(source, "three(")),
        ("PK301", *position_of(source, "untyped(")),
        ("PK301", *position_of(source, "data)")),
        ("PK304", *position_of(source, "int) -> list")),
        ("PK305", *position_of(source, "data: int) -> int: ...\n@")),
    ]
    assert "keyword-only" in diagnostics[-1][3]


def test_unpacked_arguments_are_reported_not_skipped(tree: Tree) -> None:
    body = (
        "OPTS = {'concurrency': 2}\n"
        "@queue_processor('splat', **OPTS)\n"
        "def splat(data: int) -> int: ...\n"
        "@queue_processor('inner', retry_options=RetryOptions(**OPTS))\n"
        "def inner(data: int) -> int: ...\n"
    )
    source, diagnostics = scan_source(tree, body)
    assert [(c, line, col) for c, line, col, _ in diagnostics] == [
        ("PK201", *position_of(source, "queue_processor('splat'")),
        ("PK201", *position_of(source, "RetryOptions(**")),
    ]
    assert "unpacking" in diagnostics[0][3] and "unpacking" in diagnostics[1][3]


def test_decorated_class_is_reported(tree: Tree) -> None:
    source, diagnostics = scan_source(tree, "@queue_processor('k')\nclass Handler:\n    pass\n")
    assert diagnostics == [
        ("PK305", *position_of(source, "queue_processor('k')"), diagnostics[0][3])
    ]
    assert "decorates a class" in diagnostics[0][3]


def test_the_runtime_package_inside_the_tree_is_not_scanned(tree: Tree) -> None:
    found = tree.write(
        {
            "pikku_queue/__init__.py": "from .declarations import queue_processor\n",
            "pikku_queue/declarations.py": "def queue_processor(name):\n    return lambda f: f\n",
            "app.py": HEADER + "@queue_processor('q')\ndef q(data: int) -> int: ...\n",
        }
    ).scan()
    assert found.names == ["q"]
    assert found.stats.files == 1


def test_a_constant_assigned_twice_is_not_guessed(tree: Tree) -> None:
    # at import, the decorator sees 1000 (the later line has not run): reading the last
    # assignment would put 2000 in the registry while the runtime uses 1000
    body = (
        "T = 1000\n"
        "@queue_processor('q', timeout=T)\n"
        "def q(data: int) -> int: ...\n"
        "T = 2000\n"
        "try:\n    import fast\n    C = 4\nexcept ImportError:\n    C = 1\n"
        "@queue_processor('r', concurrency=C)\n"
        "def r(data: int) -> int: ...\n"
    )
    source, diagnostics = scan_source(tree, body)
    assert [(c, line, col) for c, line, col, _ in diagnostics] == [
        ("PK204", *position_of(source, "2000")),
        ("PK204", *position_of(source, "1\n@")),
    ]
    assert "constant `T` is assigned more than once" in diagnostics[0][3]


def test_a_constant_used_before_its_assignment_is_reported(tree: Tree) -> None:
    body = (
        "RETRY = RetryOptions(attempts=ATTEMPTS)\n"
        "ATTEMPTS = 3\n"
        "@queue_processor('q', timeout=LATER, retry_options=RETRY)\n"
        "def q(data: int) -> int: ...\n"
        "LATER = 5000\n"
    )
    source, diagnostics = scan_source(tree, body)
    assert [(c, line, col) for c, line, col, _ in diagnostics] == [
        ("PK204", *position_of(source, "ATTEMPTS)")),
        ("PK204", *position_of(source, "LATER,")),
    ]
    assert "assigned after this line (at line 6)" in diagnostics[1][3]


def test_add_queue_processor_above_the_function_it_names_is_reported(tree: Tree) -> None:
    body = (
        "add_queue_processor(name='early', func=later)\n"
        "def later(data: int) -> int: ...\n"
        "add_queue_processor(name='fine', func=later)\n"
    )
    found = tree.write({"app/__init__.py": "", "app/tasks.py": HEADER + body}).scan()
    assert found.names == ["fine"]
    source = HEADER + body
    assert found.where("PK107") == ("app/tasks.py", *position_of(source, "later)"))
    assert "defined below this call (at line 3)" in found.only("PK107").message


def test_declarations_inside_expressions_are_reported_not_skipped(tree: Tree) -> None:
    body = (
        "def fn(data: int) -> int: ...\n"
        "deco = queue_processor('kept-aside', concurrency=2)\n"
        "@deco\n"
        "def g(data: int) -> int: ...\n"
        "queue_processor('by-hand')(fn)\n"
        "handler = queue_processor('assigned')(fn)\n"
        "specs = [add_queue_processor(name='in-list', func=fn)]\n"
        "later = lambda: add_queue_processor(name='in-lambda', func=fn)\n"
        "def queue_processor_like(x): ...\n"
        "ok = [queue_processor_like('not-ours')]\n"
    )
    source, diagnostics = scan_source(tree, body)
    assert [(c, line, col) for c, line, col, _ in diagnostics] == [
        ("PK101", *position_of(source, "queue_processor('kept-aside'")),
        ("PK101", *position_of(source, "queue_processor('by-hand')")),
        ("PK101", *position_of(source, "queue_processor('assigned')")),
        ("PK101", *position_of(source, "add_queue_processor(name='in-list'")),
    ]
    assert "only as a decorator" in diagnostics[0][3]
    assert all("inside an expression" in d[3] for d in diagnostics[1:])
