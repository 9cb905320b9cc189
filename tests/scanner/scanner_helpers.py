"""Helpers for the scanner tests: write a small source tree, scan it, look things up."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from pikkugen.model import Diagnostic, ProcessorDecl, ScanResult
from pikkugen.scanner import ScanStats, scan


@dataclass
class Scanned:
    result: ScanResult
    stats: ScanStats = field(default_factory=ScanStats)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.result.processors]

    def processor(self, name: str) -> ProcessorDecl:
        for p in self.result.processors:
            if p.name == name:
                return p
        raise AssertionError(f"no processor {name!r}; found {self.names}; {self.codes}")

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.result.diagnostics]

    def only(self, code: str) -> Diagnostic:
        found = [d for d in self.result.diagnostics if d.code == code]
        assert len(found) == 1, (code, self.result.diagnostics)
        return found[0]

    def where(self, code: str) -> tuple[str | None, int | None, int | None]:
        d = self.only(code)
        return d.path, d.line, d.column


class Tree:
    """A throwaway project: `write({"src/shop/a.py": "..."})` then `scan()`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, files: dict[str, str | bytes]) -> Tree:
        for rel, text in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(text, bytes):
                path.write_bytes(text)
            else:
                path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return self

    def scan(self, *paths: str, **kwargs: object) -> Scanned:
        stats = ScanStats()
        targets = [self.root / p for p in paths] or [self.root]
        result = scan(targets, root=self.root, stats=stats, **kwargs)  # type: ignore[arg-type]
        return Scanned(result, stats)


def position_of(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the nth occurrence of `needle` in dedented `text`."""
    text = textwrap.dedent(text).lstrip("\n")
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


HEAD = "import pikku_queue\n"


def deep_patterns(n: int) -> dict[str, str]:
    """The 22 nesting shapes of the fault campaign (and a few more), `n` levels deep."""
    decorated = "from pikku_queue import queue_processor\n@queue_processor('q')\n"
    return {
        "parens": HEAD + "X = " + "(" * n + "1" + ")" * n + "\n",
        "brackets": HEAD + "X = " + "[" * n + "]" * n + "\n",
        "braces": HEAD + "X = " + "{" * n + "}" * n + "\n",
        "dicts": HEAD + "X = " + "{1: " * n + "1" + "}" * n + "\n",
        "calls": HEAD + "X = " + "f(" * n + ")" * n + "\n",
        "subscripts": HEAD + "X = a" + "[0]" * n + "\n",
        "call_chain": HEAD + "X = f" + "()" * n + "\n",
        "attributes": HEAD + "X = a" + ".b" * n + "\n",
        "plus": HEAD + "X = " + "+".join(["1"] * n) + "\n",
        "power": HEAD + "X = " + "**".join(["2"] * n) + "\n",
        "minus": HEAD + "X = " + "-" * n + "1\n",
        "not": HEAD + "X = " + "not " * n + "x\n",
        "and": HEAD + "X = " + " and ".join(["x"] * n) + "\n",
        "compare": HEAD + "X = " + " < ".join(["x"] * n) + "\n",
        "if_else": HEAD + "X = " + "1 if x else " * n + "1\n",
        "lambdas": HEAD + "X = " + "lambda: " * n + "1\n",
        "strings": HEAD + "X = " + " ".join(['"a"'] * n) + "\n",
        "decorators": HEAD + "@d\n" * n + "def f(): pass\n",
        "list_annotation": HEAD + "def f(x: " + "list[" * n + "int" + "]" * n + ") -> None: ...\n",
        "string_annotation": decorated
        + "async def f(x: '"
        + "list[" * n
        + "int"
        + "]" * n
        + "') -> None: ...\n",
        # CPython allows 100 levels; more would only make the file quadratically large
        "indent": HEAD
        + "".join(" " * i + "if x:\n" for i in range(min(n, 150)))
        + " " * 150
        + "pass\n",
        "elif": HEAD + "if x:\n    pass\n" + "elif x:\n    pass\n" * n,
        "walrus": HEAD + "X = " + "(y := " * n + "1" + ")" * n + "\n",
        "tuple": HEAD + "X = " + "1," * n + "\n",
    }
