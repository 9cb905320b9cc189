"""A secret in a backend URL never reaches any output: the worker banner,
errors, log records, exception text, reprs, CLI output, the monitor's banner and pages,
configuration diagnostics. One redaction function (`pikku_queue.redact.redact_url`) serves
them all and never raises; query values are masked unless their key is a known harmless one,
and text that is not a URL is masked whole."""

from __future__ import annotations

import logging
import re
import socket
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pikku_queue.adapters import connect, masked_url
from pikku_queue.errors import PikkuQueueError
from pikku_queue.redact import is_secret_parameter, redact_text, redact_url

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import project, run  # noqa: F401  (the real CLI in a project folder)

SECRET = "S3cr3tXYZ"


@pytest.fixture(autouse=True)
def offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials (inherited by the CLI's subprocesses), so boto3 never asks the
    instance metadata service: these tests only talk to closed loopback ports."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


def hostile_urls(port: int) -> list[str]:
    return [
        f"redis://127.0.0.1:{port}/0?password={SECRET}",
        f"redis://{SECRET}@127.0.0.1:{port}/0",
        f"redis://user:{SECRET}@127.0.0.1:{port}/0",
        f"redis://:{SECRET}@127.0.0.1:{port}/0?token={SECRET}",
        f"redsi://:{SECRET}@127.0.0.1:{port}/0",  # a mistyped scheme
        f"redis://:{SECRET}@127.0.0.1:99999999/0",  # a bad port
        f"redis://:{SECRET}@127.0.0.1:abc/0",
        f"redis://:{SECRET}@[::1/0",  # an unbalanced IPv6 bracket
        f"redis://:{SECRET}@[::1]:{port}/0",
        f"rediss://:{SECRET}@127.0.0.1:{port}/x",  # a bad database number
        f"sqs://?region=eu-west-1&access_key=AK&secret_key={SECRET}&bogus=1",
        f"sqs://user:{SECRET}@host/?region=eu-west-1",
        f"sqs://?endpoint_url=http://u:{SECRET}@127.0.0.1:{port}&region=eu-west-1",
        # A secret under a short or unforeseen key: masked because the key is not a known
        # harmless one, whatever its name.
        f"redis://127.0.0.1:{port}/0?pw={SECRET}",
        f"redis://127.0.0.1:{port}/0?prefix=app&k={SECRET}",
        f"rediss://127.0.0.1:{port}/0?x-api={SECRET}&db=0",
        f"redis://127.0.0.1:{port}/0?{SECRET}",  # a bare query item
        f"redis://127.0.0.1:{port}/0?prefix={SECRET}%0A",  # a harmless key, a control character
        f"sqlite:///.pikku/x.db?pw={SECRET}",
        f"sqs://?region=eu-west-1&pw={SECRET}",
        # Not URLs at all (no scheme://): masked whole.
        f"u:{SECRET}@127.0.0.1:{port}",
        f"{SECRET}@127.0.0.1:{port}",
        f"redis:{SECRET}@127.0.0.1:{port}",
    ]


NESTED = [  # a harmless key whose value is a URL with its own secret
    f"sqs://?region=eu-west-1&queue.orders=https%3A%2F%2Fsqs.example%2F1%2Fo%3FX-Amz-Signature%3D{SECRET}",
    f"sqs://?region=eu-west-1&endpoint_url=https://sqs.example/?token={SECRET}",
]


@pytest.mark.parametrize(
    "url", [*hostile_urls(6379), f"sqlite://{SECRET}@host/x.db?sig={SECRET}", *NESTED]
)
def test_redact_url_masks_every_secret_and_keeps_the_rest(url: str) -> None:
    shown = redact_url(url)
    assert SECRET not in shown
    if "://" in url:
        assert shown.split("://")[0] == url.split("://")[0]  # still says which backend
    else:
        assert shown == "***"  # not a URL: nothing of it can be known to be harmless
    assert masked_url(url) == shown  # one function under both names


def test_redact_url_never_raises_and_keeps_urls_without_secrets() -> None:
    for url in ("sqlite:///.pikku/queue.db", "memory://", "redis://127.0.0.1:6379/0?prefix=x"):
        assert redact_url(url) == url
    for odd in ("", "://", "@", "?=&", "redis://[", "a:b@c:d@e/f?g", 12, None, b"x"):
        assert isinstance(redact_url(odd), str)
    assert redact_url("redis://:pw@h/0?Password=pw&X-Amz-Signature=pw&db=1") == (
        "redis://:***@h/0?Password=***&X-Amz-Signature=***&db=1"
    )


@pytest.mark.parametrize("url", [f"redis://user:{SECRET}@h/0?access_key={SECRET}", *NESTED])
def test_redact_text_masks_a_secret_a_library_echoed(url: str) -> None:
    assert SECRET not in redact_text(f"failed on {url}: bad auth {SECRET}", url)


@pytest.mark.parametrize("url", hostile_urls(_closed_port()))
async def test_errors_reprs_and_logs_never_show_the_secret(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []
    try:
        backend = connect(url)
    except PikkuQueueError as exc:
        shown += [str(exc), repr(exc)]
    else:
        shown += [repr(backend), str(backend)]
        try:
            await backend.counts("q")
        except Exception as exc:  # unreachable: an error that must not echo the secret
            shown += [str(exc), repr(exc)]
        finally:
            await backend.close()
    # Our own records at every level; a library's DEBUG chatter (botocore logs its endpoint
    # there) is the library's, and off unless a user turns DEBUG on for it.
    shown += [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("pikku") or record.levelno >= logging.INFO
    ]
    assert shown
    assert not [text for text in shown if SECRET in text]


def test_cli_output_never_shows_the_secret(project: Path) -> None:  # noqa: F811
    urls = hostile_urls(_closed_port())
    commands = [("worker", "--burst", "--queues", "charge"), ("enqueue", "charge", '{"id": 1}')]
    commands += [("dlq", "list", "charge-dlq")]
    for url in urls:
        for args in commands:
            done = run(project, *args, "--backend", url, ok=False)
            output = done.stdout + done.stderr
            assert SECRET not in output, (args, url, output)
            assert done.returncode == 2, (args, url, output)
            assert "Traceback" not in output, (args, url, output)


def test_worker_banner_masks_a_secret_in_the_environment(project: Path) -> None:  # noqa: F811
    import os
    import subprocess

    url = f"redis://127.0.0.1:{_closed_port()}/0?password={SECRET}"
    env = {**os.environ, "PIKKU_QUEUE_URL": url}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "pikkugen"), "worker", "--burst"],
        cwd=project, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert "password=***" in output
    assert SECRET not in output
    assert done.returncode == 2


def test_the_monitor_banner_page_and_answers_never_show_the_secret(project: Path) -> None:  # noqa: F811
    import os
    import subprocess
    import time
    import urllib.error
    import urllib.request

    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    url = f"redis://127.0.0.1:{_closed_port()}/0?prefix=app&pw={SECRET}"
    port = _closed_port()
    env = {k: v for k, v in os.environ.items() if k != "PIKKU_QUEUE_URL"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "pikkugen"), "monitor", "--backend", url,
         "--port", str(port)],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    answers: list[str] = []
    try:
        deadline = time.monotonic() + 60
        for path in ("/", "/api/stats"):
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as reply:
                        answers.append(reply.read().decode())
                    break
                except urllib.error.HTTPError as exc:  # the backend is unreachable: an error
                    answers.append(exc.read().decode())
                    break
                except OSError:
                    assert server.poll() is None, "the monitor exited"
                    assert time.monotonic() < deadline, "the monitor did not answer in 60 s"
                    time.sleep(0.2)
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert "monitor of redis://127.0.0.1" in out and "pw=***" in out
    assert "pw=***" in answers[0]  # the page names the backend, masked
    for text in [out, err, *answers]:
        assert SECRET not in text


def test_a_backend_that_is_not_a_url_is_never_echoed_by_the_config_error(tmp_path: Path) -> None:
    from pikkugen.config import ConfigError, load_config

    (tmp_path / "pyproject.toml").write_text(
        f'[tool.pikkugen]\npaths = ["."]\nbackend = "u:{SECRET}@db.internal"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    diagnostic = caught.value.to_diagnostic()
    assert diagnostic.code == "PK601"
    assert "expected a backend URL" in diagnostic.message
    assert SECRET not in diagnostic.message + (diagnostic.hint or "")


def test_scan_never_echoes_a_secret_in_the_configured_backend(project: Path) -> None:  # noqa: F811
    pyproject = project / "pyproject.toml"
    original = pyproject.read_text()
    for backend in (f"u:{SECRET}@db.internal", f"sqlite:///.pikku/q.db?pw={SECRET}"):
        lines = [
            f'backend = "{backend}"' if line.startswith("backend") else line
            for line in original.splitlines()
        ]
        pyproject.write_text("\n".join(lines) + "\n")
        done = run(project, "scan", "--check", ok=False)
        output = done.stdout + done.stderr
        assert SECRET not in output, output
        assert ("PK601" in output) if "://" not in backend else ("PK604" in output), output


#: Names our URLs document, with the adapters' own lists: each value is shown.
def _documented_parameters() -> set[str]:
    from pikku_queue.adapters.redis.url import OWN_PARAMETERS
    from pikku_queue.adapters.sqs.config import _PARAMETERS

    names = {*OWN_PARAMETERS, *(p.replace("<name>", "orders") for p in _PARAMETERS)}
    names |= {"remove_on_complete", "remove_on_fail"}  # sqlite://
    try:
        from redis.connection import URL_QUERY_ARGUMENT_PARSERS
    except ImportError:  # pragma: no cover - the redis extra is installed for the tests
        pass
    else:
        names |= set(URL_QUERY_ARGUMENT_PARSERS)
    return names


@pytest.mark.parametrize("name", sorted(_documented_parameters()))
def test_every_documented_parameter_is_shown(name: str) -> None:
    assert redact_url(f"redis://h:6379/0?{name}=10") == f"redis://h:6379/0?{name}=10"


SAFE_TEXT = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="&#=%"),
    min_size=1,
    max_size=24,
)


@settings(max_examples=300, deadline=None)
@given(
    name=SAFE_TEXT, value=SAFE_TEXT, scheme=st.sampled_from(["redis", "rediss", "sqs", "sqlite"])
)
def test_any_parameter_not_known_to_be_harmless_is_masked(
    name: str, value: str, scheme: str
) -> None:
    assume(is_secret_parameter(name))
    url = f"{scheme}://host:1/0?prefix=app&{name}={value}&db=2"
    shown = redact_url(url)
    assert shown == f"{scheme}://host:1/0?prefix=app&{name}=***&db=2"
    if len(value) >= 3 and value not in "***":
        assert value not in redact_text(f"connection to {url} failed: bad {value}", url).replace(
            shown, ""
        )


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40))
def test_text_that_is_not_a_url_is_masked_whole(text: str) -> None:
    assume(re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text) is None and text)
    assert redact_url(text) == "***"
    assert redact_url(text) == masked_url(text)
    pieces = [p for p in re.split(r"[:@/?&=#\s]+", text) if len(p) >= 3]
    shown = redact_text(f"failed: {text}", text)
    assert all(piece not in shown for piece in pieces), shown
