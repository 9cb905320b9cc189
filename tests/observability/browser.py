"""Chromium (Debian's, through Playwright; never a browser download) for the web monitor's
browser tests, and the steps they share: open a view, act and confirm, take a screenshot."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
VIEWPORT = {"width": 1400, "height": 900}

__all__ = ["CHROMIUM", "VIEWPORT", "Monitor", "artifacts", "browser"]


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: `$PIKKU_TEST_ARTIFACTS`, else the test's own folder."""
    folder = Path(os.environ.get("PIKKU_TEST_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it)")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            # a DNS-rebinding page: evil.example resolves to this machine's loopback
            args=["--no-sandbox", "--host-resolver-rules=MAP evil.example 127.0.0.1"],
        )
        try:
            yield launched
        finally:
            launched.close()


class Monitor:
    """The page, with the steps every test takes: open a view, act and confirm, shoot."""

    def __init__(self, page: Any, base: str, artifacts: Path) -> None:
        self.page = page
        self.base = base
        self.artifacts = artifacts
        self.violations: list[str] = []
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.violations.append(message.text)

    def open(self, view: str) -> None:
        self.page.goto(self.base + "#" + view)
        self.page.wait_for_selector("body[data-ready]")

    def text(self, selector: str) -> str:
        return str(self.page.text_content(selector) or "")

    def wait_text(self, selector: str, expected: str) -> None:
        self.page.wait_for_function(
            "([s, e]) => (document.querySelector(s)?.textContent || '').includes(e)",
            arg=[selector, expected],
        )

    def count(self, queue: str, state: str) -> str:
        return self.text(f'tr[data-queue="{queue}"] td[data-count="{state}"]')

    def act(self, selector: str, expect_question: str) -> str:
        """Click an action, check its confirmation, confirm; the message it leaves. (The
        previous action's message stays until dismissed: it is dismissed first.)"""
        if self.page.is_visible("#banner"):
            self.dismiss()
        self.page.click(selector)
        self.page.wait_for_selector("#confirm[open]")
        assert expect_question in self.text("#confirm-text")
        self.page.click("#confirm-ok")
        self.page.wait_for_selector("#banner:not([hidden])")
        return self.text("#banner-text")

    def dismiss(self) -> None:
        self.page.click("#banner-close")
        self.page.wait_for_selector("#banner[hidden]", state="attached")

    def shoot(self, name: str) -> Path:
        path = self.artifacts / name
        self.page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000
        return path
