"""The web monitor's ASGI app: the route table and the state it serves from.

Starlette (routing, responses, static files) under uvicorn, in the process that serves it.
Each route is a module-level `Request -> Response` handler reading `MonitorState` from
`app.state.monitor`, wrapped in its checks (`auth.guarded`): adding a route is a line here,
adding a check to every route a line in `auth.EVERY_ROUTE`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pikku_queue.backend import Backend
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from pikkugen.web_monitor import dead_letters, jobs, pages, stats
from pikkugen.web_monitor.auth import guarded, require_csrf
from pikkugen.web_monitor.config import MonitorConfig
from pikkugen.web_monitor.state import MonitorState


def routes() -> list[BaseRoute]:
    """One line per URL: its handler behind its checks. `/static` is left open (see `auth`)."""
    return [
        Route("/", guarded(pages.index)),
        Route("/api/stats", guarded(stats.stats)),
        Route("/api/queues/{queue}/series", guarded(stats.series)),
        Route("/api/queues/{queue}/jobs", guarded(jobs.recent_jobs)),
        Route("/api/queues/{queue}/jobs/{job_id}", guarded(jobs.job)),
        Route("/api/dlq/{dlq}", guarded(dead_letters.records)),
        Route(
            "/api/dlq/{dlq}/replay", guarded(dead_letters.replay, require_csrf), methods=["POST"]
        ),
        Mount("/static", app=pages.static_files(), name="static"),
    ]


def create_app(config: MonitorConfig, backend: Backend | None = None) -> Starlette:
    """The monitor for `config`; it opens (and closes) `config.url` unless given `backend`."""
    state = MonitorState(config, backend)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with state.opened():
            yield

    app = Starlette(routes=routes(), lifespan=lifespan)
    app.state.monitor = state
    return app
