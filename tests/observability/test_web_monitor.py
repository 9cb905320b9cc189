"""`pikkugen monitor` in a real browser (Debian's chromium driven by Playwright, never a
browser download) against a SQLite file with known jobs, at 1400×900, saving a screenshot of
each view (`$PIKKU_TEST_ARTIFACTS`, else the test's folder): the overview with its charts, a
queue's state lists with pagination, a job whose id holds `/` (and one that is `..`), each
action behind its confirmation (retry, remove, promote, pause/resume, clean, replay one,
selected and all), the views refreshed after it and the message kept until dismissed; and a
DNS-rebinding page (chromium resolving evil.example to 127.0.0.1) refused its read and replay.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from browser import VIEWPORT, Monitor, artifacts, browser
from monitor_server import serving
from pikku_queue.adapters import connect
from pikku_queue.backend import Backend, WorkerOptions
from pikku_queue.errors import NonRetryableError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, JobState
from pikkugen.web_monitor.auth import is_loopback
from pikkugen.web_monitor.config import MonitorConfig

__all__ = ["artifacts", "browser"]  # the fixtures of `browser`

QUEUES = ["orders", "payments"]
DLQS = {"orders": None, "payments": "payments-dlq"}
#: Jobs of `orders` that fail for good (no dead-letter queue).
FAILING = {3, 20, 37}


def processors(card_works: bool) -> list[Processor]:
    async def ship(data: dict[str, int]) -> dict[str, int]:
        await asyncio.sleep(0.001 * (data["n"] % 5))
        if data["n"] in FAILING and not card_works:
            raise NonRetryableError(f"order {data['n']} cannot ship")
        return {"shipped": data["n"]}

    async def pay(data: dict[str, int]) -> str:
        if not card_works:
            raise NonRetryableError(f"card of order {data['n']} declined")
        return "paid"

    return [
        Processor.from_function("orders", ship),
        Processor.from_function(
            "payments", pay, ProcessorOptions(dead_letter_queue="payments-dlq")
        ),
    ]


def on_backend(url: str, step: Any) -> Any:
    """`await step(backend)` on a thread of its own (Playwright's sync API owns this one)."""

    async def run() -> Any:
        backend = connect(url)
        try:
            return await asyncio.wait_for(step(backend), 60)
        finally:
            await backend.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=90)


def run_burst(url: str, card_works: bool) -> None:
    options = WorkerOptions(processors=processors(card_works), burst=True)
    on_backend(url, lambda backend: backend.run_worker(options))


def known_jobs(path: Path) -> str:
    """120 orders (ids `order/N`; 3 fail for good), 4 payments dead-lettered, then 30 orders
    waiting (one with the id `..`) and one delayed by an hour."""
    url = f"sqlite:///{path}"

    async def first(backend: Backend) -> None:
        for n in range(120):
            await backend.enqueue(EnqueueRequest("orders", {"n": n}, job_id=f"order/{n}"))
        for n in range(4):
            await backend.enqueue(EnqueueRequest("payments", {"n": n}, job_id=f"pay/{n}"))

    async def then(backend: Backend) -> None:
        for n in range(29):
            await backend.enqueue(EnqueueRequest("orders", {"n": 1000 + n}))
        await backend.enqueue(EnqueueRequest("orders", {"n": 2000}, job_id=".."))
        await backend.enqueue(
            EnqueueRequest("orders", {"n": 3000}, job_id="later", delay_ms=3_600_000)
        )

    on_backend(url, first)
    run_burst(url, card_works=False)
    on_backend(url, then)
    return url


def config(url: str) -> MonitorConfig:
    return MonitorConfig(url=url, queues=QUEUES, dead_letter_queues=DLQS)


@pytest.mark.slow
def test_the_views_and_the_actions_on_sqlite(tmp_path: Path, artifacts: Path, browser: Any) -> None:
    url = known_jobs(tmp_path / "q.db")
    with serving(config(url)) as base:
        m = Monitor(browser.new_page(viewport=VIEWPORT), base, artifacts)

        # the overview: counts, one chart per metric with its unit, a tooltip
        m.open("view=overview")
        m.wait_text('tr[data-queue="orders"] td[data-count="completed"]', "117")
        assert m.count("orders", "failed") == "3" and m.count("orders", "waiting") == "30"
        assert m.count("orders", "delayed") == "1"
        assert m.count("payments", "dead_lettered") == "4"
        assert m.count("payments-dlq", "waiting") == "4"
        m.page.wait_for_selector("#overview-throughput canvas")
        titles = [m.text(f"#overview-{c} h3") for c in ("throughput", "latency", "failed")]
        assert titles[0].startswith("Throughput") and "per minute" in titles[0]
        assert "Latency" in titles[1] and titles[2].startswith("Failed")
        assert m.page.is_hidden("#overview-throughput .no-data")  # jobs finished just now
        box = m.page.locator("#overview-throughput .u-over").bounding_box()
        assert box is not None
        m.page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)
        m.page.wait_for_selector("#overview-throughput .chart-tip:not([hidden])")
        assert "orders:" in m.text("#overview-throughput .chart-tip")
        m.shoot("monitor-overview.png")

        # a queue's completed jobs, a page at a time, newest first
        m.open("view=queue&queue=orders&state=completed")
        m.wait_text("#jobs-range", "1–50 of 117")
        first_page = m.page.eval_on_selector_all(
            "#jobs a[data-job]", "as => as.map(a => a.textContent)"
        )
        assert first_page[0] == "order/119" and len(first_page) == 50
        m.page.click("#jobs-older")
        m.wait_text("#jobs-range", "51–100 of 117")
        m.page.click("#jobs-older")
        m.wait_text("#jobs-range", "101–117 of 117")
        assert m.page.is_disabled("#jobs-older")
        m.page.click("#jobs-newer")
        m.wait_text("#jobs-range", "51–100 of 117")
        # a job whose id holds a slash opens from the list, with its payload and result
        m.page.click('#jobs a[data-job="order/60"]')
        m.wait_text("#detail [data-detail]", "order/60")
        assert '"shipped": 60' in m.text("#detail")
        m.shoot("monitor-queue-completed.png")
        # a job whose id is `..`, looked up by id; then one that is not there (a JSON error)
        m.page.fill("#lookup-id", "..")
        m.page.press("#lookup-id", "Enter")
        m.wait_text("#detail [data-detail]", "..")
        assert '"n": 2000' in m.text("#detail")
        m.page.fill("#lookup-id", "order/999")
        m.page.press("#lookup-id", "Enter")
        m.page.wait_for_selector("#detail [data-detail-error]")
        assert "no job 'order/999'" in m.text("#detail")
        assert "order/60" not in m.text("#detail")  # never the previous job

        # retry a failed job: the detail follows it to waiting, the message stays
        m.open("view=queue&queue=orders&state=failed&job=order/20")
        m.wait_text("#detail [data-detail-state]", "failed")
        assert "order 20 cannot ship" in m.text("#detail") and "Traceback" in m.text("#detail")
        m.shoot("monitor-queue-failed.png")
        m.page.click('[data-action="retry"]')
        m.page.wait_for_selector("#confirm[open]")
        m.shoot("monitor-confirm.png")
        m.page.click("#confirm-ok")
        m.page.wait_for_selector("#banner:not([hidden])")
        assert m.text("#banner-text") == "Retried job order/20 of orders"
        m.wait_text("#detail [data-detail-state]", "waiting")
        m.wait_text('[data-state-tab="failed"] .count', "2")
        m.page.wait_for_timeout(2500)  # a poll later the message is still there
        assert m.page.is_visible("#banner")
        m.dismiss()

        # promote the delayed job
        m.open("view=queue&queue=orders&state=delayed&job=later")
        m.wait_text("#detail [data-detail-state]", "delayed")
        assert "Promoted job later" in m.act('[data-action="promote"]', "runs now")
        m.wait_text("#detail [data-detail-state]", "waiting")
        m.wait_text('[data-state-tab="delayed"] .count', "0")

        # remove a completed job: gone from the list and the counts
        m.open("view=queue&queue=orders&state=completed&job=order/119")
        m.wait_text("#detail [data-detail]", "order/119")
        assert "Removed job order/119" in m.act('[data-action="remove"]', "deleted for good")
        m.wait_text('[data-state-tab="completed"] .count', "116")
        m.page.wait_for_selector('#jobs a[data-job="order/118"]')
        m.page.wait_for_selector('#jobs a[data-job="order/119"]', state="detached")
        # the pane clears once the route drops the job: the refresh that follows the action
        # may still show its 404 for a moment
        m.wait_text("#detail", "Pick a job")

        # pause and resume the queue (a burst worker leaves a paused queue alone)
        m.open("view=queue&queue=orders&state=waiting")
        assert "Paused orders" in m.act("#queue-pause", "take no new ones")
        m.page.wait_for_selector("#queue-paused:not([hidden])")
        m.page.wait_for_selector('nav [data-nav="orders"] .paused')
        m.shoot("monitor-queue-paused.png")
        run_burst(url, card_works=True)
        m.wait_text('[data-state-tab="waiting"] .count', "32")
        assert "Resumed orders" in m.act("#queue-resume", "Resume orders")
        m.page.wait_for_selector("#queue-paused", state="hidden")
        run_burst(url, card_works=True)
        m.wait_text('[data-state-tab="waiting"] .count', "0")

        # clean: every completed, then every failed job of the queue
        m.open("view=queue&queue=orders&state=completed")
        assert "Cleaned 148 completed" in m.act("#queue-clean-completed", "every completed")
        m.wait_text('[data-state-tab="completed"] .count', "0")
        assert "Cleaned 2 failed" in m.act("#queue-clean-failed", "every failed")
        m.wait_text('[data-state-tab="failed"] .count', "0")

        # the dead-letter queue: replay one, then the selected, then all
        m.open("view=dlq&queue=payments-dlq")
        m.page.wait_for_selector("#dlq tr[data-record]")
        assert m.page.locator("#dlq tr[data-record]").count() == 4
        m.page.click("#dlq a[data-open-record]")
        m.wait_text("#record-detail", "card of order")
        m.shoot("monitor-dlq.png")
        assert "Replayed 1 record(s)" in m.act("#dlq button[data-replay]", "Replay record")
        m.page.wait_for_function(
            "() => document.querySelectorAll('#dlq tr[data-record]').length === 3"
        )
        rows = m.page.eval_on_selector_all(
            "#dlq input[data-select]", "xs => xs.map(x => x.dataset.select)"
        )
        m.page.check(f'#dlq input[data-select="{rows[0]}"]')
        m.page.check(f'#dlq input[data-select="{rows[1]}"]')
        m.wait_text("#dlq-replay-selected", "(2)")
        message = m.act("#dlq-replay-selected", "2 selected")
        assert "Replayed 2 record(s)" in message, (rows, message)
        m.page.wait_for_function(
            "() => document.querySelectorAll('#dlq tr[data-record]').length === 1"
        )
        assert "Replayed 1 record(s)" in m.act("#dlq-replay-all", "every record")
        m.wait_text("#dlq-note", "No dead letters.")
        run_burst(url, card_works=True)
        m.open("view=overview")
        m.wait_text('tr[data-queue="payments"] td[data-count="completed"]', "4")
        assert m.count("payments", "dead_lettered") == "0"
        # no CSP refusal and no failed request but the lookup of the missing job (a 404)
        assert [v for v in m.violations if "404 (Not Found)" not in v] == [], m.violations


@pytest.mark.slow
def test_a_rebinding_page_cannot_read_or_replay(tmp_path: Path, browser: Any) -> None:
    """evil.example resolves to 127.0.0.1 (as a rebinding attack makes it): its page gets 421
    for the monitor's page and API, and its replay (same origin to the browser) is refused."""
    url = known_jobs(tmp_path / "q.db")
    with serving(config(url)) as base:
        port = base.rstrip("/").rsplit(":", 1)[1]
        page = browser.new_page(viewport=VIEWPORT)
        evil = f"http://evil.example:{port}/"
        response = page.goto(evil)
        assert response is not None and response.status == 421
        assert "csrf-token" not in page.content()
        answers = page.evaluate(
            """async () => {
                const read = await fetch("api/dlq?queue=payments-dlq");
                const replay = await fetch("api/actions/replay", {
                    method: "POST", headers: {"Content-Type": "application/json"},
                    body: JSON.stringify({queue: "payments-dlq", ids: null})});
                return [read.status, replay.status, await read.text()];
            }"""
        )
        assert answers[:2] == [421, 421]
        assert "card of order" not in answers[2]

    def records(backend: Backend) -> Any:
        return backend.dead_letters("payments-dlq")

    assert len(on_backend(url, records)) == 4  # nothing was replayed
    info = on_backend(url, lambda b: b.get_job("payments", "pay/0"))
    assert info.state is JobState.DEAD_LETTERED


def test_only_the_usual_loopback_names_are_open() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("127.0.0.2") and not is_loopback("0.0.0.0")
