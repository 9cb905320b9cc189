"""A real SQS endpoint for the session: moto's server on a free loopback port, spoken to over
HTTP by boto3 exactly as AWS would be. Each test gets its own queue-name prefix, so tests share
the server without seeing each other's queues."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from mypy_boto3_sqs import SQSClient
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter
from sqs_support import REGION, Queues


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    env = pytest.MonkeyPatch()
    # Fake credentials, and no shared config: nothing here may ever reach a real account.
    env.setenv("AWS_ACCESS_KEY_ID", "testing")
    env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env.setenv("AWS_SESSION_TOKEN", "testing")
    env.setenv("AWS_DEFAULT_REGION", REGION)
    env.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        env.undo()


@pytest.fixture(scope="session")
def sqs(moto_endpoint: str) -> SQSClient:
    return boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)


@pytest.fixture
def queues(sqs: SQSClient, moto_endpoint: str) -> Queues:
    return Queues(sqs=sqs, endpoint=moto_endpoint, prefix=f"t{uuid.uuid4().hex[:10]}-")


@pytest.fixture
def url_prefix(queues: Queues) -> str:
    return f"{queues.endpoint}/123456789012/{queues.prefix}"


@pytest.fixture
def backend_url(queues: Queues, url_prefix: str) -> str:
    return f"sqs://?region={REGION}&endpoint_url={queues.endpoint}&prefix={url_prefix}&wait_time_seconds=1"


@pytest.fixture
async def backend(backend_url: str) -> Any:
    from pikku_queue.adapters.sqs.backend import from_url

    adapter: SQSQueueAdapter = from_url(backend_url)
    yield adapter
    await adapter.close()
