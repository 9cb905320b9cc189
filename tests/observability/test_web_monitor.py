"""`pikkugen monitor` in a real browser (Debian's chromium driven by Playwright) against a
SQLite file with known jobs: the counts and a chart show, a dead-lettered job opens, replaying
it (behind a confirmation) sends it back and a worker completes it. Plus the guards: a token
on a non-loopback bind (401 without it), the CSRF token on a replay (403 without it)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from monitor_server import serving
from pikku_queue.adapters import connect
from pikku_queue.backend import WorkerOptions
from pikku_queue.errors import NonRetryableError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pikkugen.web_monitor.auth import is_loopback
from pikkugen.web_monitor.config import MonitorConfig

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
QUEUES = ["web-ok", "web-pay"]
DLQS = {"web-ok": None, "web-pay": "web-dlq"}


def processors(card_works: bool) -> list[Processor]:
    async def ok(data: dict[str, int]) -> int:
        return data["n"]

    async def pay(data: dict[str, int]) -> str:
        if not card_works:
            raise NonRetryableError(f"card of order {data['n']} declined")
        return "paid"

    return [
        Processor.from_function("web-ok", ok),
        Processor.from_function("web-pay", pay, ProcessorOptions(dead_letter_queue="web-dlq")),
    ]


def run_burst(url: str, card_works: bool) -> None:
    """A burst worker on its own thread (Playwright's sync API owns the test's thread)."""

    async def run() -> None:
        backend = connect(url)
        try:
            await backend.run_worker(WorkerOptions(processors=processors(card_works), burst=True))
        finally:
            await backend.close()

    thread = threading.Thread(target=asyncio.run, args=(run(),))
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()


def known_jobs(path: Path) -> str:
    url = f"sqlite:///{path}"

    async def enqueue() -> None:
        backend = connect(url)
        for n in range(3):
            await backend.enqueue(EnqueueRequest("web-ok", {"n": n}))
        await backend.enqueue(EnqueueRequest("web-pay", {"n": 7}))
        await backend.close()

    asyncio.run(enqueue())
    run_burst(url, card_works=False)  # 3 completed, 1 dead-lettered
    return url


def config(url: str, token: str | None = None) -> MonitorConfig:
    return MonitorConfig(url=url, queues=QUEUES, dead_letter_queues=DLQS, token=token)


@pytest.mark.slow
def test_the_monitor_in_a_browser(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it)")
    url = known_jobs(tmp_path / "q.db")
    artifacts = Path(os.environ.get("PIKKU_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    with serving(config(url)) as base, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(base)
            ok = 'tr[data-queue="web-ok"] td[data-count="completed"]'
            page.wait_for_function(f"document.querySelector('{ok}')?.textContent === '3'")
            dead = 'tr[data-queue="web-pay"] td[data-count="dead_lettered"]'
            assert page.text_content(dead) == "1"
            assert page.text_content('tr[data-queue="web-dlq"] td[data-count="waiting"]') == "1"
            page.wait_for_selector("#chart-web-ok svg polyline")
            assert page.locator("#chart-web-pay svg polyline").count() == 4

            page.click('a[data-jobs="web-ok"]')
            page.wait_for_selector('#jobs td[data-state="completed"]')
            assert page.locator('#jobs td[data-state="completed"]').count() == 3

            page.click('a[data-dlq="web-dlq"]')
            page.click("a[data-open-record]")
            page.wait_for_selector("#detail-section:not([hidden])")
            detail = page.text_content("#detail") or ""
            assert "NonRetryableError: card of order 7 declined" in detail
            assert "Traceback" in detail

            dialogs: list[str] = []

            def accept(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.accept()

            page.on("dialog", accept)
            page.click("button[data-replay]")
            page.wait_for_function("document.querySelectorAll('#dlq tbody tr').length === 0")
            assert dialogs and dialogs[0].startswith("Replay record")

            run_burst(url, card_works=True)  # a worker picks the replayed job up
            done = 'tr[data-queue="web-pay"] td[data-count="completed"]'
            page.wait_for_function(f"document.querySelector('{done}')?.textContent === '1'")
            page.click('a[data-jobs="web-pay"]')
            page.wait_for_selector('#jobs td[data-state="completed"]')
            page.screenshot(path=str(artifacts / "monitor.png"), full_page=True)
        finally:
            browser.close()
    assert (artifacts / "monitor.png").stat().st_size > 10_000


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _post(url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", **headers},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request) as r:
            return int(r.status), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_only_the_usual_loopback_names_are_open() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("127.0.0.2") and not is_loopback("0.0.0.0")


def test_a_non_loopback_bind_needs_the_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    # 127.0.0.2 is on this machine, but not a name the monitor leaves open: a token is needed.
    with serving(config(url, token="s3cret"), host="127.0.0.2") as base:
        assert _get(base + "api/stats") == 401
        assert _get(base) == 401
        assert _get(base + "api/stats", {"Authorization": "Bearer wrong"}) == 401
        assert _get(base + "api/stats", {"Authorization": "Bearer s3cret"}) == 200
        assert _get(base + "?token=s3cret") == 200


def test_a_replay_without_the_csrf_token_is_refused(tmp_path: Path) -> None:
    url = known_jobs(tmp_path / "q.db")
    settings = config(url)
    with serving(settings) as base:
        replay = base + "api/dlq/web-dlq/replay"
        assert _post(replay, {"ids": None}, {})[0] == 403
        assert _post(replay, {"ids": None}, {"X-CSRF-Token": "guess"})[0] == 403
        other_site = {"X-CSRF-Token": settings.csrf, "Origin": "http://evil.example"}
        assert _post(replay, {"ids": None}, other_site)[0] == 403
        with urllib.request.urlopen(base + "api/dlq/web-dlq") as r:
            assert len(json.loads(r.read())["records"]) == 1  # nothing was replayed
        status, body = _post(replay, {"ids": None}, {"X-CSRF-Token": settings.csrf})
        assert (status, body) == (200, {"replayed": 1})
