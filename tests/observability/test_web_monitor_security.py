"""The web monitor as an attacker meets it, over real HTTP to uvicorn on a loopback port: the
DNS-rebinding read and replay refused by the Host allow-list, every malformed credential and
body a 4xx (never a 500), the headers that keep the page to itself, static files behind the
token, unknown queues 404, the `?token=` stripped by a redirect, the token from a file."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from monitor_server import serving
from pikku_queue.adapters import connect
from pikku_queue.backend import WorkerOptions
from pikku_queue.errors import NonRetryableError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pikkugen.web_monitor.auth import SECURITY_HEADERS, cookie_value
from pikkugen.web_monitor.config import MonitorConfig
from pikkugen.web_monitor.hosts import HostRule, parse_host

QUEUES = ["sec-pay"]
DLQS = {"sec-pay": "sec-dlq"}
TOKEN = "s3cret-tøken"  # not ASCII: compared as bytes, never a TypeError


def dead_letter_db(folder: Path) -> str:
    """A SQLite file with one dead-lettered job (and its record in `sec-dlq`)."""
    url = f"sqlite:///{folder / 'q.db'}"

    async def prepare() -> None:
        async def pay(data: dict[str, int]) -> None:
            raise NonRetryableError("declined")

        backend = connect(url)
        await backend.enqueue(EnqueueRequest("sec-pay", {"n": 1}, job_id="order/1"))
        processor = Processor.from_function(
            "sec-pay", pay, ProcessorOptions(dead_letter_queue="sec-dlq")
        )
        await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
        await backend.close()

    asyncio.run(prepare())
    return url


@pytest.fixture(scope="module")
def dead_letter_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return dead_letter_db(tmp_path_factory.mktemp("sec"))


@pytest.fixture(scope="module")
def open_monitor(dead_letter_url: str) -> Iterator[tuple[str, MonitorConfig]]:
    """The default: loopback, no token."""
    config = MonitorConfig(url=dead_letter_url, queues=QUEUES, dead_letter_queues=DLQS)
    with serving(config) as base:
        yield base, config


@pytest.fixture(scope="module")
def token_monitor(dead_letter_url: str) -> Iterator[tuple[str, MonitorConfig]]:
    """Bound to 127.0.0.2 (not a name left open), with a token and an extra allowed name."""
    config = MonitorConfig(
        url=dead_letter_url,
        queues=QUEUES,
        dead_letter_queues=DLQS,
        token=TOKEN,
        host="127.0.0.2",
        allowed_hosts=("monitor.internal",),
    )
    with serving(config, host="127.0.0.2") as base:
        yield base, config


class Answer:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.cookies = response.headers.get_all("set-cookie") or []
        try:
            self.body = response.read()
        except ConnectionResetError:
            # The server answered and closed at once (uvicorn refusing a header before the
            # app, with the request's body unread): the status line stands, the body is lost
            # to the reset. A refusal that closes, not a crash: the status is still checked.
            if response.status < 400:
                raise
            self.body = b""

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    base: str,
    path: str,
    *,
    method: str = "GET",
    host: str | bytes | None = None,
    headers: dict[str, str | bytes] | None = None,
    body: bytes | None = None,
) -> Answer:
    """One request with exactly these headers (`host` replaces the real `Host`), raw bytes
    allowed: what a browser on a rebinding page, or a hostile client, would send."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else parts.netloc)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return Answer(conn.getresponse())
    finally:
        conn.close()


def _port(base: str) -> int:
    port = urlsplit(base).port
    assert port is not None
    return port


def _records(base: str) -> int:
    return len(request(base, "/api/dlq?queue=sec-dlq").json()["records"])


def _replay(base: str, config: MonitorConfig, **extra: Any) -> Answer:
    headers: dict[str, str | bytes] = {
        "Content-Type": "application/json",
        "X-CSRF-Token": config.csrf,
        **extra.pop("headers", {}),
    }
    body = json.dumps({"queue": "sec-dlq", "ids": None}).encode()
    return request(base, "/api/actions/replay", method="POST", headers=headers, body=body, **extra)


# ------------------------------------------------------------------ DNS rebinding


def test_the_rebinding_read_is_refused(open_monitor: tuple[str, MonitorConfig]) -> None:
    """A page on evil.example whose name now resolves to 127.0.0.1 reads with its own Host:
    421 before any handler, for the page (which holds the CSRF token), the API and even a 404."""
    base, config = open_monitor
    evil = f"evil.example:{_port(base)}"
    for path in ("/", "/api/stats", "/api/dlq?queue=sec-dlq", "/static/monitor.js", "/nope"):
        answer = request(base, path, host=evil)
        assert answer.status == 421, path
        assert config.csrf.encode() not in answer.body
        assert b"declined" not in answer.body
        assert answer.json()["error"].startswith("this monitor is not served under that host")
    assert request(base, "/api/stats").status == 200  # the real name still works


def test_the_rebinding_replay_is_refused(open_monitor: tuple[str, MonitorConfig]) -> None:
    """Host and Origin both evil.example:PORT, even with the right CSRF token: 421, and the
    dead letter stays where it is."""
    base, config = open_monitor
    evil = f"evil.example:{_port(base)}"
    answer = _replay(base, config, host=evil, headers={"Origin": f"http://{evil}"})
    assert answer.status == 421
    assert _records(base) == 1


@pytest.mark.parametrize(
    "host",
    ["", "127.0.0.1", "127.0.0.1:1", "localhost:1", "[::1]:1", "127.0.0.1.nip.io:{port}",
     "localhost.evil.example:{port}", "{port}", "127.0.0.1:{port}:1", "[::1", "a b:{port}"],
)  # fmt: skip
def test_other_hosts_are_refused(open_monitor: tuple[str, MonitorConfig], host: str) -> None:
    base, _ = open_monitor
    assert request(base, "/api/stats", host=host.format(port=_port(base))).status == 421


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_the_loopback_names_with_the_port_are_served(
    open_monitor: tuple[str, MonitorConfig], host: str
) -> None:
    base, _ = open_monitor
    assert request(base, "/api/stats", host=host.format(port=_port(base))).status == 200


def test_two_host_headers_are_refused(open_monitor: tuple[str, MonitorConfig]) -> None:
    base, _ = open_monitor
    parts = urlsplit(base)
    answer = request(base, "/api/stats", headers={"Host": f"evil.example:{parts.port}"})
    assert answer.status in (400, 421)  # uvicorn or the guard: never served


def test_the_host_rule() -> None:
    rule = HostRule.of("0.0.0.0", ("monitor.internal", "proxy.example:443"))
    assert rule.allows("[::1]:8765", 8765) and rule.allows("0.0.0.0:8765", 8765)
    assert rule.allows("localhost", 80) and not rule.allows("localhost", 8765)
    assert rule.allows("monitor.internal", 8765) and rule.allows("monitor.internal:8765", 8765)
    assert not rule.allows("monitor.internal:9999", 8765)
    assert rule.allows("proxy.example:443", 8765) and not rule.allows("proxy.example", 8765)
    assert not rule.allows(None, 8765) and not rule.allows("evil.example:8765", 8765)
    assert parse_host("[::1]:8765") is not None and parse_host("::1:8765") is None
    with pytest.raises(ValueError, match="allowed-host"):
        HostRule.of("127.0.0.1", ("bad:port",))


@given(st.text(max_size=40))
def test_any_host_value_is_an_answer(value: str) -> None:
    rule = HostRule.of("127.0.0.1", ("monitor.internal",))
    assert rule.allows(value, 8765) in (True, False)


# ------------------------------------------------------------------ the token


def test_an_allowed_host_name_is_served_with_the_token(
    token_monitor: tuple[str, MonitorConfig],
) -> None:
    base, _ = token_monitor
    bearer = {"Authorization": f"Bearer {TOKEN}".encode()}
    assert request(base, "/api/stats", headers=bearer).status == 200
    named = f"monitor.internal:{_port(base)}"
    assert request(base, "/api/stats", host=named, headers=bearer).status == 200
    assert request(base, "/api/stats", host="monitor.internal", headers=bearer).status == 200
    assert request(base, "/api/stats", host=f"localhost:{_port(base)}").status == 401


@pytest.mark.parametrize("path", ["/", "/api/stats", "/static/monitor.js",
                                  "/static/vendor/uPlot.iife.min.js", "/api/jobs?queue=sec-pay&state=failed"])  # fmt: skip
def test_everything_needs_the_token(token_monitor: tuple[str, MonitorConfig], path: str) -> None:
    base, _ = token_monitor
    assert request(base, path).status == 401
    assert request(base, path, headers={"Authorization": b"Bearer wrong"}).status == 401
    answer = request(base, path, headers={"Authorization": f"Bearer {TOKEN}".encode()})
    assert answer.status == 200


def test_the_query_token_becomes_a_cookie_and_leaves_the_url(
    token_monitor: tuple[str, MonitorConfig],
) -> None:
    base, _ = token_monitor
    query = "token=" + "".join(f"%{b:02X}" for b in TOKEN.encode())
    answer = request(base, f"/?view=x&{query}")
    assert answer.status == 303
    assert answer.headers["location"] == "/?view=x"
    [cookie] = answer.cookies
    assert cookie.startswith("pikku_monitor_token=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    value = cookie.split(";")[0]
    page = request(base, "/?view=x", headers={"Cookie": value.encode()})
    assert page.status == 200 and b"pikkugen monitor" in page.body
    assert request(base, "/?token=wrong").status == 401


CREDENTIAL = st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b)


def _refused_by_http(value: bytes) -> bool:
    """A control character in a header value: uvicorn (h11) may answer 400 before the app."""
    return any((b < 0x20 and b != 0x09) or b == 0x7F for b in value)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=CREDENTIAL, where=st.sampled_from(["bearer", "cookie", "query"]))
def test_any_credential_is_a_401_never_a_500(
    token_monitor: tuple[str, MonitorConfig], value: bytes, where: str
) -> None:
    """Bytes of any kind (non-ASCII, not UTF-8) as the bearer token, the cookie or `?token=`."""
    base, _ = token_monitor
    path, headers = "/api/stats", {}
    if where == "bearer":
        headers = {"Authorization": b"Bearer " + value}
    elif where == "cookie":
        headers = {"Cookie": b"pikku_monitor_token=" + value}
    else:
        path += "?token=" + "".join(f"%{b:02X}" for b in value)
    answer = request(base, path, headers=headers)
    expected = 200 if value.strip() == TOKEN.encode() else 401
    if where == "cookie":
        expected = 401
    if where != "query" and _refused_by_http(value) and answer.status == 400:
        return  # uvicorn refused the header itself, before the app
    assert answer.status in (expected, 303), (value, where)
    assert answer.headers["content-type"].startswith("application/json") or answer.status == 303


def test_the_non_ascii_token_in_each_place(token_monitor: tuple[str, MonitorConfig]) -> None:
    base, _ = token_monitor
    token = TOKEN.encode()
    assert request(base, "/api/stats", headers={"Authorization": b"Bearer " + token}).status == 200
    cookie = {"Cookie": f"pikku_monitor_token={cookie_value(TOKEN)}".encode()}
    assert request(base, "/api/stats", headers=cookie).status == 200
    raw = {"Cookie": b"pikku_monitor_token=" + token}  # the token itself is not the cookie
    assert request(base, "/api/stats", headers=raw).status == 401
    latin = {"Authorization": "Bearer s3cret-tøken".encode("latin-1")}  # the same, mis-encoded
    assert request(base, "/api/stats", headers=latin).status == 401


# ------------------------------------------------------------------ CSRF and bodies


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=CREDENTIAL)
def test_any_csrf_header_is_a_403_never_a_500(
    open_monitor: tuple[str, MonitorConfig], value: bytes
) -> None:
    base, config = open_monitor
    if value.strip() == config.csrf.encode():
        return
    answer = _replay(base, config, headers={"X-CSRF-Token": value})
    assert answer.status in ((400, 403) if _refused_by_http(value) else (403,))
    assert _records(base) == 1


def test_a_replay_needs_the_csrf_token_and_this_origin(tmp_path: Path) -> None:
    config = MonitorConfig(url=dead_letter_db(tmp_path), queues=QUEUES, dead_letter_queues=DLQS)
    with serving(config) as base:
        _refused_then_replayed(base, config)


def _refused_then_replayed(base: str, config: MonitorConfig) -> None:
    here = urlsplit(base).netloc
    assert _replay(base, config, headers={"X-CSRF-Token": ""}).status == 403
    assert _replay(base, config, headers={"X-CSRF-Token": "guess"}).status == 403
    assert _replay(base, config, headers={"Origin": "http://evil.example"}).status == 403
    assert _replay(base, config, headers={"Origin": "null"}).status == 403
    assert _replay(base, config, headers={"Sec-Fetch-Site": "cross-site"}).status == 403
    assert _records(base) == 1
    answer = _replay(base, config, headers={"Origin": f"http://{here}"})
    assert (answer.status, answer.json()["replayed"]) == (200, 1)
    assert _records(base) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"\xff\xfe{}", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'"ids"', "application/json", 400),
        (b'{"queue": "sec-dlq", "ids": "all"}', "application/json", 400),
        (b'{"queue": "sec-dlq", "ids": [1, 2]}', "application/json", 400),
        (b'{"queue": "sec-dlq", "ids": []}', "application/json", 400),
        (b'{"queue": ["sec-dlq"], "ids": null}', "application/json", 400),
        (b'{"queue": "sec-dlq", "ids": null}', "text/plain", 415),
        (b'{"queue": "sec-dlq", "ids": null}', "application/x-www-form-urlencoded", 415),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        (b" " * (1 << 20) + b"{}", "application/json", 413),
        (b'{"queue": "no-such-dlq", "ids": null}', "application/json", 404),
        (b'{"queue": "sec-pay", "ids": null}', "application/json", 404),
    ],
)
def test_a_malformed_body_is_a_4xx(
    open_monitor: tuple[str, MonitorConfig], body: bytes, content_type: str, status: int
) -> None:
    base, config = open_monitor
    headers: dict[str, str | bytes] = {"Content-Type": content_type, "X-CSRF-Token": config.csrf}
    for action in ("replay", "retry", "remove"):
        answer = request(base, f"/api/actions/{action}", method="POST", headers=headers, body=body)
        if action != "replay" and status == 404:
            continue  # those bodies are a replay's
        if action != "replay" and body.startswith(b'{"queue": "sec-dlq", "ids"'):
            assert answer.status in (400, 415), (action, answer.body)
            continue
        assert answer.status == status, (action, answer.body)
        assert "error" in answer.json()
    assert _records(base) == 1


# ------------------------------------------------------------------ headers and surface


@pytest.mark.parametrize(
    "path",
    ["/", "/api/stats", "/static/monitor.css", "/api/jobs?queue=nope&state=waiting", "/nope"],
)
def test_every_response_keeps_the_page_to_itself(
    open_monitor: tuple[str, MonitorConfig], path: str
) -> None:
    base, _ = open_monitor
    for host in (None, "evil.example"):
        answer = request(base, path, host=host)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name.lower()) == value, (path, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_the_page_has_no_inline_script(open_monitor: tuple[str, MonitorConfig]) -> None:
    base, _ = open_monitor
    page = request(base, "/").body.decode()
    scripts = page.count("<script")
    assert scripts == page.count('<script src="static/') == 2
    assert not re.search(r"\son\w+\s*=", page, re.I)  # no inline event handler
    assert "style=" not in page and "<style" not in page and "javascript:" not in page


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs?queue=nope&state=waiting",
        "/api/series?queue=nope",
        "/api/job?queue=nope&id=x",
        "/api/dlq?queue=nope",
        "/api/dlq?queue=sec-pay",
        "/api/jobs?queue=..&state=waiting",
        "/api/jobs?queue=sec-pay%2F..&state=waiting",
    ],
)
def test_unknown_queues_are_404(open_monitor: tuple[str, MonitorConfig], path: str) -> None:
    base, _ = open_monitor
    answer = request(base, path)
    assert answer.status == 404 and "error" in answer.json()


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/jobs?queue=sec-pay&state=lost", 400),
        ("/api/jobs?queue=sec-pay", 400),
        ("/api/jobs?queue=sec-pay&state=failed&limit=0", 400),
        ("/api/jobs?queue=sec-pay&state=failed&limit=%C2%B2", 400),
        ("/api/jobs?queue=sec-pay&state=failed&cursor=abc", 400),
        ("/api/job?queue=sec-pay", 400),
        ("/api/job?queue=sec-pay&id=order%2F2", 404),
        ("/static/../auth.py", 404),
        ("/static/%2e%2e/auth.py", 404),
        ("/static/vendor/VENDOR.json", 404),
    ],
)
def test_bad_parameters_are_a_json_4xx(
    open_monitor: tuple[str, MonitorConfig], path: str, status: int
) -> None:
    base, _ = open_monitor
    answer = request(base, path)
    assert answer.status == status, answer.body
    assert "error" in answer.json()


def test_a_job_id_with_a_slash_opens(open_monitor: tuple[str, MonitorConfig]) -> None:
    base, _ = open_monitor
    job = request(base, "/api/job?queue=sec-pay&id=order%2F1").json()
    assert job["id"] == "order/1" and job["state"] == "dead_lettered"


def test_the_token_file(tmp_path: Path) -> None:
    import typer
    from pikkugen.commands.monitor import _token

    secret = tmp_path / "token"
    secret.write_text("from-a-file\nignored\n", encoding="utf-8")
    assert _token(None, secret) == "from-a-file"
    assert _token("given", secret) == "given"
    assert _token(None, None) is None
    secret.write_text("\n", encoding="utf-8")
    with pytest.raises(typer.Exit):
        _token(None, secret)
    with pytest.raises(typer.Exit):
        _token(None, tmp_path / "missing")


# ------------------------------------------------------------------ cancel


def test_a_cancel_needs_the_csrf_token_this_origin_and_host(tmp_path: Path) -> None:
    """The cancel action is guarded like every other: without the CSRF token, from another
    origin or under another Host it changes nothing; then it removes the waiting job."""
    url = f"sqlite:///{tmp_path / 'q.db'}"

    async def enqueue() -> None:
        backend = connect(url)
        await backend.enqueue(EnqueueRequest("sec-pay", {"n": 2}, job_id="order-2"))
        await backend.close()

    async def job_exists() -> bool:
        backend = connect(url)
        try:
            return await backend.get_job("sec-pay", "order-2") is not None
        finally:
            await backend.close()

    asyncio.run(enqueue())
    config = MonitorConfig(url=url, queues=QUEUES, dead_letter_queues=DLQS)
    body = json.dumps({"queue": "sec-pay", "id": "order-2"}).encode()
    with serving(config) as base:
        here = urlsplit(base).netloc

        def cancel(headers: dict[str, str | bytes], host: str | None = None) -> Answer:
            sent: dict[str, str | bytes] = {"Content-Type": "application/json", **headers}
            return request(
                base, "/api/actions/cancel", method="POST", headers=sent, body=body, host=host
            )

        assert "cancel" in request(base, "/api/stats").json()["features"]
        assert cancel({}).status == 403
        assert cancel({"X-CSRF-Token": "guess"}).status == 403
        assert cancel({"X-CSRF-Token": config.csrf, "Origin": "http://evil.example"}).status == 403
        assert cancel({"X-CSRF-Token": config.csrf}, host="evil.example").status == 421
        assert asyncio.run(job_exists())
        done = cancel({"X-CSRF-Token": config.csrf, "Origin": f"http://{here}"})
        assert done.status == 200, done.body
        assert done.json() == {
            "ok": True,
            "message": "Cancelled job order-2 of sec-pay: removed, it never runs",
        }
        assert not asyncio.run(job_exists())
        again = cancel({"X-CSRF-Token": config.csrf})
        assert again.json()["ok"] is False
        assert "was not cancelled: it is gone already" in again.json()["message"]
        unknown = request(
            base, "/api/actions/cancel", method="POST",
            headers={"Content-Type": "application/json", "X-CSRF-Token": config.csrf},
            body=json.dumps({"queue": "nope", "id": "order-2"}).encode(),
        )  # fmt: skip
        assert unknown.status == 404
