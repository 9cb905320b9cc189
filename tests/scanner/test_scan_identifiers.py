"""Identifiers are read as Python reads them: in their NFKC form (PEP 3131). `async def ｗork`
(full-width) binds `work`, so the IR names `work`, the name the worker can import; `work` and
`ｗork` in one module are one name, and the earlier processor, which the registry could never
import, is PK110. The same holds for a plain second `def` of the same name."""

from __future__ import annotations

import importlib
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scanner_helpers import Tree, position_of

HEADER = "from pikku_queue import queue_processor\n"


def _fullwidth(text: str) -> str:
    """`work` → `ｗｏｒｋ`: the full-width forms NFKC maps back to ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_a_full_width_function_is_recorded_by_the_name_python_binds(
    tree: Tree, tmp_path: Path
) -> None:
    body = (
        "from pydantic import BaseModel\n"
        "class Email(BaseModel):\n    to: str\n"
        f"@queue_processor('mail', {_fullwidth('concurrency')}=3)\n"
        f"async def {_fullwidth('send')}(data: {_fullwidth('Email')}) -> None:\n    return None\n"
    )
    found = tree.write({"nfkcapp/__init__.py": "", "nfkcapp/jobs.py": HEADER + body}).scan()
    assert found.codes == []
    decl = found.processor("mail")
    assert decl.function == "nfkcapp.jobs.send"
    assert decl.input.annotation == "nfkcapp.jobs.Email"
    assert decl.options.concurrency == 3
    # the worker's view: the registry's import path resolves to the declared function
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("nfkcapp.jobs")
        assert module.send.__name__ == "send"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("nfkcapp")]:
            del sys.modules[name]


def test_a_full_width_import_of_the_runtime_is_followed(tree: Tree) -> None:
    # No byte of the file spells `pikku_queue`: the pre-filter reads the NFKC form too.
    body = (
        f"import {_fullwidth('pikku_queue')} as pq\n"
        f"from {_fullwidth('pikku_queue')} import {_fullwidth('queue_processor')} as qp\n"
        "@pq.queue_processor('one')\ndef one(data: int) -> int: ...\n"
        "@qp('two')\ndef two(data: int) -> int: ...\n"
    )
    found = tree.write({"app/__init__.py": "", "app/jobs.py": body}).scan()
    assert found.names == ["one", "two"]


def test_two_spellings_of_one_name_are_pk110_at_the_shadowed_processor(tree: Tree) -> None:
    body = (
        "@queue_processor('a')\nasync def work(data: int) -> int:\n    return data\n"
        f"@queue_processor('b')\nasync def {_fullwidth('work')}(data: int) -> int:\n"
        "    return -data\n"
    )
    source = HEADER + body
    found = tree.write({"app/__init__.py": "", "app/tasks.py": source}).scan()
    assert [(p.name, p.function) for p in found.result.processors] == [("b", "app.tasks.work")]
    d = found.only("PK110")
    assert (d.level, d.path) == ("error", "app/tasks.py")
    assert (d.line, d.column) == position_of(source, "work(")
    assert f"`work` and `{_fullwidth('work')}` (line 6) are one name to Python, `work`" in (
        d.message
    )
    assert d.hint == "give each processor function its own name"


def test_a_plain_redefinition_is_pk110_too(tree: Tree) -> None:
    body = (
        "@queue_processor('a')\ndef work(data: int) -> int: ...\ndef work(data: int) -> int: ...\n"
    )
    found = tree.write({"app/__init__.py": "", "app/tasks.py": HEADER + body}).scan()
    assert found.names == []
    assert "`work` is defined again at line 4" in found.only("PK110").message


def test_a_module_file_that_is_not_in_nfkc_form_is_not_importable(tree: Tree) -> None:
    name = _fullwidth("j") + "obs"
    found = tree.write(
        {
            "app/__init__.py": "",
            f"app/{name}.py": HEADER + "@queue_processor('q')\ndef q(data: int) -> int: ...\n",
        }
    ).scan()
    assert found.names == []
    d = found.only("PK109")
    assert d.hint is not None and f"`import app.{name}` looks for `app.jobs`" in d.hint


ASCII_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda n: (
        n not in {"if", "in", "is", "or", "as", "def", "for", "and", "not", "del", "try"}
        and n.isidentifier()
        and not __import__("keyword").iskeyword(n)
    )
)
#: Letters with a compatibility form NFKC folds to them: full-width, mathematical bold,
#: circled... (only those Python accepts in identifiers survive `isidentifier`).
VARIANTS = [lambda c: chr(ord(c) + 0xFEE0), lambda c: chr(0x1D41A + ord(c) - ord("a"))]


@settings(max_examples=40, deadline=None)
@given(name=ASCII_NAMES, picks=st.lists(st.integers(0, len(VARIANTS)), min_size=12, max_size=12))
def test_the_recorded_name_is_the_one_cpython_binds(
    tmp_path_factory: pytest.TempPathFactory, name: str, picks: list[int]
) -> None:
    spelled = "".join(
        VARIANTS[pick - 1](c) if pick and c.isalpha() else c
        for c, pick in zip(name, picks, strict=False)
    )
    assert unicodedata.normalize("NFKC", spelled) == name
    source = HEADER + f"@queue_processor('q')\ndef {spelled}(data: int) -> int:\n    return data\n"
    namespace: dict[str, object] = {}
    exec(compile(source, "<nfkc>", "exec"), namespace)  # CPython's own answer
    tree = Tree(tmp_path_factory.mktemp("nfkc"))
    found = tree.write({"app/__init__.py": "", "app/tasks.py": source}).scan()
    [decl] = found.result.processors
    assert decl.function == f"app.tasks.{name}"
    assert name in namespace
