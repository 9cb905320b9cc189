"""One scan reports every problem of a declaration, and unknown names get a did-you-mean,
the seed's camelCase included."""

from __future__ import annotations

import pytest
from scanner_helpers import Tree, position_of

HEADER = "from pikku_queue import queue_processor\n\n\n"


def test_unknown_keyword_bad_attempts_and_missing_annotations_at_once(tree: Tree) -> None:
    source = (
        HEADER
        + '@queue_processor("x", concurency=1, retry_options={"attempts": 0})\n'
        + "async def f(data):\n    return None\n"
    )
    found = tree.write({"app/__init__.py": "", "app/jobs.py": source}).scan()
    got = [(d.code, d.line, d.column, d.hint) for d in found.result.diagnostics]
    assert got == [
        ("PK202", *position_of(source, "concurency="), "did you mean `concurrency`?"),
        ("PK203", *position_of(source, '"attempts"'), None),
        ("PK301", *position_of(source, "f(data)"), None),  # no return annotation
        ("PK301", *position_of(source, "data)"), None),  # no payload annotation
    ]
    assert found.names == []


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("deadLetterQueue", "dead_letter_queue"),
        ("retryOptions", "retry_options"),
        ("maxConcurrency", "max_concurrency"),
        ("maxStalledCount", "max_stalled_count"),
        ("concurency", "concurrency"),
        ("time_out", "timeout"),
    ],
)
def test_unknown_option_names_get_a_did_you_mean(tree: Tree, written: str, meant: str) -> None:
    source = HEADER + f'@queue_processor("x", {written}=1)\nasync def f(data: int) -> None: ...\n'
    found = tree.write({"app/__init__.py": "", "app/jobs.py": source}).scan()
    assert found.only("PK202").hint == f"did you mean `{meant}`?"


@pytest.mark.parametrize(
    ("option", "written", "meant"),
    [
        ("retry_options", "maxDelay", "max_delay"),
        ("retry_options", "attemps", "attempts"),
        ("batch", "sise", "size"),
    ],
)
def test_unknown_keys_inside_option_models_get_a_did_you_mean(
    tree: Tree, option: str, written: str, meant: str
) -> None:
    source = (
        HEADER
        + f'@queue_processor("x", {option}={{"{written}": 1}})\n'
        + "async def f(data: int) -> None: ...\n"
    )
    found = tree.write({"app/__init__.py": "", "app/jobs.py": source}).scan()
    (problem,) = [d for d in found.result.diagnostics if written in d.message]
    assert (problem.code, problem.message) == (
        "PK203",
        f"{option}.{written}: Extra inputs are not permitted",
    )
    assert problem.hint == f"did you mean `{meant}`?"


@pytest.mark.parametrize(
    ("written", "hint"),
    [
        ("maxDelay", "`max_delay` is a key of `retry_options`: retry_options={'max_delay': ...}"),
        ("attempts", "`attempts` is a key of `retry_options`: retry_options={'attempts': ...}"),
        ("cron", "`cron` is a key of `repeat`: repeat={'cron': ...}"),
    ],
)
def test_a_key_of_an_option_model_written_at_the_top_level_is_placed(
    tree: Tree, written: str, hint: str
) -> None:
    source = HEADER + f'@queue_processor("x", {written}=1)\nasync def f(data: int) -> None: ...\n'
    found = tree.write({"app/__init__.py": "", "app/jobs.py": source}).scan()
    assert found.only("PK202").hint == hint


def test_a_name_with_no_close_option_gets_no_guess(tree: Tree) -> None:
    source = HEADER + '@queue_processor("x", zebra=1)\nasync def f(data: int) -> None: ...\n'
    found = tree.write({"app/__init__.py": "", "app/jobs.py": source}).scan()
    assert found.only("PK202").hint is None
