"""User strings reach generated code only as literals that mean exactly the same string and
that `ruff format` leaves alone; derived identifiers are valid, unique and stable."""

from __future__ import annotations

import ast
import keyword
import subprocess
import sys
from pathlib import Path

from emit_support import HOSTILE
from hypothesis import given
from hypothesis import strategies as st
from pikkugen.emit.base import header, py_literal, string_literal
from pikkugen.emit.names import assign_file_stems, assign_identifiers


@given(st.text())
def test_string_literal_round_trips(text: str) -> None:
    assert ast.literal_eval(string_literal(text)) == text


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_py_literal_round_trips(value: object) -> None:
    assert ast.literal_eval(py_literal(value, indent=2)) == value


def test_literals_are_stable_under_ruff_format(tmp_path: Path) -> None:
    values: list[object] = [*HOSTILE, {"k\n": [1, 2.5, None, True, {"x": "y"}], "": []}, ("a",)]
    body = "".join(f"VALUE_{i} = {py_literal(v)}\n" for i, v in enumerate(values))
    source = tmp_path / "literals.py"
    source.write_text(header("src\nimport os") + body, encoding="utf-8")
    assert "\nimport os" not in source.read_text(encoding="utf-8")  # the header escapes it
    ruff = [sys.executable, "-m", "ruff", "format", "--isolated", "--check", "--line-length=88"]
    proc = subprocess.run([*ruff, str(source)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_identifiers_are_valid_unique_and_not_keywords() -> None:
    names = [*HOSTILE, "email-queue", "email_queue", "Email.Queue", "a", "a-sync", "a_sync_2"]
    stems = assign_identifiers(names)
    produced = [f"enqueue_{s}" for s in stems.values()]
    produced += [f"enqueue_{s}_sync" for s in stems.values()]
    produced += [f"QUEUE_{s.upper()}" for s in stems.values()]
    assert len(set(produced)) == len(produced)
    for name in produced:
        assert name.isidentifier() and name.isascii() and not keyword.iskeyword(name)
    assert stems["email-queue"] != stems["email_queue"] != stems["Email.Queue"]


def test_identifiers_do_not_depend_on_input_order() -> None:
    names = ["b-x", "b_x", "B.X", "c", "a"]
    assert assign_identifiers(names) == assign_identifiers(reversed(names))
    assert assign_file_stems(names) == assign_file_stems(reversed(names))


def test_file_stems_stay_inside_the_folder_and_differ_case_insensitively() -> None:
    stems = assign_file_stems(["../etc/passwd", "a/b", "Email", "email", "..", "ok-name"])
    assert stems["ok-name"] == "ok-name"
    for stem in stems.values():
        assert "/" not in stem and "\\" not in stem and stem not in ("", ".", "..")
    lowered = [s.lower() for s in stems.values()]
    assert len(set(lowered)) == len(lowered)


@given(st.lists(st.text(max_size=12), max_size=25))
def test_any_names_give_distinct_valid_function_names(names: list[str]) -> None:
    stems = assign_identifiers(names)
    produced = [
        f(s)
        for s in stems.values()
        for f in (lambda s: f"enqueue_{s}", lambda s: f"enqueue_{s}_sync")
    ]
    assert len(set(produced)) == len(produced)
    assert all(p.isidentifier() and p.isascii() for p in produced)
    assert len({f"QUEUE_{s.upper()}" for s in stems.values()}) == len(stems)
