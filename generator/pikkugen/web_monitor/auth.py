"""Who may call what: every check a request passes before its handler, in one place.

Bound to loopback (127.0.0.1, ::1, localhost) the monitor is open to the local user; bound
anywhere else it needs a token (`--token` / `$PIKKU_MONITOR_TOKEN`), sent as
`Authorization: Bearer …`, or once as `?token=…`, which sets an HttpOnly, SameSite=Strict
cookie; without it every request is 401. A state-changing request (a replay) must carry the
page's CSRF token in `X-CSRF-Token` and, when the browser sends one, an `Origin` of this host:
a page of another site can neither read the token nor forge the header.

A check is `(request, call_next) -> response`: it answers itself (a refusal) or calls the
next one, and may touch the response on the way back (the token cookie). `guarded` puts the
token check first on every route it wraps, so a new route cannot forget it; a route adds its
own checks after it (`guarded(replay, require_csrf)`). Static files are not guarded: they hold
no data, and the page that carries the CSRF token is.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pikkugen.web_monitor.state import monitor_state

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
TOKEN_ENVIRONMENT_VARIABLE = "PIKKU_MONITOR_TOKEN"
COOKIE = "pikku_monitor_token"

Handler = Callable[[Request], Awaitable[Response]]
Check = Callable[[Request, Handler], Awaitable[Response]]


def is_loopback(host: str) -> bool:
    """Only these are open without a token: another 127.x address is treated as exposed."""
    return host in LOOPBACK_HOSTS


def _given_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else None
    return given or request.query_params.get("token") or request.cookies.get(COOKIE)


async def require_token(request: Request, call_next: Handler) -> Response:
    """401 without the configured token; a `?token=` that passes becomes the cookie, so the
    page's own requests (which carry no header) are let in after the first."""
    token = monitor_state(request).config.token
    if token is not None:
        given = _given_token(request)
        if given is None or not hmac.compare_digest(given, token):
            return JSONResponse(
                {"error": "a token is required (Authorization: Bearer …)"}, status_code=401
            )
    response = await call_next(request)
    if token is not None and request.query_params.get("token"):
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
    return response


def _same_origin(request: Request) -> bool:
    """A browser names the page that sent a POST; it must be this monitor's own. (A client
    that sends no Origin, such as curl, still needs the CSRF token.)"""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host")


async def require_csrf(request: Request, call_next: Handler) -> Response:
    """403 unless the request carries the page's CSRF token and comes from this origin."""
    sent = request.headers.get("x-csrf-token", "")
    csrf = monitor_state(request).config.csrf
    if not hmac.compare_digest(sent, csrf) or not _same_origin(request):
        return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
    return await call_next(request)


#: The checks of every guarded route, outermost first.
EVERY_ROUTE: tuple[Check, ...] = (require_token,)


def _then(check: Check, inner: Handler) -> Handler:
    async def run(request: Request) -> Response:
        return await check(request, inner)

    return run


def guarded(handler: Handler, *checks: Check) -> Handler:
    """`handler` behind `EVERY_ROUTE` and then `checks`, in that order (the first refusal wins).

    A wrapper per route, not an app-wide middleware: a 404 or a 405 of the router stays as
    it is, and each route's list of checks reads in the route table."""
    chain = handler
    for check in reversed((*EVERY_ROUTE, *checks)):
        chain = _then(check, chain)
    return functools.wraps(handler)(chain)
