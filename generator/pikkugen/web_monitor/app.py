"""The web monitor's ASGI app: the route table and the state it serves from.

Starlette (routing, responses) under uvicorn, in the process that serves it. Each route is a
module-level `Request -> Response` handler reading `MonitorState` from `app.state.monitor`,
wrapped in its checks (`auth.guarded`): adding a route is a line here, adding a check to every
route a line in `auth.EVERY_ROUTE`. Around it all, `auth.HostGuard` refuses a request whose
`Host` this monitor is not reached by before any route runs, and sets the security headers.
Refusals and failures are JSON (`auth.error`), never a traceback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from pikku_queue.backend import Backend
from pikku_queue.errors import BackendError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pikkugen.web_monitor import actions, dead_letters, jobs, pages, stats
from pikkugen.web_monitor.auth import BadRequest, HostGuard, error, guarded, require_csrf
from pikkugen.web_monitor.config import MonitorConfig
from pikkugen.web_monitor.hosts import HostRule
from pikkugen.web_monitor.state import MonitorState

logger = logging.getLogger("pikkugen.monitor")


def routes() -> list[BaseRoute]:
    """One line per URL: its handler behind its checks."""
    post = ["POST"]
    return [
        Route("/", guarded(pages.index)),
        Route("/static/{name:path}", guarded(pages.static_file)),
        Route("/api/stats", guarded(stats.stats)),
        Route("/api/series", guarded(stats.series)),
        Route("/api/jobs", guarded(jobs.jobs)),
        Route("/api/job", guarded(jobs.job)),
        Route("/api/dlq", guarded(dead_letters.records)),
        Route("/api/actions/retry", guarded(actions.retry, require_csrf), methods=post),
        Route("/api/actions/remove", guarded(actions.remove, require_csrf), methods=post),
        Route("/api/actions/cancel", guarded(actions.cancel, require_csrf), methods=post),
        Route("/api/actions/promote", guarded(actions.promote, require_csrf), methods=post),
        Route("/api/actions/pause", guarded(actions.pause, require_csrf), methods=post),
        Route("/api/actions/resume", guarded(actions.resume, require_csrf), methods=post),
        Route("/api/actions/clean", guarded(actions.clean, require_csrf), methods=post),
        Route("/api/actions/replay", guarded(actions.replay, require_csrf), methods=post),
    ]


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return error(exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error(exc.status_code, str(exc.detail))


async def _backend_error(request: Request, exc: Exception) -> Response:
    return error(503, f"the backend failed: {exc}")


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("the monitor failed on %s %s", request.method, request.url.path)
    return error(500, f"the monitor failed: {type(exc).__name__} (its log has the details)")


def create_app(config: MonitorConfig, backend: Backend | None = None) -> HostGuard:
    """The monitor for `config`; it opens (and closes) `config.url` unless given `backend`."""
    state = MonitorState(config, backend)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with state.opened():
            yield

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={
            BadRequest: _bad_request,
            HTTPException: _http_error,
            BackendError: _backend_error,
            Exception: _unexpected,
        },
    )
    app.state.monitor = state
    return HostGuard(app, HostRule.of(config.host, config.allowed_hosts))
