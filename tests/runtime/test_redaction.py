"""A secret in a backend URL never reaches any output: the worker banner,
errors, log records, exception text, reprs, CLI output. One redaction function
(`pikku_queue.redact.redact_url`) serves them all and never raises."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import pytest
from pikku_queue.adapters import connect, masked_url
from pikku_queue.errors import PikkuQueueError
from pikku_queue.redact import redact_text, redact_url

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
    ]


@pytest.mark.parametrize("url", [*hostile_urls(6379), f"sqlite://{SECRET}@host/x.db?sig={SECRET}"])
def test_redact_url_masks_every_secret_and_keeps_the_rest(url: str) -> None:
    shown = redact_url(url)
    assert SECRET not in shown
    assert shown.split("://")[0] == url.split("://")[0]  # still says which backend
    assert masked_url(url) == shown  # one function under both names


def test_redact_url_never_raises_and_keeps_urls_without_secrets() -> None:
    for url in ("sqlite:///.pikku/queue.db", "memory://", "redis://127.0.0.1:6379/0?prefix=x"):
        assert redact_url(url) == url
    for odd in ("", "://", "@", "?=&", "redis://[", "a:b@c:d@e/f?g", 12, None, b"x"):
        assert isinstance(redact_url(odd), str)
    assert redact_url("redis://:pw@h/0?Password=pw&X-Amz-Signature=pw&db=1") == (
        "redis://:***@h/0?Password=***&X-Amz-Signature=***&db=1"
    )


def test_redact_text_masks_a_secret_a_library_echoed() -> None:
    url = f"redis://user:{SECRET}@h/0?access_key={SECRET}"
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
