"""The web monitor on a SQLite file of 1,000,000 jobs: how long the page and each API call take.

    .venv/bin/python benchmarks/monitor.py                 # the full million
    .venv/bin/python benchmarks/monitor.py --jobs 200000

The file holds one busy queue as a month of work leaves it with retention off: most jobs
completed (finished over the last day, `--finished-over-s`), a backlog waiting, some delayed,
active, failed and dead-lettered, and the dead-letter queue's records. The rows are written
with plain SQL (`executemany`) into the backend's own schema (its triggers keep the counts as
they go), so building the file takes seconds, not a worker's hours. Its rows are then read back
(`SELECT queue, state, count(*)`): that is the row count every figure is given with. The file
is not `ANALYZE`d unless `--analyze` (no worker runs it, so a user's file has no statistics).

The monitor is then served by uvicorn on a loopback port, as `pikkugen monitor` serves it, and
every request the page makes is timed `--rounds` times over real HTTP: the page's first
render (the HTML, its four static files, `/api/stats` and the chart series, one after the
other: a browser's upper bound), the page, `/api/stats`, a chart's series, the first page of
each state, a deep page (through 20 cursors), a job by id, the dead-letter page, and a retry;
with each, the rows it returned. Beside them, on the file itself: the counts read from
`job_counts` (what `/api/stats` does) and by `count(*)` per state (what it did before the
counters). The baseline, measured in the same run, is the same requests against a file of
`--baseline-jobs` (1,000) jobs. Each figure is a p50 and a p95 in ms; the machine's load
average is printed with them. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
from pikku_queue.adapters.sqlite.counters import queue_counts
from pikku_queue.records import QueueCounts
from pikkugen.web_monitor.config import MonitorConfig

QUEUE = "bench"
DLQ = "bench-dlq"
#: Shares of the jobs, by state (the rest completed).
SHARES = {"waiting": 0.25, "delayed": 0.01, "active": 0.001, "failed": 0.03, "dead_lettered": 0.01}
#: What the page loads when it opens (`static/index.html`, then `monitor.js`'s first refresh).
STATIC = ("static/vendor/uPlot.min.css", "static/monitor.css", "static/vendor/uPlot.iife.min.js",
          "static/monitor.js")  # fmt: skip
ERROR = json.dumps({"type": "RuntimeError", "message": "boom", "traceback": "Traceback ...\n"})


def build(path: Path, jobs: int, span_s: int = 86_400, analyze: bool = False) -> dict[str, int]:
    """A file of `jobs` rows in the backend's schema, the finished ones finished evenly over
    the last `span_s` seconds; returns its rows read back, `{"queue state": n}` and `rows`."""
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
        " enqueued_at, finished_at, lease_until, worker, token)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for state in ("completed", "failed", "dead_lettered", "delayed", "active", "waiting"):
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
                    *((now + 600_000, "bench-worker", 1) if state == "active" else (None, None, 0)),
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
    if analyze:
        conn.execute("ANALYZE")
    found = {
        f"{queue} {state}": int(n)
        for queue, state, n in conn.execute(
            "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"
        )
    }
    conn.close()
    return {**found, "rows": sum(found.values())}


def counted_by_scan(conn: sqlite3.Connection, queue: str, now: int) -> QueueCounts:
    """The counts as the backend read them before `job_counts`: a `count(*)` per state."""

    def one(where: str, *args: Any) -> int:
        sql = f"SELECT count(*) FROM jobs WHERE queue = ? AND {where}"
        return int(conn.execute(sql, (queue, *args)).fetchone()[0])

    final = dict(
        conn.execute(
            "SELECT state, count(*) FROM jobs INDEXED BY jobs_by_state WHERE queue = ?"
            " AND state IN ('completed', 'failed', 'dead_lettered') GROUP BY state",
            (queue,),
        ).fetchall()
    )
    return QueueCounts(
        waiting=one("state = 'waiting'") + one("state = 'delayed' AND run_at <= ?", now),
        active=one("state = 'active'"),
        delayed=one("state = 'delayed' AND run_at > ?", now),
        completed=int(final.get("completed", 0)),
        failed=int(final.get("failed", 0)),
        dead_lettered=int(final.get("dead_lettered", 0)),
        scheduled=one("state = 'delayed' AND run_at > ? AND schedule IS NOT NULL", now),
    )


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


def returned(body: Any) -> int:
    """The rows a response carries: jobs, records, queues, buckets, or one job (a count as
    given, for calls made of many requests)."""
    if isinstance(body, int):
        return body
    data = body
    if isinstance(body, (bytes, str)):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return 0
    if not isinstance(data, dict):
        return 0
    for key in ("jobs", "records", "queues", "buckets"):
        if isinstance(data.get(key), list):
            return len(data[key])
    return 1 if "id" in data else 0


def timed(call: Callable[[], Any], rounds: int) -> dict[str, float]:
    body = call()  # warm: the first read of a page of the file
    spent = []
    for _ in range(rounds):
        start = time.perf_counter()
        body = call()
        spent.append((time.perf_counter() - start) * 1000)
    spent.sort()
    return {
        "p50_ms": round(statistics.median(spent), 2),
        "p95_ms": round(spent[max(0, int(len(spent) * 0.95) - 1)], 2),
        "returned": returned(body),
    }


def on_file(path: Path, rounds: int) -> dict[str, Any]:
    """The counts as `/api/stats` reads them, and as they were read before the counters."""
    conn = sqlite3.connect(path)
    now = int(time.time() * 1000)
    table = timed(lambda: queue_counts(conn, QUEUE, now), rounds)
    scan = timed(lambda: counted_by_scan(conn, QUEUE, now), max(3, rounds // 4))
    if queue_counts(conn, QUEUE, now) != counted_by_scan(conn, QUEUE, now):
        raise RuntimeError("job_counts and count(*) disagree")
    conn.close()
    return {"counts_job_counts": table, "counts_by_scan": scan}


def measure(path: Path, jobs: int, rounds: int, span_s: int, analyze: bool) -> dict[str, Any]:
    found = build(path, jobs, span_s, analyze)
    config = MonitorConfig(url=f"sqlite:///{path}", queues=[QUEUE], dead_letter_queues={QUEUE: DLQ})
    figures: dict[str, Any] = {"rows": found["rows"], "rows_by_state": found}
    with serving(config) as base:
        api = base + "api/"

        def deep() -> int:
            cursor, listed = "", 0
            for _ in range(20):
                page = json.loads(get(api + f"jobs?queue={QUEUE}&state=completed&cursor={cursor}"))
                cursor = page["next_cursor"] or ""  # a small file ends sooner: from the top
                listed += len(page["jobs"])
            return listed

        def first_render() -> int:
            get(base)
            for name in STATIC:
                get(base + name)
            stats = json.loads(get(api + "stats"))
            get(api + f"series?queue={QUEUE}")
            return len(stats["queues"])

        retried = iter(range(1, 10**9))
        failed_ids = [
            j["id"]
            for j in json.loads(get(api + f"jobs?queue={QUEUE}&state=failed&limit=200"))["jobs"]
        ]
        calls: dict[str, Callable[[], Any]] = {
            "first_render": first_render,
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
        if isinstance(f, dict)
        and "p95_ms" in f
        and name not in ("jobs_deep_page_20", "first_render")
    )
    figures.update(on_file(path, rounds))
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
    parser.add_argument("--analyze", action="store_true", help="ANALYZE the file once built")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pikku-monitor-bench-") as folder:
        started = time.perf_counter()
        big = measure(
            Path(folder) / "big.db", args.jobs, args.rounds, args.finished_over_s, args.analyze
        )
        big["seconds_total"] = round(time.perf_counter() - started, 1)
        small = measure(
            Path(folder) / "small.db",
            args.baseline_jobs,
            args.rounds,
            args.finished_over_s,
            args.analyze,
        )
    load_after = os.getloadavg()
    print(f"load average {load[0]:.2f} before, {load_after[0]:.2f} after (1 min); rows by state:")
    print("  " + ", ".join(f"{k} {v:,}" for k, v in big["rows_by_state"].items() if k != "rows"))
    print(
        f"{'request':<22} {big['rows']:>10,} rows p50 / p95 ms  rows out"
        f"   {small['rows']:>8,} rows p50 / p95 ms"
    )
    for name, figure in big.items():
        if isinstance(figure, dict) and "p95_ms" in figure:
            base = small[name]
            print(
                f"{name:<22} {figure['p50_ms']:>14.1f} / {figure['p95_ms']:<8.1f}"
                f" {figure['returned'] or '-':>7}  {base['p50_ms']:>14.1f} / {base['p95_ms']:<8.1f}"
            )
    print(f"API p95 (every request but the deep page and the first render): {big['api_p95_ms']} ms"
          f" at {big['rows']:,} rows (baseline {small['api_p95_ms']} ms at {small['rows']:,})")  # fmt: skip
    scan, table = big["counts_by_scan"], big["counts_job_counts"]
    print(f"counts: job_counts {table['p50_ms']} ms, count(*) per state {scan['p50_ms']} ms (p50),"
          f" x{scan['p50_ms'] / max(table['p50_ms'], 0.001):.0f}")  # fmt: skip
    print(
        json.dumps(
            {
                "benchmark": "monitor",
                "load_average": [round(load[0], 2), round(load_after[0], 2)],
                "jobs": big,
                "baseline": small,
            }
        )
    )


if __name__ == "__main__":
    main()
