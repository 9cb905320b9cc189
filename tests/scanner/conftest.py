"""Fixtures for the scanner tests (helpers live in `scanner_helpers`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from scanner_helpers import Scanned, Tree


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


@pytest.fixture
def package(tree: Tree) -> Callable[[dict[str, str]], Scanned]:
    """Write modules into a `shop` package (with `__init__.py`) under `src/`, and scan."""

    def make(modules: dict[str, str]) -> Scanned:
        files: dict[str, str | bytes] = {"src/shop/__init__.py": ""}
        files.update({f"src/shop/{name}": text for name, text in modules.items()})
        return tree.write(files).scan("src")

    return make
