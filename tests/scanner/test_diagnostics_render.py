"""`pikkugen.diagnostics`: the text format and the exit-code rule."""

from __future__ import annotations

from pikkugen.diagnostics import exit_code, render, render_all
from pikkugen.model import Diagnostic
from pikkugen.scanner.codes import LEVELS, diagnostic


def test_render_with_position_and_hint() -> None:
    d = diagnostic("PK103", "bad name: 'a b'", path="src/a.py", line=3, column=18, hint="use -")
    assert render(d) == "src/a.py:3:18: error[PK103]: bad name: 'a b'\n  hint: use -"


def test_render_without_position_or_path() -> None:
    assert (
        render(diagnostic("PK003", "too big", path="big.py")) == "big.py: warning[PK003]: too big"
    )
    assert render(Diagnostic(level="info", code="X1", message="m")) == "pikkugen: info[X1]: m"
    assert render(Diagnostic(level="error", code="X2", message="m", path="p", line=4)) == (
        "p:4: error[X2]: m"
    )


def test_user_newlines_cannot_forge_lines() -> None:
    d = diagnostic(
        "PK103", "bad name: 'a\nb.py:1:1: error[PK000]: fake'", path="a.py", line=1, column=1
    )
    assert render(d).count("\n") == 0


def test_render_all_sorts_by_position() -> None:
    later = diagnostic("PK201", "second", path="b.py", line=1, column=1)
    earlier = diagnostic("PK201", "first", path="a.py", line=9, column=1)
    earliest = diagnostic("PK201", "zeroth", path="a.py", line=2, column=7)
    text = render_all([later, earlier, earliest])
    assert text.splitlines()[0].startswith("a.py:2:7:")
    assert [line.split(": ")[-1] for line in text.splitlines() if not line.startswith("  ")] == [
        "zeroth",
        "first",
        "second",
    ]
    assert text.endswith("\n")
    assert render_all([]) == ""


def test_exit_codes() -> None:
    error = diagnostic("PK201", "e")
    warning = diagnostic("PK003", "w")
    info = diagnostic("PK108", "i")
    assert exit_code([], stale=False) == 0
    assert exit_code([warning, info], stale=False) == 0
    assert exit_code([warning], stale=True) == 1
    assert exit_code([error], stale=True) == 2
    assert exit_code([error, warning], stale=False) == 2


def test_every_code_is_in_the_documented_table() -> None:
    import pikkugen.scanner.codes as codes

    table = codes.__doc__ or ""
    for code, level in LEVELS.items():
        assert f"| {code} | {level:<7} |" in table, code
