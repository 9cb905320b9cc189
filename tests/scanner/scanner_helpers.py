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
