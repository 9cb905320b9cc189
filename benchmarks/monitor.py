"""The web monitor on a SQLite file of 1,000,000 jobs: how long the page and each API call take.

    .venv/bin/python benchmarks/monitor.py                 # the full million
    .venv/bin/python benchmarks/monitor.py --jobs 200000

The file holds one busy queue as a month of work leaves it with retention off: most jobs
completed (finished over the last day, `--finished-over-s`), a backlog waiting, some delayed, failed and
dead-lettered, and the dead-letter queue's records. The rows are written with plain SQL
(`executemany`) into the backend's own schema, so building the file takes seconds, not a
worker's hours. The monitor is then served by uvicorn on a loopback port, as `pikkugen monitor`
serves it, and every request the page makes is timed `--rounds` times over real HTTP: the
page, `/api/stats`, a chart's series, the first page of each state, a deep page (through 20
cursors), a job by id, the dead-letter page, and a retry. The baseline, measured in the same
run, is the same requests against a file of `--baseline-jobs` (1,000) jobs. Each figure is a
p50 and a p95 in ms; the row count is read back from the file (`SELECT count(*)`). The last
line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "observability"))

from monitor_server import serving
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikkugen.web_monitor.config import MonitorConfig

QUEUE = "bench"
DLQ = "bench-dlq"
#: Shares of the jobs, by state (the rest completed).
SHARES = {"waiting": 0.25, "delayed": 0.01, "failed": 0.03, "dead_lettered": 0.01}
ERROR = json.dumps({"type": "RuntimeError", "message": "boom", "traceback": "Traceback ...\n"})


def build(path: Path, jobs: int, span_s: int = 86_400) -> int:
    """A file of `jobs` rows in the backend's schema, the finished ones finished evenly over
    the last `span_s` seconds; returns the row count read back."""
    span = span_s * 1000

    async def schema() -> None:
        await SqliteBackend(path).close()

    asyncio.run(schema())
    now = int(time.time() * 1000)
    counts = {state: int(jobs * share) for state, share in SHARES.items()}
    dead = counts["dead_lettered"]
    counts["completed"] = jobs - sum(counts.values()) - dead  # the DLQ's records are rows too
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    seq = 0
    sql = (
        "INSERT INTO jobs (queue, id, state, run_at, payload, attempts, result, error,"
        " enqueued_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for state in ("completed", "failed", "dead_lettered", "delayed", "waiting"):
        rows = []
        for _ in range(counts[state]):
            seq += 1
            finished = now - span + (seq * span) // jobs if state in (
                "completed", "failed", "dead_lettered",
            ) else None  # fmt: skip
            run_at = now + 3_600_000 if state == "delayed" else now - 1000
            rows.append(
                (
                    QUEUE, f"order/{seq}", state, run_at, json.dumps({"n": seq}),
                    1, '"ok"' if state == "completed" else None,
                    ERROR if state in ("failed", "dead_lettered") else None,
                    (finished or now) - 250, finished,
                )
            )  # fmt: skip
            if len(rows) == 50_000:
                conn.executemany(sql, rows)
                rows = []
        conn.executemany(sql, rows)
    record = {
        "queue": QUEUE, "payload": {"n": 0}, "attempts": 1, "reason": "attempts_exhausted",
        "error": json.loads(ERROR), "failed_at_ms": now,
    }  # fmt: skip
    conn.executemany(
        "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
        " VALUES (?, ?, 'waiting', ?, ?, ?)",
        (
            (DLQ, f"rec-{n}", now, json.dumps({**record, "job_id": f"order/{n}"}), now)
            for n in range(dead)
        ),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    total = int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
    conn.close()
    return total


def get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{url}: {exc.code} {exc.read()!r}") from None


def post(url: str, body: dict[str, Any], csrf: str) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def timed(call: Callable[[], Any], rounds: int) -> dict[str, float]:
    call()  # warm: the first read of a page of the file
    spent = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        spent.append((time.perf_counter() - start) * 1000)
    spent.sort()
    return {
        "p50_ms": round(statistics.median(spent), 2),
        "p95_ms": round(spent[max(0, int(len(spent) * 0.95) - 1)], 2),
    }


def measure(path: Path, jobs: int, rounds: int, span_s: int) -> dict[str, Any]:
    rows = build(path, jobs, span_s)
    config = MonitorConfig(url=f"sqlite:///{path}", queues=[QUEUE], dead_letter_queues={QUEUE: DLQ})
    figures: dict[str, Any] = {"rows": rows}
    with serving(config) as base:
        api = base + "api/"

        def deep() -> None:
            cursor = ""
            for _ in range(20):
                page = json.loads(get(api + f"jobs?queue={QUEUE}&state=completed&cursor={cursor}"))
                cursor = page["next_cursor"] or ""  # a small file ends sooner: from the top

        retried = iter(range(1, 10**9))
        failed_ids = [
            j["id"]
            for j in json.loads(get(api + f"jobs?queue={QUEUE}&state=failed&limit=200"))["jobs"]
        ]
        calls: dict[str, Callable[[], Any]] = {
            "page": lambda: get(base),
            "stats": lambda: get(api + "stats"),
            "series": lambda: get(api + f"series?queue={QUEUE}"),
            **{
                f"jobs_{state}": (lambda s=state: get(api + f"jobs?queue={QUEUE}&state={s}"))
                for state in (
                    "waiting",
                    "delayed",
                    "active",
                    "completed",
                    "failed",
                    "dead_lettered",
                )
            },
            "jobs_deep_page_20": deep,
            "job_by_id": lambda: get(api + f"job?queue={QUEUE}&id=order%2F{jobs // 2}"),
            "dlq_page": lambda: get(api + f"dlq?queue={DLQ}"),
            "retry": lambda: post(
                api + "actions/retry",
                {"queue": QUEUE, "id": failed_ids[next(retried) % len(failed_ids)]},
                config.csrf,
            ),
        }
        for name, call in calls.items():
            figures[name] = timed(
                call, rounds if name != "jobs_deep_page_20" else max(3, rounds // 5)
            )
    figures["api_p95_ms"] = max(
        f["p95_ms"]
        for name, f in figures.items()
        if isinstance(f, dict) and name != "jobs_deep_page_20"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--baseline-jobs", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument(
        "--finished-over-s", type=int, default=86_400,
        help="the finished jobs finished evenly over this many seconds (600: 1,150 jobs/s)",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pikku-monitor-bench-") as folder:
        started = time.perf_counter()
        big = measure(Path(folder) / "big.db", args.jobs, args.rounds, args.finished_over_s)
        big["seconds_total"] = round(time.perf_counter() - started, 1)
        small = measure(
            Path(folder) / "small.db", args.baseline_jobs, args.rounds, args.finished_over_s
        )
    print(
        f"{'request':<22} {big['rows']:>10,} rows p50 / p95 ms   {small['rows']:>8,} rows p50 / p95 ms"
    )
    for name, figure in big.items():
        if isinstance(figure, dict):
            base = small[name]
            print(
                f"{name:<22} {figure['p50_ms']:>14.1f} / {figure['p95_ms']:<8.1f}"
                f" {base['p50_ms']:>14.1f} / {base['p95_ms']:<8.1f}"
            )
    print(f"API p95 (every request but the deep page): {big['api_p95_ms']} ms at {big['rows']:,} rows"
          f" (baseline {small['api_p95_ms']} ms at {small['rows']:,})")  # fmt: skip
    print(json.dumps({"benchmark": "monitor", "jobs": big, "baseline": small}))


if __name__ == "__main__":
    main()
