"""Mutated, garbage and deeply nested sources give diagnostics, never an exception, a crash or
a hang (and never PK900, the code the scanner uses for its own bugs).

The deep cases summarise in this very process: a native crash in libcst would kill the test
run, which is the failure this guards against. The quick loop runs a
few dozen examples; `-m slow` runs many more."""

from __future__ import annotations

import ast
import json
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pikkugen.model import ScanResult
from pikkugen.scanner import scan
from pikkugen.scanner.parse import summarize
from scanner_helpers import deep_patterns

SEED = """\
from __future__ import annotations
import pikku_queue as pq
from pikku_queue import queue_processor as qp, add_queue_processor, RetryOptions, BatchOptions
from .models import Email, Sent
from typing import Literal
try:
    from .queue import register
except ImportError:
    register = None
TIMEOUT = 5 * 60 * 1000
RETRY = RetryOptions(attempts=3, backoff="exponential", delay=-1, max_delay=10)

@qp("email-queue", concurrency=5, retry_options=RETRY, timeout=TIMEOUT, events=["completed"])
async def process_email(ctx: pq.JobContext, data: Email) -> Sent | None:
    return None

@pq.queue_processor(name="b", batch=BatchOptions(size=2), dead_letter_queue="b")
def batch(data: list["Email"]) -> list[Literal["ok", 1, -2]]:
    class Inner:
        @qp("nested")
        def m(self, d: int) -> int: ...
    return []

add_queue_processor(name="img", func=batch, retry_options={"attempts": 0, **{}}, priority=f"{1}")
"""

TOKENS = [
    "@",
    "qp",
    "pq.queue_processor",
    "add_queue_processor",
    "(",
    ")",
    "'q'",
    '"x"',
    ",",
    "=",
    "\n",
    "    ",
    "def ",
    "async ",
    "class ",
    ":",
    "->",
    "import ",
    "from ",
    "pikku_queue",
    ".",
    " as ",
    "[",
    "]",
    "|",
    "RetryOptions",
    "{",
    "}",
    "-",
    "1",
    "0.5",
    "None",
    "lambda ",
    "*",
    "**",
    "f'{x}'",
    "try:",
    "except ImportError:",
    "if x:",
    "Literal",
    "list",
    "'''",
    "\\",
    "#",
    ";",
    "yield",
    "await ",
    "...",
    "name=",
    "func=",
    "batch=",
    "\t",
    "\r\n",
    "é",
]


def python_accepts(data: bytes) -> bool | None:
    """Whether CPython compiles `data` (None: it gave up, too deep)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(data, "<fuzz>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    except (RecursionError, MemoryError):
        return None
    return True


def check_summary(data: bytes) -> None:
    summary = summarize(data)
    json.dumps(summary)  # must be JSON-able (it is cached as JSON)
    problem = summary["problem"]
    assert problem is None or problem["code"] != "PK900", problem
    # the oracle: a file Python rejects is a diagnostic, never silently scanned as empty;
    # one Python compiles is only refused when libcst cannot parse it, it nests too deeply,
    # or it does not decode (compile() skips a comment's bytes; importing decodes them all)
    accepted = python_accepts(data)
    if accepted is False:
        assert problem is not None and problem["code"] in ("PK001", "PK002", "PK006"), problem
    elif accepted:
        assert problem is None or problem["code"] in ("PK002", "PK005", "PK006"), problem


def check_scan(sources: list[bytes]) -> ScanResult:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "app").mkdir()
        (root / "app" / "__init__.py").write_text("")
        (root / "app" / "models.py").write_text("class Email: ...\nclass Sent: ...\n")
        for index, source in enumerate(sources):
            (root / "app" / f"m{index}.py").write_bytes(source)
        result = scan([root], root=root, jobs=1)
    assert all(d.code != "PK900" for d in result.diagnostics), result.diagnostics
    json.dumps(result.model_dump(mode="json"))
    return result


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    text = SEED
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, len(text)))
        end = min(len(text), start + draw(st.integers(0, 40)))
        insert = draw(st.sampled_from(["", *TOKENS]))
        text = text[:start] + insert + text[end:]
    return text.encode("utf-8")


garbage = st.lists(st.sampled_from(TOKENS), max_size=80).map(
    lambda parts: ("# pikku_queue\n" + "".join(parts)).encode("utf-8")
)
raw = st.binary(max_size=300).map(lambda b: b"# pikku_queue\n" + b)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(mutated())
def test_mutated_sources_summarise(data: bytes) -> None:
    check_summary(data)


@FAST
@given(st.one_of(garbage, raw))
def test_garbage_summarises(data: bytes) -> None:
    check_summary(data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(mutated(), garbage), min_size=1, max_size=3))
def test_mutated_trees_scan(sources: list[bytes]) -> None:
    check_scan(sources)


def test_the_seed_itself_yields_only_diagnostics() -> None:
    result = check_scan([SEED.encode()])
    assert result.processors == ()
    assert [d.code for d in result.diagnostics] == ["PK203", "PK205", "PK101", "PK201", "PK201"]


#: Depths around every limit: CPython's 200 brackets and 100 indents, the scanner's budget
#: (guard.SAFE_DEPTH 100, MAX_DEPTH 300, 100 in string annotations), and far beyond.
DEPTHS = [2, 30, 60, 99, 101, 150, 199, 201, 299, 301, 500, 1000, 3000, 6000]
PATTERN_NAMES = sorted(deep_patterns(1))


@st.composite
def deep(draw: st.DrawFn) -> bytes:
    """A deep pattern, on its own or spliced into the seed, possibly mutated after."""
    pattern = deep_patterns(draw(st.sampled_from(DEPTHS)))[draw(st.sampled_from(PATTERN_NAMES))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(SEED)))
        cut = SEED.rfind("\n", 0, at) + 1  # at a line start, so it is often still valid
        pattern = SEED[:cut] + pattern.split("\n", 1)[1] + SEED[cut:]
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, len(pattern)))
        end = min(len(pattern), start + draw(st.integers(0, 20)))
        pattern = pattern[:start] + draw(st.sampled_from(["", *TOKENS])) + pattern[end:]
    return pattern.encode("utf-8")


DEEP_QUICK = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
DEEP_SLOW = settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))


@DEEP_QUICK
@given(deep())
def test_deep_sources_summarise(data: bytes) -> None:
    check_summary(data)


@DEEP_QUICK
@given(st.lists(deep(), min_size=1, max_size=3))
def test_deep_trees_scan(sources: list[bytes]) -> None:
    check_scan(sources)


@pytest.mark.slow
@DEEP_SLOW
@given(deep())
def test_deep_sources_summarise_many(data: bytes) -> None:
    check_summary(data)


@pytest.mark.slow
@DEEP_SLOW
@given(st.lists(deep(), min_size=1, max_size=4))
def test_deep_trees_scan_many(sources: list[bytes]) -> None:
    check_scan(sources)
