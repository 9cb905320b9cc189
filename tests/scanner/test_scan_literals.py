"""Options are read as literals: every literal kind, constants followed, the rest refused."""

from __future__ import annotations

from pikku_queue.options import ALL_EVENTS
from scanner_helpers import Tree, position_of


def one_processor(
    tree: Tree,
    decorator_args: str,
    prelude: str = "",
    signature: str = "data: int) -> int",
    **extra: str,
) -> Tree:
    source = (
        "from pikku_queue import queue_processor, RetryOptions, BatchOptions\n"
        "import pikku_queue as pq\n"
        f"{prelude}"
        f"@queue_processor({decorator_args})\n"
        f"def handle({signature}:\n"
        "    return data\n"
    )
    files: dict[str, str | bytes] = {"app/__init__.py": "", "app/tasks.py": source}
    files.update({f"app/{k}.py": v for k, v in extra.items()})
    return tree.write(files)


def test_every_literal_kind(tree: Tree) -> None:
    found = one_processor(
        tree,
        "'q', concurrency=+4, max_concurrency=None, priority=10, delay=1_000, "
        "timeout=5 * 60 * 1000, dead_letter_queue='q' '-dlq', max_stalled_count=0, metrics=True, "
        "events=('completed', 'failed'), "
        "retry_options={'attempts': 5, 'backoff': 'exponential', 'delay': 2000, "
        "'max_delay': 60000, 'factor': 1.5, 'jitter': 0.25}",
    ).scan()
    options = found.processor("q").options
    assert found.result.diagnostics == ()
    assert options.concurrency == 4
    assert options.max_concurrency is None
    assert (options.priority, options.delay, options.timeout) == (10, 1000, 300_000)
    assert options.dead_letter_queue == "q-dlq"
    assert (options.max_stalled_count, options.metrics) == (0, True)
    assert options.events == ("completed", "failed")
    retry = options.retry_options
    assert (retry.attempts, retry.backoff, retry.delay) == (5, "exponential", 2000)
    assert (retry.max_delay, retry.factor, retry.jitter) == (60000, 1.5, 0.25)


def test_option_classes_lists_sets_and_dict_calls(tree: Tree) -> None:
    found = one_processor(
        tree,
        "'q', retry_options=pq.RetryOptions(attempts=2, backoff='fixed', delay=10), "
        "batch=BatchOptions(size=10, timeout=30000), events={'stalled', 'completed'}",
        signature="data: list[int]) -> list[str]",
    ).scan()
    options = found.processor("q").options
    assert options.retry_options.attempts == 2
    assert options.batch is not None and (options.batch.size, options.batch.timeout) == (10, 30000)
    assert options.events == ("completed", "stalled")
    again = one_processor(tree, "'q', retry_options=dict(attempts=7), events=None").scan()
    assert again.processor("q").options.retry_options.attempts == 7
    assert again.processor("q").options.events == ALL_EVENTS


def test_option_class_through_an_alias(tree: Tree) -> None:
    found = one_processor(
        tree,
        "'q', retry_options=Retry(attempts=3)",
        prelude="from pikku_queue.options import RetryOptions as Retry\n",
    ).scan()
    assert found.processor("q").options.retry_options.attempts == 3


def test_defaults_are_filled_in(tree: Tree) -> None:
    found = one_processor(tree, "'q'").scan()
    assert found.processor("q").options.model_dump() == {
        "concurrency": 1,
        "max_concurrency": None,
        "retry_options": {
            "attempts": 1,
            "backoff": "fixed",
            "delay": 0,
            "max_delay": None,
            "factor": 2.0,
            "jitter": 0.0,
        },
        "priority": None,
        "delay": 0,
        "timeout": None,
        "dead_letter_queue": None,
        "max_stalled_count": 1,
        "metrics": False,
        "events": ALL_EVENTS,
        "batch": None,
        "repeat": None,
        "rate_limit": None,
        "dedupe": None,
    }


def test_rate_limit_and_dedupe_read_as_literals(tree: Tree) -> None:
    found = one_processor(
        tree,
        "'q', rate_limit=RL(max=5, per_ms=1000), dedupe=Dedupe(key='u-{a}', ttl_ms=9, mode='extend')",
        prelude="from pikku_queue import Dedupe, RateLimit as RL\n",
        signature="data: dict[str, int]) -> None",
    ).scan()
    options = found.processor("q").options
    assert options.rate_limit is not None
    assert (options.rate_limit.max, options.rate_limit.per_ms) == (5, 1000)
    assert options.dedupe is not None and options.dedupe.fields == ("a",)
    assert options.dedupe.mode == "extend"


def test_constants_in_the_same_module_and_across_modules(tree: Tree) -> None:
    found = one_processor(
        tree,
        "NAME, timeout=TIMEOUT, retry_options=RETRY, priority=settings.PRIORITY, "
        "dead_letter_queue=DLQ, delay=-NEG",
        prelude=(
            "from .settings import TIMEOUT, DLQ\n"
            "from app import settings\n"
            "from .retry import RETRY\n"
            "NAME = 'from-' + 'constant'\n"
            "NEG = -250\n"
        ),
        # neither module mentions pikku_queue: they are read because tasks.py imports them
        settings="from .base import MINUTE as _M\nTIMEOUT = 2 * _M\nPRIORITY = 3\nDLQ = 'dead'\n",
        base="MINUTE = 60_000\n",
        retry="from pikku_queue import RetryOptions as R\nATTEMPTS = 6\nRETRY = R(attempts=ATTEMPTS)\n",
    ).scan()
    processor = found.processor("from-constant")
    assert found.result.diagnostics == ()
    assert processor.options.timeout == 120_000
    assert processor.options.priority == 3
    assert processor.options.dead_letter_queue == "dead"
    assert processor.options.delay == 250
    assert processor.options.retry_options.attempts == 6


def test_non_literals_are_diagnostics_at_the_expression(tree: Tree) -> None:
    args = (
        "'q', concurrency=compute(), dead_letter_queue=f'{NAME}-dlq', timeout=local_value, "
        "priority=EXTERNAL, delay=NOT_CONST"
    )
    prelude = (
        "from elsewhere import EXTERNAL\n"
        "NAME = 'n'\n"
        "def compute(): return 1\n"
        "def make():\n    local_value = 3\n"
        "def NOT_CONST(): ...\n"
    )
    found = one_processor(tree, args, prelude=prelude).scan()
    assert found.names == []
    source = (
        "from pikku_queue import queue_processor, RetryOptions, BatchOptions\nimport pikku_queue as pq\n"
        + prelude
        + f"@queue_processor({args})\n"
    )
    by_code = [(d.code, d.line, d.column, d.message) for d in found.result.diagnostics]
    assert by_code == [
        ("PK201", *position_of(source, "compute()", 1), "a call to `compute` is not a literal"),
        ("PK201", *position_of(source, "f'{NAME}"), "an f-string is not a literal"),
        (
            "PK204",
            *position_of(source, "local_value", 1),
            "cannot find `local_value`: it is neither defined nor imported at module level",
        ),
        (
            "PK204",
            *position_of(source, "EXTERNAL", 1),
            "`EXTERNAL` comes from `elsewhere`, outside the scanned tree",
        ),
        (
            "PK204",
            *position_of(source, "NOT_CONST", 1),
            "`NOT_CONST` is not a module-level constant with a literal value",
        ),
    ]
    assert all(d.hint and "module-level constant" in d.hint for d in found.result.diagnostics)
    assert all(d.path == "app/tasks.py" for d in found.result.diagnostics)


def test_non_literal_inside_a_constant_points_into_the_constant(tree: Tree) -> None:
    found = one_processor(
        tree,
        "'q', retry_options=RETRY",
        prelude="import os\nRETRY = {'attempts': int(os.environ['N'])}\n",
    ).scan()
    d = found.only("PK201")
    assert (d.line, d.column) == (4, 22)
    assert d.message == "a call to `int` is not a literal"


def test_constants_referring_to_themselves(tree: Tree) -> None:
    found = one_processor(tree, "'q', timeout=A", prelude="A = A + 1\n").scan()
    assert found.only("PK204").message == "constant `A` refers to itself"
    # in one module, a cycle is first of all a name used before its assignment
    found = one_processor(tree, "'q', timeout=A", prelude="A = B\nB = A\n").scan()
    assert found.only("PK204").message.startswith("`B` is assigned after this line")


def test_a_constant_whose_value_is_computed_points_at_the_use_and_names_the_definition(
    tree: Tree,
) -> None:
    """`workers = int(os.environ[...])` then `concurrency=workers`: the hint said "move the
    value into a module-level constant", pointing at what already is one."""
    prelude = "import os\nworkers = int(os.environ['WORKERS'])\n"
    found = one_processor(tree, "'q', concurrency=workers", prelude=prelude).scan()
    d = found.only("PK201")
    source = (tree.root / "app" / "tasks.py").read_text()
    assert (d.line, d.column) == position_of(source, "workers)")
    assert d.message == (
        "`workers` is a module-level constant, but its value (at line 4) is not a literal: "
        "a call to `int` is not a literal"
    )
    assert d.hint is not None
    assert "move the value into a module-level constant" not in d.hint
    assert "a constant assigned a literal (`WORKERS = 4`)" in d.hint
    assert d.hint.endswith(
        "to choose it at run time, start the worker with `pikkugen worker --concurrency N`"
    )


def test_a_computed_constant_in_another_module_is_named_by_path(tree: Tree) -> None:
    tree.write({"app/settings.py": "import os\nTIMEOUT = int(os.environ['T'])\n"})
    found = one_processor(
        tree, "'q', timeout=TIMEOUT", prelude="from app.settings import TIMEOUT\n"
    ).scan()
    d = found.only("PK201")
    assert d.path == "app/tasks.py"
    assert "(at app/settings.py:2:11)" in d.message
    assert d.hint is not None and "--concurrency" not in d.hint
