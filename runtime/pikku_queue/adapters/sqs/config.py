"""Reading an `sqs://` URL into settings.

The URL carries where queues live, never secrets: credentials come from boto3's standard chain
(environment, profile, instance or Lambda role) or from the explicit `credentials=` argument of
`SQSQueueAdapter`, so a URL can sit in a config file, an environment variable or a generated
SAM template without leaking anything.

    sqs://?region=eu-west-1
          &prefix=https://sqs.eu-west-1.amazonaws.com/123456789012/shop-
          &queue.email-queue=https://sqs.eu-west-1.amazonaws.com/123456789012/mail
          &endpoint_url=http://127.0.0.1:5000
          &wait_time_seconds=20
          &group_key=customer_id
          &create_queues=true

A queue's URL is, in this order: its `queue.<name>=` entry; `prefix` + name when `prefix` is a
URL (holds `://`); otherwise the URL SQS returns for the queue named `prefix` + name
(GetQueueUrl, looked up once). `create_queues=true` (for local endpoints and tests) creates a
queue that does not exist yet, without a redrive policy; in AWS the SAM template creates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pikku_queue.errors import BackendError
from pikku_queue.redact import redact_url

#: SQS's longest long poll.
MAX_WAIT_TIME_SECONDS = 20
#: SQS's longest visibility timeout (12 h).
MAX_VISIBILITY_SECONDS = 43_200
#: SQS's longest per-message delay (DelaySeconds).
MAX_DELAY_SECONDS = 900
#: SQS's largest message: body plus message attributes.
MAX_MESSAGE_BYTES = 1_048_576

_PARAMETERS = (
    "region",
    "endpoint_url",
    "prefix",
    "wait_time_seconds",
    "group_key",
    "create_queues",
    "queue.<name>",
)


@dataclass(frozen=True)
class SQSSettings:
    region: str | None = None
    endpoint_url: str | None = None
    #: A queue-URL prefix (holds "://") or a queue-name prefix (resolved with GetQueueUrl).
    prefix: str = ""
    #: Explicit queue name → queue URL entries; they win over `prefix`.
    queue_urls: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Long-poll wait of the worker loop, 0–20 s. Tests shorten it so a stop is noticed quickly.
    wait_time_seconds: int = MAX_WAIT_TIME_SECONDS
    #: FIFO queues only: the payload field whose value is the MessageGroupId (default: the
    #: queue name, which keeps the whole queue in order).
    group_key: str | None = None
    #: Create a missing queue on first use (local development and tests only).
    create_queues: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.wait_time_seconds <= MAX_WAIT_TIME_SECONDS:
            raise BackendError(
                f"wait_time_seconds must be 0-{MAX_WAIT_TIME_SECONDS} "
                f"(got {self.wait_time_seconds})"
            )

    def static_queue_url(self, name: str) -> str | None:
        """The queue's URL when the settings alone give it (no GetQueueUrl needed)."""
        if name in self.queue_urls:
            return self.queue_urls[name]
        if "://" in self.prefix and not self.create_queues:
            return self.prefix + name
        return None

    def queue_name(self, name: str) -> str:
        """The SQS queue name to look up for one of our queue names."""
        return self.prefix.rsplit("/", 1)[-1] + name

    def our_name(self, sqs_name: str) -> str:
        """The inverse of `queue_name`: `shop-email-dlq` → `email-dlq` under prefix `shop-`."""
        name_prefix = self.prefix.rsplit("/", 1)[-1]
        if name_prefix and sqs_name.startswith(name_prefix):
            return sqs_name[len(name_prefix) :]
        return sqs_name


def parse_url(url: str) -> SQSSettings:
    """Settings from an `sqs://?…` URL; an unknown parameter is an error, not ignored."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unbalanced IPv6 bracket
        raise BackendError(f"not a valid URL: {redact_url(url)!r} ({exc})") from None
    if parts.scheme != "sqs":
        raise BackendError(f"not an sqs:// URL: {redact_url(url)!r}")
    if parts.netloc or parts.path not in ("", "/"):
        raise BackendError(
            "an sqs:// URL carries everything as query parameters (sqs://?region=…); "
            f"got {redact_url(url)!r}"
        )
    values: dict[str, Any] = {}
    queue_urls: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key.startswith("queue.") and len(key) > len("queue."):
            queue_urls[key[len("queue.") :]] = value
        elif key == "prefix":
            values[key] = value
        elif key in ("region", "endpoint_url", "group_key"):
            values[key] = value or None
        elif key == "create_queues":
            if value not in ("true", "false"):
                raise BackendError(f"create_queues must be true or false, got {value[:20]!r}")
            values[key] = value == "true"
        elif key == "wait_time_seconds":
            if not value.isdigit():
                raise BackendError(f"wait_time_seconds must be a whole number, got {value!r}")
            values[key] = int(value)
        else:
            known = ", ".join(_PARAMETERS)
            raise BackendError(
                f"unknown sqs:// URL parameter {key!r} in {redact_url(url)!r}; known: {known}"
            )
    return SQSSettings(queue_urls=MappingProxyType(queue_urls), **values)
