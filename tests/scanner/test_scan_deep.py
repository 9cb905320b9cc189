"""Deeply nested and oversized code: a diagnostic for that file, never a crash, a hang or a
PK900, and the scan goes on for the other files.

libcst recurses natively: these inputs used to kill `pikkugen list` with SIGSEGV or keep it
busy for minutes. The subprocess tests run the real command line; their timeouts are
generous bounds for a run that used to hang, not timing assertions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scanner_helpers import HEAD, Tree, deep_patterns

CLI = [sys.executable, "-c", "from pikkugen.cli import main; main()"]
GOOD = """\
from pikku_queue import queue_processor


@queue_processor("good")
async def good(data: int) -> int:
    return data
"""


def write_project(root: Path, files: dict[str, str]) -> None:
    (root / "pyproject.toml").write_text('[tool.pikkugen]\npaths = ["src"]\n')
    package = root / "src" / "app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(GOOD)
    for name, text in files.items():
        (package / f"{name}.py").write_text(text)


def run_list(root: Path) -> tuple[int, dict[str, Any]]:
    """`pikkugen list --format json` in `root`: exit code and the JSON (processors and
    diagnostics)."""
    proc = subprocess.run(
        [*CLI, "list", "--format", "json", "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,  # these inputs used to segfault or run for minutes
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout)


def diagnosed_files(diagnostics: list[dict[str, Any]]) -> dict[str, str]:
    """file stem -> the code of its diagnostic; each one must be located (path:line:col)."""
    found: dict[str, str] = {}
    for d in diagnostics:
        assert d["path"] and d["line"] and d["column"], d
        found[Path(d["path"]).stem] = d["code"]
    return found


@pytest.mark.parametrize("depth", [pytest.param(1000, marks=pytest.mark.slow), 5000])
def test_every_deep_pattern_is_a_located_diagnostic_and_the_good_file_is_still_found(
    tmp_path: Path, depth: int
) -> None:
    patterns = deep_patterns(depth)
    patterns["parens_1400"] = HEAD + "X = " + "(" * 1400 + "1" + ")" * 1400 + "\n"
    patterns["plus_8000"] = HEAD + "X = " + "+".join(["1"] * 8000) + "\n"
    patterns["plus_20000"] = HEAD + "X = " + "+".join(["1"] * 20000) + "\n"
    flat = {"compare", "decorators", "tuple"}  # flat in both trees: valid, nothing to report
    write_project(tmp_path, patterns)
    rc, listed = run_list(tmp_path)
    assert rc == 2, listed
    assert [p["name"] for p in listed["processors"]] == ["good"], listed
    diagnosed = diagnosed_files(listed["diagnostics"])
    assert set(diagnosed) == set(patterns) - flat, diagnosed
    assert set(diagnosed.values()) <= {"PK001", "PK005", "PK006", "PK302"}, diagnosed


def test_a_thousand_parentheses_are_refused_as_python_refuses_them(tree: Tree) -> None:
    # CPython cannot compile this (200 nested brackets at most): it was accepted silently
    source = HEAD + "X = " + "(" * 1000 + "1" + ")" * 1000 + "\n"
    found = tree.write({"app/__init__.py": "", "app/deep.py": source}).scan()
    assert found.where("PK001") == ("app/deep.py", 2, 205)
    assert "too many nested parentheses" in found.only("PK001").message


def test_a_long_operator_chain_points_at_its_line_with_a_hint(tree: Tree) -> None:
    source = HEAD + "\n\nX = " + " + ".join(["1"] * 8000) + "\n"
    found = tree.write({"app/__init__.py": "", "app/deep.py": source}).scan()
    assert found.where("PK006") == ("app/deep.py", 4, 1)
    assert found.only("PK006").hint


def test_a_deep_string_annotation_costs_its_declaration_only(tree: Tree) -> None:
    """Was PK900 with no path, and no processor at all, not even from the good file."""
    deep = (
        "from pikku_queue import queue_processor\n\n\n"
        '@queue_processor("deep")\n'
        "async def f(x: '" + "list[" * 500 + "int" + "]" * 500 + "') -> None: ...\n"
    )
    found = tree.write({"app/__init__.py": "", "app/good.py": GOOD, "app/deep.py": deep}).scan()
    assert found.names == ["good"]
    assert found.where("PK302") == ("app/deep.py", 5, 16)
    assert "PK900" not in found.codes


@pytest.mark.parametrize("depth", [40, 60, 190])
def test_string_annotations_of_any_depth_give_a_type_or_a_diagnostic(
    tree: Tree, depth: int
) -> None:
    deep = (
        "from pikku_queue import queue_processor\n\n\n"
        '@queue_processor("deep")\n'
        "async def f(x: '" + "list[" * depth + "int" + "]" * depth + "') -> None: ...\n"
    )
    found = tree.write({"app/__init__.py": "", "app/deep.py": deep}).scan()
    if found.names:
        assert found.processor("deep").input.annotation.count("list[") == depth
    else:
        assert found.where("PK302") == ("app/deep.py", 5, 16)
    assert "PK900" not in found.codes


def test_an_integer_beyond_the_digit_limit_is_a_syntax_error_where_it_stands(tree: Tree) -> None:
    """`literal_eval` raises SyntaxError on 3.11's digit limit: that was a PK900."""
    source = (
        "from pikku_queue import queue_processor\n\n\n"
        '@queue_processor("z", concurrency=1' + "0" * 5000 + ")\n"
        "async def z(data: int) -> None: ...\n"
    )
    found = tree.write({"app/__init__.py": "", "app/good.py": GOOD, "app/z.py": source}).scan()
    assert found.names == ["good"]
    path, line, _ = found.where("PK001")
    assert (path, line) == ("app/z.py", 4)
    assert "4300 digits" in found.only("PK001").message


SCRIPT = """
import json, sys
from pathlib import Path
import pikkugen.scanner.guard as guard
guard.MAX_DEPTH = 10**9  # let libcst meet what the budget refuses: a real native crash
from pikkugen.scanner import scan
root = Path(sys.argv[1])
result = scan([root / "src"], root=root, jobs=int(sys.argv[2]))
print(json.dumps(result.model_dump(mode="json")))
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_parser_that_dies_costs_one_file_a_diagnostic(tmp_path: Path, jobs: int) -> None:
    """Beyond the budget's reach (switched off here), libcst overflows the C stack on 20,000
    `and`s: the child process that parsed it dies, and that becomes PK006 for that file.
    With jobs=2 and 14 files the parallel pool parses; with jobs=1 the file's own child."""
    files = {"ands": HEAD + "\n\nX = " + " and ".join(["x"] * 20000) + "\n"}
    files.update({f"other_{i}": GOOD.replace('"good"', f'"q{i}"') for i in range(13)})
    write_project(tmp_path, files)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), str(jobs)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["processors"]) == 14
    (crash,) = result["diagnostics"]
    assert (crash["code"], crash["path"], crash["line"]) == ("PK006", "src/app/ands.py", 4)
    assert "SIGSEGV" in crash["message"]


#: ~700 KB of ordinary code: seconds of libcst parsing per file.
BIG_BODY = "".join(
    textwrap.dedent(f"""
    def f{i}(values: list[int]) -> int:
        total = 0
        for value in values:
            if value % 3 == 0:
                total += value * {i}
        return total
    """)
    for i in range(4000)
)
HANG_SCRIPT = """
import json, sys
from pathlib import Path
import pikkugen.scanner.pool as pool
pool.CHILD_TIMEOUT = 1.0  # a file that takes longer (120 s normally) stands for a hang
from pikkugen.scanner import scan
root = Path(sys.argv[1])
result = scan([root / "src"], root=root, jobs=2, max_file_bytes=10_000_000)
print(json.dumps(result.model_dump(mode="json")))
"""


@pytest.mark.slow
def test_a_parse_that_makes_no_progress_costs_one_file_a_diagnostic(tmp_path: Path) -> None:
    files = {"big": HEAD + BIG_BODY * 4}  # ~2.8 MB: many seconds of libcst, on any machine
    files.update({f"other_{i}": GOOD.replace('"good"', f'"q{i}"') for i in range(13)})
    write_project(tmp_path, files)
    proc = subprocess.run(
        [sys.executable, "-c", HANG_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["processors"]) == 14  # the good files, the other child's and its own
    (slow,) = result["diagnostics"]
    assert (slow["code"], slow["path"]) == ("PK006", "src/app/big.py")
    assert "took longer than 1 s" in slow["message"]


KILL_SCRIPT = """
import sys
from pathlib import Path
from pikkugen.scanner import scan
root = Path(sys.argv[1])
scan([root / "src"], root=root, jobs=2)
"""


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:  # field 4 of stat: the parent's pid
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_for(condition: Callable[[], bool], limit: float) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc")
def test_killing_the_scanner_ends_its_pool_children(tmp_path: Path) -> None:
    """Children used to go on parsing (for minutes, on a hanging file) after a SIGKILL."""
    write_project(tmp_path, {f"big_{i}": HEAD + BIG_BODY for i in range(14)})
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path)])
    try:
        assert _wait_for(lambda: len(_children(proc.pid)) == 2, 120), "the pool never started"
        children = _children(proc.pid)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # each child has minutes of parsing left; they must go with their parent
    assert _wait_for(lambda: not any(_alive(c) for c in children), 30), children


def test_what_libcst_alone_refuses_is_pk005_at_its_statement(tree: Tree) -> None:
    """5,000 implicitly concatenated strings: CPython accepts them, libcst's parser gives up
    (it nests them pairwise); the diagnostic names the statement, not line 1."""
    source = HEAD + "\n\nX = " + " ".join(['"a"'] * 5000) + "\n"
    found = tree.write({"app/__init__.py": "", "app/strings.py": source}).scan()
    assert found.where("PK005") == ("app/strings.py", 4, 1)
