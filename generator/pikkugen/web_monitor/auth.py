"""Who may call what: every check a request passes before its handler, in one place.

Outermost, for every request whatever its path (`HostGuard`, an ASGI middleware): its `Host`
must be a name this monitor is reached by (`hosts`: the DNS-rebinding defence), else 421; and
every response, a refusal included, carries the headers that keep the page to itself (a CSP
with no inline script and no framing, `nosniff`, no referrer, nothing cached).

Then per route (`guarded`): bound to loopback (127.0.0.1, ::1, localhost) the monitor is open
to the local user; bound anywhere else it needs a token (`$PIKKU_MONITOR_TOKEN`, `--token-file`
or `--token`), sent as `Authorization: Bearer …`, or once as `?token=…`, which sets an
HttpOnly, SameSite=Strict cookie (a MAC of the token, not the token) and redirects to the same URL without it (so the token stays
out of the address bar, the history and any referrer); without it every request is 401,
the page's static files included. A state-changing request (an action) must carry the page's
CSRF token in `X-CSRF-Token` and, when the browser names them, an `Origin` of this host and a
same-origin `Sec-Fetch-Site`: a page of another site can neither read the token nor forge
the header. Credentials are compared as bytes in constant time, so no value a client sends
(non-ASCII included) is an error: a wrong one is a refusal.

A check is `(request, call_next) -> response`: it answers itself (a refusal) or calls the
next one, and may touch the response on the way back. `guarded` puts `EVERY_ROUTE` first on
every route it wraps, so a new route cannot forget them; a route adds its own after them
(`guarded(retry, require_csrf)`).
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pikkugen.web_monitor.hosts import HostRule
from pikkugen.web_monitor.state import monitor_state

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
TOKEN_ENVIRONMENT_VARIABLE = "PIKKU_MONITOR_TOKEN"
COOKIE = "pikku_monitor_token"

Handler = Callable[[Request], Awaitable[Response]]
Check = Callable[[Request, Handler], Awaitable[Response]]

#: On every response. The page loads its own script and style sheet only (no inline script,
#: no eval), talks to its own origin only, and cannot be framed.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


def is_loopback(host: str) -> bool:
    """Only these are open without a token: another 127.x address is treated as exposed."""
    return host in LOOPBACK_HOSTS


def error(status: int, message: str) -> Response:
    """Every refusal and failure of the API: JSON the page shows as it is."""
    return JSONResponse({"error": message}, status_code=status)


class HostGuard:
    """The outermost layer: 421 for a `Host` this monitor is not reached by (before routing,
    so no handler, static file or 404 ever answers one), and `SECURITY_HEADERS` on every
    response."""

    def __init__(self, app: ASGIApp, rule: HostRule) -> None:
        self.app = app
        self.rule = rule

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = {name for name, _ in _RAW_HEADERS}
                headers = [h for h in message.get("headers", []) if h[0].lower() not in own]
                message = {**message, "headers": headers + _RAW_HEADERS}
            await send(message)

        values = [v for k, v in scope.get("headers", []) if k.lower() == b"host"]
        host = values[0].decode("latin-1") if len(values) == 1 else None
        server = scope.get("server")
        port = int(server[1]) if server and server[1] is not None else None
        if not self.rule.allows(host, port):
            refusal = error(
                421,
                "this monitor is not served under that host name (a DNS-rebinding guard); "
                "open it as http://localhost:PORT/ or name the host with --allowed-host",
            )
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _sent(text: str) -> bytes:
    """A header or cookie value as the bytes the client sent (Starlette decodes headers as
    latin-1); `hmac.compare_digest` refuses non-ASCII `str`, and bytes never raise."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:  # a cookie's escapes can name characters past latin-1
        return text.encode("utf-8", "surrogatepass")


def same_secret(given: bytes | None, expected: str) -> bool:
    """Constant time; the secret as UTF-8, what a client sends for a non-ASCII one."""
    return given is not None and hmac.compare_digest(given, expected.encode("utf-8"))


def cookie_value(token: str) -> str:
    """What the cookie holds: a MAC of the token, not the token (ASCII whatever the token,
    and a leaked cookie is not the token a script or curl would use)."""
    return hmac.new(token.encode("utf-8"), b"pikku-monitor-cookie", "sha256").hexdigest()


def _authenticated(request: Request, token: str) -> tuple[bool, bool]:
    """Whether the request carries the token, and whether it came as `?token=`."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return same_secret(_sent(header[7:].strip()), token), False
    query = request.query_params.get("token")
    if query:  # percent-decoded as UTF-8 by Starlette
        return same_secret(query.encode("utf-8", "surrogatepass"), token), True
    cookie = request.cookies.get(COOKIE)
    return same_secret(None if cookie is None else _sent(cookie), cookie_value(token)), False


def _without_token(request: Request) -> str:
    """The request's own path and query, less `token` (a relative redirect: no host in it)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    path = request.url.path
    return path + ("?" + urlencode(query) if query else "")


async def require_token(request: Request, call_next: Handler) -> Response:
    """401 without the configured token. A `?token=` that passes on a GET sets the cookie and
    redirects to the same URL without it; the page's own requests then carry the cookie."""
    token = monitor_state(request).config.token
    if token is None:
        return await call_next(request)
    passed, from_query = _authenticated(request, token)
    if not passed:
        return error(401, "a token is required (Authorization: Bearer …, or ?token= once)")
    if from_query and request.method in ("GET", "HEAD"):
        response: Response = RedirectResponse(_without_token(request), status_code=303)
    else:
        response = await call_next(request)
    if from_query:
        response.set_cookie(COOKIE, cookie_value(token), httponly=True, samesite="strict", path="/")
    return response


def _same_origin(request: Request) -> bool:
    """A browser names the page that sent a POST; it must be this monitor's own (the `Host`
    itself passed `HostGuard`, so a rebinding page cannot make the two agree). A client that
    sends neither, such as curl, still needs the CSRF token."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc == request.headers.get("host")


async def require_csrf(request: Request, call_next: Handler) -> Response:
    """403 unless the request carries the page's CSRF token and comes from this origin."""
    csrf = monitor_state(request).config.csrf
    sent = request.headers.get("x-csrf-token")
    if not same_secret(None if sent is None else _sent(sent), csrf) or not _same_origin(request):
        return error(403, "missing or wrong CSRF token, or another site's request")
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


#: The largest request body an action reads (a selection of record ids fits many times).
MAX_BODY_BYTES = 1 << 20


class BadRequest(Exception):
    """A request the API refuses: its status and the message the page shows."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object a POST carries: 415 unless sent as JSON, 413 past `MAX_BODY_BYTES`,
    400 for anything that is not a JSON object (bad UTF-8, bad JSON, another type)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise BadRequest(415, "send the body as application/json")
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as exc:
        raise BadRequest(400, f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "the body must be a JSON object")
    return body
