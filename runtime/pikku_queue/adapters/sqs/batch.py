"""Batched SQS calls: SendMessageBatch for a bulk enqueue, and the worker's deletes and
visibility changes gathered into DeleteMessageBatch / ChangeMessageVisibilityBatch.

SQS bills every request and takes at most 10 entries (and 1 MiB of messages) a call, so the
floor is 0.3 requests a job: a tenth of a send, a receive and a delete each. Every entry has its
own answer: a failed one is reported for its own job (never dropped silently); one that failed
on SQS's side (not the sender's) is tried again first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pikku_queue.adapters.sqs.client import BatchResult, SQSApi
from pikku_queue.calls import split_calls
from pikku_queue.errors import BackendError

logger = logging.getLogger("pikku_queue.sqs")

#: SQS's most entries in one batch call.
MAX_ENTRIES = 10
#: SQS's most bytes of messages in one SendMessageBatch (the sum of the entries' sizes).
MAX_BATCH_BYTES = 1_048_576
#: Tries of an entry that failed on SQS's side (SenderFault false) before it is reported.
ENTRY_TRIES = 3
#: How long a delete or visibility change waits for others to share its request (s). The jobs
#: of one receive finish within a few ms of each other; a lone one waits no longer than this.
LINGER_S = 0.005


def chunks(sizes: Sequence[int]) -> list[list[int]]:
    """Indexes of `sizes` in order, cut into calls of ≤ MAX_ENTRIES and ≤ MAX_BATCH_BYTES."""
    return split_calls(sizes, max_items=MAX_ENTRIES, max_bytes=MAX_BATCH_BYTES)


async def send_all(
    api: SQSApi, queue_url: str, entries: Sequence[dict[str, Any]], sizes: Sequence[int]
) -> dict[int, str]:
    """Send `entries` (SendMessage arguments without QueueUrl) in batch calls; returns the
    index → reason of each entry that was not sent (empty when all were)."""
    failures: dict[int, str] = {}

    async def one_call(indexes: list[int]) -> None:
        pending = list(indexes)
        for attempt in range(ENTRY_TRIES):
            batch = [{**entries[i], "Id": str(i)} for i in pending]
            try:
                result = await api.send_batch(queue_url, batch)
            except BackendError as exc:  # the whole request: every entry of it is unsent
                for i in pending:
                    failures[i] = str(exc)
                return
            retry = [i for i in pending if _retryable(result, str(i))]
            for i in pending:
                if str(i) in result.failed and (i not in retry or attempt == ENTRY_TRIES - 1):
                    failures[i] = result.failed[str(i)]
            pending = retry
            if not pending:
                return
            await asyncio.sleep(0.05 * 2**attempt)

    await asyncio.gather(*(one_call(indexes) for indexes in chunks(sizes)))
    return failures


def _retryable(result: BatchResult, key: str) -> bool:
    return key in result.failed and key not in result.sender_fault


class SettleBatcher:
    """Gathers the deletes and visibility changes of one worker into batch calls per queue URL.
    Each caller awaits its own entry's answer (BackendError when it failed); a caller that is
    cancelled before its call is made (a heartbeat at a verdict) drops out of it."""

    def __init__(self, api: SQSApi, linger_s: float = LINGER_S) -> None:
        self.api = api
        self.linger_s = linger_s
        self._pending: dict[tuple[str, str], list[tuple[Any, asyncio.Future[None]]]] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._calls: set[asyncio.Task[None]] = set()

    async def delete(self, queue_url: str, receipt_handle: str) -> None:
        await self._add("delete", queue_url, receipt_handle)

    async def set_visibility(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        await self._add("visibility", queue_url, (receipt_handle, seconds))

    def _add(self, kind: str, queue_url: str, entry: Any) -> Awaitable[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        key = (kind, queue_url)
        pending = self._pending.setdefault(key, [])
        pending.append((entry, future))
        if len(pending) >= MAX_ENTRIES:
            self._flush(key)
        elif key not in self._timers:
            self._timers[key] = loop.call_later(self.linger_s, self._flush, key)
        return future

    def _flush(self, key: tuple[str, str]) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        items = [item for item in self._pending.pop(key, []) if not item[1].done()]
        for start in range(0, len(items), MAX_ENTRIES):
            task = asyncio.ensure_future(self._call(key, items[start : start + MAX_ENTRIES]))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _call(
        self, key: tuple[str, str], items: list[tuple[Any, asyncio.Future[None]]]
    ) -> None:
        kind, queue_url = key
        call: Callable[[], Awaitable[BatchResult]]
        if kind == "delete":
            call = lambda: self.api.delete_batch(  # noqa: E731
                queue_url, {str(i): handle for i, (handle, _) in enumerate(items)}
            )
        else:
            call = lambda: self.api.set_visibility_batch(  # noqa: E731
                queue_url, {str(i): entry for i, (entry, _) in enumerate(items)}
            )
        operation = "DeleteMessage" if kind == "delete" else "ChangeMessageVisibility"
        try:
            result = await call()
        except BackendError as exc:
            for _, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException as exc:  # never strand a caller
            for _, future in items:
                if not future.done():
                    future.set_exception(BackendError(f"SQS {operation} failed: {exc!r}"))
            raise
        for i, (_, future) in enumerate(items):
            if future.done():
                continue
            reason = result.failed.get(str(i))
            if reason is None:
                future.set_result(None)
            else:
                future.set_exception(BackendError(f"SQS {operation} failed: {reason}"))

    async def close(self) -> None:
        """Make every call still pending now and wait for all of them."""
        for key in list(self._pending):
            self._flush(key)
        while self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
