"""The web monitor's ASGI app: JSON over `QueueMonitor` and `Backend`, one static page.

Starlette (routing, responses, static files) under uvicorn, in the process that serves it: no
Node build step, the page is plain HTML/JS/SVG shipped in the wheel (`static/`), nothing from
a CDN. Every number comes from the backend through `QueueMonitor` / `Backend` methods, with the
counts of `pikku_queue.counts` (the same as the worker's table and `/metrics`).

Security: bound to loopback (127.0.0.1, ::1, localhost) it is open to the local user; bound
anywhere else it needs a token (`--token` / `$PIKKU_MONITOR_TOKEN`), sent as
`Authorization: Bearer …`, or once as `?token=…`, which sets an HttpOnly, SameSite=Strict
cookie; without it every request is 401. A state-changing request (a replay) must carry the
page's CSRF token in `X-CSRF-Token` and, when the browser sends one, an `Origin` of this host:
a page of another site can neither read the token nor forge the header.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pikku_queue import counts
from pikku_queue.adapters import connect, masked_url
from pikku_queue.backend import Backend, BucketsFinished, FinishedBucket, JobInfo
from pikku_queue.monitor import QueueMonitor, percentile
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
TOKEN_ENVIRONMENT_VARIABLE = "PIKKU_MONITOR_TOKEN"
COOKIE = "pikku_monitor_token"
#: The chart's buckets: 10 s each over the monitor's window.
BUCKET_MS = 10_000


def is_loopback(host: str) -> bool:
    """Only these are open without a token: another 127.x address is treated as exposed."""
    return host in LOOPBACK_HOSTS


def static_dir() -> Path:
    return Path(str(files("pikkugen.web_monitor") / "static"))


@dataclass
class MonitorConfig:
    url: str
    queues: list[str]
    #: queue → its dead-letter queue (None: it has none).
    dead_letter_queues: dict[str, str | None]
    token: str | None = None
    window_ms: int = 300_000
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def dlqs(self) -> list[str]:
        return sorted({d for d in self.dead_letter_queues.values() if d})


def _job(info: JobInfo, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": info.id,
        "queue": info.queue,
        "state": str(info.state),
        "attempts": info.attempts_made,
        "progress": info.progress,
        "enqueued_at_ms": info.enqueued_at_ms,
        "finished_at_ms": info.finished_at_ms,
    }
    if full:
        data["payload"] = info.payload
        data["result"] = info.result
        data["error"] = info.error.as_dict() if info.error else None
    elif info.error:
        data["error"] = {"type": info.error.type, "message": info.error.message}
    return data


def create_app(config: MonitorConfig, backend: Backend | None = None) -> Starlette:
    """The monitor for `config`; it opens (and closes) `config.url` unless given `backend`."""
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = backend or connect(config.url)
        state["backend"] = opened
        state["monitor"] = QueueMonitor(
            queues=config.queues + config.dlqs, backend=opened, window_ms=config.window_ms
        )
        try:
            yield
        finally:
            if backend is None:
                await opened.close()

    def the_backend() -> Backend:
        b: Backend = state["backend"]
        return b

    def authorised(request: Request) -> bool:
        if config.token is None:
            return True
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else None
        given = given or request.query_params.get("token") or request.cookies.get(COOKIE)
        return given is not None and hmac.compare_digest(given, config.token)

    Handler = Callable[[Request], Awaitable[Response]]

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            if not authorised(request):
                return JSONResponse(
                    {"error": "a token is required (Authorization: Bearer …)"}, status_code=401
                )
            response = await handler(request)
            if config.token is not None and request.query_params.get("token"):
                response.set_cookie(COOKIE, config.token, httponly=True, samesite="strict")
            return response

        return run

    def same_origin(request: Request) -> bool:
        """A browser names the page that sent a POST; it must be this monitor's own. (A
        client that sends no Origin, such as curl, still needs the CSRF token.)"""
        origin = request.headers.get("origin")
        if origin is None:
            return True
        return urlsplit(origin).netloc == request.headers.get("host")

    async def index(request: Request) -> Response:
        page = (static_dir() / "index.html").read_text(encoding="utf-8")
        page = page.replace("{{csrf}}", config.csrf).replace(
            "{{backend}}", masked_url(config.url).replace("<", "&lt;")
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def stats(request: Request) -> Response:
        monitor: QueueMonitor = state["monitor"]
        lister = getattr(the_backend(), "recent_jobs", None)
        rows = []
        for name in monitor.queues:
            s = await monitor.get_stats(name)
            rows.append(
                {
                    **asdict(s),
                    "counts": {state: getattr(s, state) for state in counts.STATES},
                    "is_dlq": name in config.dlqs,
                    "dead_letter_queue": config.dead_letter_queues.get(name),
                    "can_list": lister is not None,
                }
            )
        return JSONResponse(
            {
                "backend": masked_url(config.url),
                "now_ms": int(time.time() * 1000),
                "queues": rows,
                "states": list(counts.STATES),
                "definitions": counts.DEFINITIONS,
                "lists_jobs": lister is not None,
                "list_note": None
                if lister is not None
                else "this backend cannot list jobs (SQS keeps no job records): counts, "
                "throughput and the dead-letter queue are shown",
            }
        )

    async def series(request: Request) -> Response:
        name = request.path_params["queue"]
        if name not in config.queues + config.dlqs:
            return JSONResponse({"error": f"unknown queue {name!r}"}, status_code=404)
        now = int(time.time() * 1000)
        start = now - config.window_ms
        backend = the_backend()
        # A bounded read where the backend offers one (SQLite: aggregates and a latency sample
        # per bucket in SQL), so a scrape over a busy window loads no row per finished job.
        if isinstance(backend, BucketsFinished):
            found = {b.start_ms: b for b in await backend.finished_buckets(name, start, BUCKET_MS)}
        else:
            found = FinishedBucket.of(await backend.finished_since(name, start), BUCKET_MS)
        buckets = []
        for begin in range(start - start % BUCKET_MS, now, BUCKET_MS):
            bucket = found.get(begin, FinishedBucket(begin))
            latencies = list(bucket.latencies_ms)
            buckets.append(
                {
                    "t": begin,
                    "finished": bucket.finished,
                    "failed": bucket.failed,
                    "per_minute": bucket.finished * 60_000 / BUCKET_MS,
                    "p50_ms": percentile(latencies, 0.5),
                    "p95_ms": percentile(latencies, 0.95),
                }
            )
        return JSONResponse({"queue": name, "bucket_ms": BUCKET_MS, "buckets": buckets})

    async def jobs(request: Request) -> Response:
        name = request.path_params["queue"]
        lister = getattr(the_backend(), "recent_jobs", None)
        if lister is None:
            return JSONResponse({"supported": False, "jobs": []})
        found: Sequence[JobInfo] = await lister(name, 50)
        return JSONResponse({"supported": True, "jobs": [_job(j, False) for j in found]})

    async def job(request: Request) -> Response:
        info = await the_backend().get_job(
            request.path_params["queue"], request.path_params["job_id"]
        )
        if info is None:
            return JSONResponse({"error": "no such job (or this backend cannot look one up)"}, 404)
        return JSONResponse(_job(info, True))

    async def dead_letters(request: Request) -> Response:
        name = request.path_params["dlq"]
        if name not in config.dlqs:
            return JSONResponse({"error": f"{name!r} is no dead-letter queue"}, status_code=404)
        records = await the_backend().dead_letters(name, 200)
        return JSONResponse(
            {"dlq": name, "records": [{"id": r.id, **r.as_payload()} for r in records]}
        )

    async def replay(request: Request) -> Response:
        name = request.path_params["dlq"]
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent, config.csrf) or not same_origin(request):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        if name not in config.dlqs:
            return JSONResponse({"error": f"{name!r} is no dead-letter queue"}, status_code=404)
        body = await request.json()
        ids = body.get("ids") if isinstance(body, dict) else None
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            return JSONResponse({"error": "ids must be a list of record ids"}, status_code=400)
        replayed = await the_backend().replay(name, ids)
        return JSONResponse({"replayed": replayed})

    routes = [
        Route("/", guarded(index)),
        Route("/api/stats", guarded(stats)),
        Route("/api/queues/{queue}/series", guarded(series)),
        Route("/api/queues/{queue}/jobs", guarded(jobs)),
        Route("/api/queues/{queue}/jobs/{job_id}", guarded(job)),
        Route("/api/dlq/{dlq}", guarded(dead_letters)),
        Route("/api/dlq/{dlq}/replay", guarded(replay), methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=static_dir()), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
