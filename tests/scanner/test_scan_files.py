"""File-level behaviour: discovery, module names, syntax errors, big and undecodable files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pikkugen.scanner import import_root_for, module_name_for
from scanner_helpers import Tree

GOOD = "from pikku_queue import queue_processor\n@queue_processor('ok')\ndef ok(data: int) -> int: ...\n"


def test_module_names_follow_init_files(tmp_path: Path) -> None:
    for rel in (
        "src/shop/__init__.py",
        "src/shop/sub/__init__.py",
        "src/shop/sub/leaf.py",
        "tool.py",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert module_name_for(tmp_path / "src/shop/sub/leaf.py") == "shop.sub.leaf"
    assert module_name_for(tmp_path / "src/shop/__init__.py") == "shop"
    assert module_name_for(tmp_path / "tool.py") == "tool"
    assert import_root_for(tmp_path / "src/shop/sub/leaf.py") == tmp_path / "src"
    assert import_root_for(tmp_path / "tool.py") == tmp_path


SYNTAX_ERRORS = [
    "def f(:\n    pass\n",
    "x = (1,\ny = 2\n",
    "if True:\n  a = 1\n    b = 2\n",
    "print('unterminated\n",
    "class A:\npass\n",
    "x = 1 +\n",
    "from pikku_queue import queue_processor\n\n\n@queue_processor('x')\ndef f(data: int) -> int\n    return 1\n",
]


@pytest.mark.parametrize("source", SYNTAX_ERRORS)
def test_syntax_error_has_cpythons_position_and_others_still_scan(tree: Tree, source: str) -> None:
    broken = "# pikku_queue\n" + source
    found = tree.write(
        {"a_ok.py": GOOD, "broken.py": broken, "z_ok.py": GOOD.replace("ok", "ok2")}
    ).scan()
    with pytest.raises(SyntaxError) as real:
        ast.parse(broken)
    d = found.only("PK001")
    assert (d.path, d.line, d.column) == ("broken.py", real.value.lineno, real.value.offset)
    assert found.names == ["ok", "ok2"]


def test_big_file_is_skipped_with_a_warning(tree: Tree) -> None:
    big = GOOD.replace("ok", "big") + "#" * 5000 + "\n"
    found = tree.write({"big.py": big, "small.py": GOOD}).scan(max_file_bytes=4096)
    assert found.names == ["ok"]
    d = found.only("PK003")
    assert (d.level, d.path, d.line) == ("warning", "big.py", None)
    assert "max_file_bytes (4096)" in d.message


def test_undecodable_bytes_are_a_diagnostic(tree: Tree) -> None:
    found = tree.write(
        {
            "latin.py": b"# pikku_queue\nname = 'caf\xe9'\n",
            "cookie.py": b"# -*- coding: no-such-codec -*-\n# pikku_queue\n",
            "ok.py": GOOD,
        }
    ).scan()
    problems = [(d.path, d.code, d.line, d.column) for d in found.result.diagnostics]
    assert problems == [("cookie.py", "PK002", 1, 1), ("latin.py", "PK002", 2, 12)]
    assert found.names == ["ok"]


def test_null_bytes_and_bom(tree: Tree) -> None:
    found = tree.write(
        {
            "nul.py": b"# pikku_queue\nx = 1\x00\n",
            "bom.py": b"\xef\xbb\xbf" + GOOD.encode(),
        }
    ).scan()
    assert found.names == ["ok"]
    assert found.where("PK001") == ("nul.py", 2, 6)


def test_excludes_hidden_folders_and_missing_paths(tree: Tree) -> None:
    tree.write(
        {
            "app/a.py": GOOD,
            "app/migrations/m.py": GOOD.replace("ok", "mig"),
            "app/gen/out.py": GOOD.replace("ok", "gen"),
            "app/.venv/lib.py": GOOD.replace("ok", "venv"),
            "app/__pycache__/x.py": GOOD.replace("ok", "cache"),
            "app/legacy_test.py": GOOD.replace("ok", "legacy"),
        }
    )
    found = tree.scan("app", "nowhere", exclude=["migrations", "app/gen/*", "*_test.py"])
    assert found.names == ["ok"]
    assert found.where("PK004") == ("nowhere", None, None)


def test_single_files_and_duplicate_module_names(tree: Tree) -> None:
    tree.write({"one/tasks.py": GOOD, "two/tasks.py": GOOD.replace("ok", "other")})
    found = tree.scan("one/tasks.py", "two")
    assert found.names == ["ok"]
    d = found.only("PK007")
    assert (d.level, d.path) == ("warning", "two/tasks.py")


def test_paths_are_relative_to_root_and_posix(tree: Tree) -> None:
    tree.write({"deep/er/pkg/__init__.py": "", "deep/er/pkg/t.py": GOOD})
    found = tree.scan("deep")
    assert found.processor("ok").location.path == "deep/er/pkg/t.py"
    assert found.processor("ok").function == "pkg.t.ok"


def test_crlf_tabs_and_conditional_blocks_keep_positions(tree: Tree) -> None:
    source = (
        "# header comment\r\n"
        '"""Docstring."""\r\n'
        "from pikku_queue import queue_processor\r\n"
        "if True:\r\n"
        "\t@queue_processor('in-if', priority=0)\r\n"
        "\tdef f(data: int) -> int:\r\n"
        "\t\treturn data\r\n"
        "\r\n"
        "X = '''multi\r\nline'''\r\n"
        "@queue_processor('after', timeout=-1)\r\n"
        "def g(data: int) -> int: ...\r\n"
    )
    found = tree.write({"crlf.py": source.encode()}).scan()
    assert [(d.line, d.column, d.message.split(":")[0]) for d in found.result.diagnostics] == [
        (5, 28, "priority"),  # a tab is one column, as in CPython
        (11, 27, "timeout"),
    ]


def test_statement_first_lines_from_cpython_match_libcst_codegen() -> None:
    import ast

    import libcst
    from pikkugen.scanner.positions import first_lines, first_lines_from_ast

    source = (
        "#!/usr/bin/env python\n# header\n\n'''doc\nstring'''\nimport a; import b\n\n"
        "# leading comment\n@dec(\n    1)\n\n@other\nclass K:\n    x = 1\n    # trailing body comment\n"
        "def f(\n    a,\n):\n    pass\n\n\nif x:\n    y = (\n        1)\nelse:\n    pass\n"
        "async def g(): ...\nz = '''\n'''; w = 2\n"
    )
    module = libcst.parse_module(source)
    expected = first_lines(module, len(module.body))
    assert first_lines_from_ast(module, ast.parse(source), len(module.body)) == expected
    assert expected[:3] == [4, 6, 7]  # the module header (lines 1-3) precedes the first


def test_python_syntax_warnings_are_neither_errors_nor_printed(
    tree: Tree, capfd: pytest.CaptureFixture[str]
) -> None:
    # valid Python that makes CPython warn (pytest runs with warnings as errors)
    source = GOOD + "path = '\\d'\nx = 1if True else 2\n"
    found = tree.write({"warns.py": source}).scan()
    assert found.names == ["ok"]
    assert found.result.diagnostics == ()
    assert capfd.readouterr().err == ""


def test_a_new_init_file_is_seen_by_the_next_scan_in_the_same_process(tree: Tree) -> None:
    tree.write({"src/shop/tasks.py": GOOD})
    assert tree.scan("src").processor("ok").function == "tasks.ok"
    tree.write({"src/shop/__init__.py": ""})
    assert tree.scan("src").processor("ok").function == "shop.tasks.ok"
