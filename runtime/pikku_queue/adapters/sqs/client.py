"""An asyncio face on boto3's (blocking) SQS client.

boto3 is synchronous; its calls run in a private thread pool so a 20 s long poll on one queue
never holds up another queue, a visibility heartbeat, or the processors (sync processors use
asyncio's default pool, which a handful of long polls would otherwise fill). botocore's errors
become `BackendError` with the operation named, so callers handle one exception type.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pikku_queue.adapters.sqs.config import MAX_VISIBILITY_SECONDS, SQSSettings
from pikku_queue.adapters.sqs.messages import ATTRIBUTE_NAMES, InboundMessage
from pikku_queue.errors import BackendError
from pikku_queue.redact import redact_text

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

T = TypeVar("T")


class MissingQueueError(BackendError):
    """An SQS call named a queue that does not exist: a deployment mistake, not a blip, so a
    worker says so once and stops instead of polling (and logging) for ever."""


_CREDENTIAL_KEYS = {
    "aws_access_key_id": ("aws_access_key_id", "access_key_id", "accessKeyId"),
    "aws_secret_access_key": ("aws_secret_access_key", "secret_access_key", "secretAccessKey"),
    "aws_session_token": ("aws_session_token", "session_token", "sessionToken"),
}


def _session_arguments(credentials: Mapping[str, str] | None) -> dict[str, str]:
    """boto3 Session keywords from the seed's `{accessKeyId, secretAccessKey}` or snake_case."""
    if not credentials:
        return {}
    arguments: dict[str, str] = {}
    for target, names in _CREDENTIAL_KEYS.items():
        for name in names:
            if credentials.get(name):
                arguments[target] = credentials[name]
                break
    unknown = set(credentials) - {n for names in _CREDENTIAL_KEYS.values() for n in names}
    if unknown:
        raise BackendError(f"unknown credential keys: {', '.join(sorted(unknown))}")
    return arguments


#: The error codes SQS answers a call on a queue that does not exist with (JSON / query).
_MISSING_QUEUE_CODES = ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")


def is_fifo(queue_url: str) -> bool:
    return queue_url.endswith(".fifo")


class SQSApi:
    """The SQS calls the adapter, the worker loop and the Lambda handler make."""

    def __init__(
        self,
        settings: SQSSettings,
        *,
        credentials: Mapping[str, str] | None = None,
        client: SQSClient | None = None,
        threads: int = 16,
    ) -> None:
        self.settings = settings
        self._session_arguments = _session_arguments(credentials)
        self._client = client
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pikku-sqs")
        self._urls: dict[str, str] = {}
        #: boto3 sessions are not thread-safe: the client is built once, under this lock.
        self._client_lock = threading.Lock()
        #: One lookup per queue even when many enqueues start at once.
        self._url_lock = asyncio.Lock()
        self._dead_letter_urls: dict[tuple[str, str | None], str | None] = {}

    @property
    def client(self) -> SQSClient:
        with self._client_lock:
            return self._client or self._make_client()

    def _make_client(self) -> SQSClient:
        if self._client is None:
            import boto3  # imported here: only an sqs:// backend needs it

            args = self._session_arguments
            session = boto3.session.Session(
                aws_access_key_id=args.get("aws_access_key_id"),
                aws_secret_access_key=args.get("aws_secret_access_key"),
                aws_session_token=args.get("aws_session_token"),
            )
            self._client = session.client(
                "sqs", region_name=self.settings.region, endpoint_url=self.settings.endpoint_url
            )
        return self._client

    async def _run(self, operation: str, call: Callable[[], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, call)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "?"))
            message = redact_text(
                f"{code}: {error.get('Message', exc)}", self.settings.endpoint_url
            )
            if code in _MISSING_QUEUE_CODES:
                raise MissingQueueError(
                    f"SQS {operation} failed: the queue does not exist ({message}); create it"
                    " (deploy the SAM template) or let pikkugen create it (create_queues=true)"
                ) from exc
            raise BackendError(f"SQS {operation} failed: {message}") from exc
        except BotoCoreError as exc:  # its text may hold the endpoint URL, user-info and all
            message = redact_text(str(exc), self.settings.endpoint_url)
            raise BackendError(f"SQS {operation} failed: {message}") from exc

    async def queue_url(self, name: str) -> str:
        """The URL of one of our queues (settings first, then GetQueueUrl, cached)."""
        url = self._urls.get(name) or self.settings.static_queue_url(name)
        if url is not None:
            return url
        async with self._url_lock:
            url = self._urls.get(name)
            if url is None:
                sqs_name = self.settings.queue_name(name)
                lookup = self._get_or_create if self.settings.create_queues else self._get
                call = functools.partial(lookup, sqs_name)
                url = await self._run(f"GetQueueUrl({sqs_name})", call)
                self._urls[name] = url
        return url

    def _get(self, sqs_name: str) -> str:
        return self.client.get_queue_url(QueueName=sqs_name)["QueueUrl"]

    def _get_or_create(self, sqs_name: str) -> str:
        from botocore.exceptions import ClientError

        try:
            return self._get(sqs_name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _MISSING_QUEUE_CODES:
                raise
            attributes = {"FifoQueue": "true"} if sqs_name.endswith(".fifo") else {}
            return self.client.create_queue(QueueName=sqs_name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]

    async def send(self, kwargs: dict[str, Any]) -> str:
        response = await self._run(
            "SendMessage", functools.partial(self.client.send_message, **kwargs)
        )
        return response["MessageId"]

    async def send_batch(self, queue_url: str, entries: list[dict[str, Any]]) -> BatchResult:
        """SendMessageBatch (at most 10 entries, each with an `Id`); the ids that failed, with
        SQS's reason, come back per entry (the request itself failing raises)."""
        call = functools.partial(
            self.client.send_message_batch,
            QueueUrl=queue_url,
            Entries=entries,  # type: ignore[arg-type]
        )
        return _batch_result(await self._run("SendMessageBatch", call))

    async def delete_batch(self, queue_url: str, handles: dict[str, str]) -> BatchResult:
        """DeleteMessageBatch of `{entry id: receipt handle}` (at most 10)."""
        entries = [{"Id": key, "ReceiptHandle": handle} for key, handle in handles.items()]
        call = functools.partial(
            self.client.delete_message_batch,
            QueueUrl=queue_url,
            Entries=entries,  # type: ignore[arg-type]
        )
        return _batch_result(await self._run("DeleteMessageBatch", call))

    async def set_visibility_batch(
        self, queue_url: str, entries: dict[str, tuple[str, int]]
    ) -> BatchResult:
        """ChangeMessageVisibilityBatch of `{entry id: (receipt handle, seconds)}` (at most 10)."""
        call = functools.partial(
            self.client.change_message_visibility_batch,
            QueueUrl=queue_url,
            Entries=[
                {"Id": key, "ReceiptHandle": handle, "VisibilityTimeout": _visibility(seconds)}
                for key, (handle, seconds) in entries.items()
            ],
        )
        return _batch_result(await self._run("ChangeMessageVisibilityBatch", call))

    async def receive(
        self, queue_url: str, *, limit: int, wait_seconds: int, visibility_seconds: int | None
    ) -> list[InboundMessage]:
        kwargs: dict[str, Any] = {
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": max(1, min(limit, 10)),
            "WaitTimeSeconds": wait_seconds,
            "MessageSystemAttributeNames": [
                "ApproximateReceiveCount",
                "SentTimestamp",
                "MessageGroupId",
            ],
            "MessageAttributeNames": list(ATTRIBUTE_NAMES),
        }
        if visibility_seconds is not None:
            kwargs["VisibilityTimeout"] = _visibility(visibility_seconds)
        response = await self._run(
            "ReceiveMessage", functools.partial(self.client.receive_message, **kwargs)
        )
        return [InboundMessage.from_received(m) for m in response.get("Messages", [])]

    async def delete(self, queue_url: str, receipt_handle: str) -> None:
        await self._run(
            "DeleteMessage",
            functools.partial(
                self.client.delete_message, QueueUrl=queue_url, ReceiptHandle=receipt_handle
            ),
        )

    async def set_visibility(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        """Hide a received message for `seconds` from now (0 makes it visible at once)."""
        await self._run(
            "ChangeMessageVisibility",
            functools.partial(
                self.client.change_message_visibility,
                QueueUrl=queue_url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=_visibility(seconds),
            ),
        )

    async def attributes(self, queue_url: str, names: Sequence[str]) -> dict[str, str]:
        response = await self._run(
            "GetQueueAttributes",
            functools.partial(
                self.client.get_queue_attributes,
                QueueUrl=queue_url,
                AttributeNames=list(names),  # type: ignore[arg-type]
            ),
        )
        return {str(k): v for k, v in response.get("Attributes", {}).items()}

    async def dead_letter_url(self, queue: str, configured: str | None) -> str | None:
        """Where a job of `queue` that failed for good goes: the processor's
        `dead_letter_queue`, else the queue's own RedrivePolicy target, else nowhere."""
        key = (queue, configured)
        if key in self._dead_letter_urls:
            return self._dead_letter_urls[key]
        url: str | None
        if configured is not None:
            url = await self.queue_url(configured)
        else:
            attrs = await self.attributes(await self.queue_url(queue), ["RedrivePolicy"])
            url = None
            if attrs.get("RedrivePolicy"):
                target = json.loads(attrs["RedrivePolicy"]).get("deadLetterTargetArn", "")
                url = await self._url_for_arn(str(target)) if target else None
        self._dead_letter_urls[key] = url
        return url

    async def _url_for_arn(self, arn: str) -> str:
        """arn:aws:sqs:region:account:name → its URL (GetQueueUrl with the owner's account)."""
        parts = arn.split(":")
        if len(parts) != 6:
            raise BackendError(f"not an SQS queue ARN: {arn!r}")
        response = await self._run(
            f"GetQueueUrl({parts[5]})",
            functools.partial(
                self.client.get_queue_url, QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]
            ),
        )
        return response["QueueUrl"]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class BatchResult:
    """One batch call's answer: the entry ids that failed, each with SQS's code and message,
    and whether the sender is at fault (retrying such an entry cannot help)."""

    failed: Mapping[str, str]
    sender_fault: frozenset[str]


def _batch_result(response: Mapping[str, Any]) -> BatchResult:
    failed: dict[str, str] = {}
    sender: set[str] = set()
    for entry in response.get("Failed", []):
        key = str(entry.get("Id"))
        failed[key] = f"{entry.get('Code', '?')}: {entry.get('Message', '')}".rstrip(": ")
        if entry.get("SenderFault"):
            sender.add(key)
    return BatchResult(failed=failed, sender_fault=frozenset(sender))


def _visibility(seconds: int) -> int:
    return max(0, min(int(seconds), MAX_VISIBILITY_SECONDS))
