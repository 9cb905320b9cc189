"""The producer API: typed queues, `queue_job`, and handles to follow a job.

A payload is validated against the queue's input type before anything is sent, so a bad job
fails in the code that made it (with the field that is wrong), not minutes later in a worker.
It is then dumped to JSON-ready data: what crosses the backend is always plain JSON.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, JsonValue, TypeAdapter, ValidationError

from pikku_queue import adapters, tracing
from pikku_queue.adapters import connect, masked_url
from pikku_queue.backend import (
    Backend,
    BulkEnqueue,
    CancelsJobs,
    Closable,
    JobWatch,
    NotifiesFinished,
    TransactionalEnqueue,
    WatchesJobs,
)
from pikku_queue.capabilities import DEDUPE_FEATURES, Feature
from pikku_queue.errors import (
    BackendError,
    InvalidEnqueueOptionsError,
    JobCancelledError,
    JobFailedError,
    PayloadValidationError,
    UnknownQueueError,
    without_error_urls,
)
from pikku_queue.options import (
    Dedupe,
    EnqueueOptions,
    ProcessorOptions,
    Repeat,
    UnrenderableDedupeKey,
    option_problems,
)
from pikku_queue.project import anchor_url, stale_message
from pikku_queue.records import FINAL_STATES, CancelResult, EnqueueRequest, JobInfo, JobState
from pikku_queue.registry import Registry, did_you_mean, known_registries

#: What `repeat=` takes on every enqueue path: a `Repeat`, or its fields as a mapping.
RepeatArg = Repeat | Mapping[str, Any] | None
DedupeArg = Dedupe | Mapping[str, Any] | None
T = TypeVar("T")
In = TypeVar("In")
Out = TypeVar("Out")

#: Backends opened from a URL when no default was set, one per URL.
_opened: dict[str, Backend] = {}
#: Every TypedQueue created in this process, by name: `queue_job` validates through them.
known_queues: dict[str, TypedQueue[Any, Any]] = {}
#: What an untyped payload (`queue_job` where only the registry knows the queue) must already
#: be: JSON data (dicts with string keys, lists, strings, numbers, booleans, None), the type
#: the typed path's rule is applied with. pydantic's `Any` would send a datetime, a set, a
#: complex or `Decimal('NaN')` as a string or a list the processor never asked for.
_JSON_DATA: TypeAdapter[JsonValue] = TypeAdapter(JsonValue)


def set_default_backend(backend: Backend | str | None) -> None:
    """Use this backend (or URL) when a call names none; None goes back to `$PIKKU_QUEUE_URL`."""
    adapters.set_default(connect(backend) if isinstance(backend, str) else backend)


def get_default_backend(configured_url: str | None = None, root: Path | None = None) -> Backend:
    """The backend of `pikku_queue.adapters.resolve_backend` (the one order every caller uses,
    the worker too, so producer and worker agree), with `configured_url` the project's
    `[tool.pikkugen] backend`, which generated queues pass, and a relative SQLite path anchored
    at `root`, the project root (generated queues pass theirs). Each URL is opened once per
    process."""
    return backend_for(None, configured_url, root)


#: What every `backend=` parameter takes: an open backend, a URL, or None for the default.
BackendArg = Backend | str | None
#: Classes already seen to implement `Backend`: a runtime-checkable protocol's isinstance walks
#: every member (tens of µs on Python 3.11), more than a memory backend's whole enqueue.
_BACKEND_TYPES: set[type] = set()


def backend_for(
    backend: BackendArg, configured_url: str | None = None, root: Path | None = None
) -> Backend:
    """The backend a call's `backend=` names: a backend is used as it is; a URL (what the CLI's
    `--backend` takes) is the first step of the one resolution order, anchored and opened
    once per process like the default; None falls through to `get_default_backend`'s order.
    Anything else is a TypeError that says what the parameter takes."""
    if backend is not None and not isinstance(backend, str):
        if type(backend) in _BACKEND_TYPES:
            return backend
        if not isinstance(backend, Backend):
            raise TypeError(
                f"backend= takes a backend (e.g. pikku_queue.connect(url)) or a backend URL "
                f"such as 'sqlite:///.pikku/queue.db', not {type(backend).__name__}"
            )
        _BACKEND_TYPES.add(type(backend))
        return backend
    target = adapters.resolve_backend(backend or None, configured_url)
    if not isinstance(target, str):
        return target
    url = anchor_url(target, root)
    opened = _opened.get(url)
    if opened is None or (isinstance(opened, Closable) and opened.closed):
        opened = _opened[url] = connect(url)
    return opened


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code (Django/Flask views), even under a running loop: there it
    runs on a helper thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:
        # Outside the `except` block: inside it, every exception the coroutine raises (a
        # processor's, a refused connection) would carry "RuntimeError: no running event
        # loop … During handling of the above exception, another exception occurred".
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="pikku-queue-sync")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


class JobHandle(Generic[T]):
    """A job that was enqueued: its id and queue, and ways to follow it."""

    def __init__(
        self,
        id: str,
        queue: str,
        backend: Backend,
        output: TypeAdapter[T] | None = None,
    ) -> None:
        self.id = id
        self.queue = queue
        self.backend = backend
        self._output = output

    def __repr__(self) -> str:
        return f"JobHandle(queue={self.queue!r}, id={self.id!r})"

    async def info(self) -> JobInfo | None:
        return await self.backend.get_job(self.queue, self.id)

    async def status(self) -> JobState:
        info = await self.info()
        if info is None:
            raise self._missing()
        return info.state

    def _missing(self) -> BackendError:
        return BackendError(
            f"job {self.id} of queue {self.queue!r} is not in {masked_url(self.backend.url)}"
            " (removed after it finished, e.g. by remove_on_complete, or never stored there)"
        )

    async def progress(self) -> dict[str, Any] | None:
        info = await self.info()
        return None if info is None else info.progress

    async def cancel(self) -> CancelResult:
        """Cancel the job: waiting or delayed, it is removed and never runs (`REMOVED`);
        running, its worker is told to stop it (`REQUESTED`: an async processor is cancelled,
        a sync one sees `ctx.cancelled`) and it ends `cancelled`, neither retried nor
        dead-lettered. `FINISHED`, `SCHEDULED`, `NOT_FOUND`: nothing changed (see
        `CancelResult`). A backend that cannot cancel is a BackendError naming why."""
        return await cancel_job(self.backend, self.queue, self.id)

    def cancel_sync(self) -> CancelResult:
        """`cancel` from sync code (a Django or Flask view)."""
        return run_sync(self.cancel())

    async def wait(self, timeout: float | None = None) -> JobState:
        """Wait until the job is finished (completed, failed or dead-lettered) and return that
        state, without raising for a failure. TimeoutError after `timeout` s; BackendError at
        once when the job cannot be found."""
        _check_supported(self.backend, "results", "waiting for a job")
        return (await self._finished(timeout)).state

    async def result(self, timeout: float | None = None) -> T:
        """Wait until the job finishes and return its result (typed through the queue's output
        type). Raises JobFailedError if it failed for good, TimeoutError after `timeout` s, and
        BackendError at once when the job cannot be found (waiting would never end).

        A backend that pushes (Redis: BullMQ's events stream, one reader per queue shared by
        every waiter; SQLite and memory: a worker settling in this process; PostgreSQL:
        NOTIFY when a job of the queue finishes) wakes the wait as the job ends; otherwise,
        and for a SQLite worker in another process, the job is read again from 2 ms on, each
        pause half as long again, at most 250 ms."""
        _check_supported(self.backend, "results", "job results")
        info = await self._finished(timeout)
        if info.state != JobState.COMPLETED:
            error = info.error
            detail = f"{error.type}: {error.message}" if error else "no error recorded"
            failed = JobCancelledError if info.state is JobState.CANCELLED else JobFailedError
            raise failed(
                f"job {self.id} of queue {self.queue!r} ended {info.state.value} after "
                f"{info.attempts_made} attempt(s): {detail}"
            )
        if self._output is None:
            return info.result  # type: ignore[no-any-return]
        return self._output.validate_python(info.result)

    async def _finished(self, timeout: float | None) -> JobInfo:
        try:
            return await asyncio.wait_for(self._wait_final(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"job {self.id} of queue {self.queue!r} did not finish within {timeout} s"
                " (it keeps running: call result() again to wait longer)"
            ) from None

    async def _wait_final(self) -> JobInfo:
        if isinstance(self.backend, WatchesJobs):
            # Registered before the first read: a job that ends after that read wakes us, one
            # that ended before it is what the read sees.
            async with self.backend.watch_job(self.queue, self.id) as watch:
                return await self._read_until_final(watch)
        if isinstance(self.backend, NotifiesFinished):
            # Woken when a job of the queue finishes (PostgreSQL's NOTIFY): read once then,
            # and only every half second without a wake-up (a lost notification).
            async with self.backend.watch_finished(self.queue) as finished:
                return await self._poll(finished.wait, 0.05, 0.5)
        return await self._read_until_final(None)

    async def _poll(
        self, pause: Callable[[float], Awaitable[object]], first: float, most: float
    ) -> JobInfo:
        delay = first
        while True:
            info = await self.info()
            if info is None:
                raise self._missing()
            if info.state in FINAL_STATES:
                return info
            await pause(delay)
            delay = min(delay * 1.5, most)

    async def _read_until_final(self, watch: JobWatch | None) -> JobInfo:
        # From 2 ms, growing by half: a job that takes a few ms is seen within about a
        # millisecond or two of its end, for six reads in the first 20 ms; a long job is read
        # every 250 ms. A push cuts a pause short; where every change pushes, the job is read
        # again only on a push (or every `recheck_s`, a safety net).
        pause = 0.002
        while True:
            info = await self.info()
            if info is None:
                raise self._missing()
            if info.state in FINAL_STATES:
                return info
            if watch is None:
                await asyncio.sleep(pause)
            elif watch.recheck_s is not None:
                await watch.changed(watch.recheck_s)
                continue
            else:
                await watch.changed(pause)
            pause = min(pause * 1.5, 0.25)


async def cancel_job(backend: Backend, queue: str, job_id: str) -> CancelResult:
    """`JobHandle.cancel` by queue and id (what `pikkugen cancel` and the web monitor call)."""
    _check_supported(backend, "cancel", "cancelling jobs")
    if not isinstance(backend, CancelsJobs):
        raise BackendError(f"{masked_url(backend.url)} does not support cancelling jobs")
    return await backend.cancel_job(queue, job_id)


def _check_supported(backend: Backend, feature: Feature, what: str) -> None:
    if not backend.capabilities.supports(feature):
        note = backend.capabilities.notes.get(feature, "")
        raise BackendError(
            f"{masked_url(backend.url)} does not support {what}" + (f" ({note})" if note else "")
        )


async def _send(
    target: Backend, requests: Sequence[EnqueueRequest], connection: Any = None
) -> list[str]:
    """Store `requests` on `target`, traced: in one round trip when the backend can, and with
    `connection` inside the caller's open database transaction (`TransactionalEnqueue`)."""
    if connection is not None:
        if not isinstance(target, TransactionalEnqueue):
            raise BackendError(
                f"{masked_url(target.url)} cannot enqueue inside your transaction"
                " (connection= needs a backend that stores jobs in your database: postgresql://)"
            )
        return await tracing.enqueue_many(
            target, requests, lambda reqs: target.enqueue_in_transaction(connection, reqs)
        )
    if len(requests) == 1:
        return [await tracing.enqueue(target, requests[0])]
    if isinstance(target, BulkEnqueue):
        return await tracing.enqueue_many(target, requests, target.enqueue_many)
    return list(await asyncio.gather(*(tracing.enqueue(target, r) for r in requests)))


def _bind(target: Backend, connection: Any) -> Any:
    """A sync caller's connection resolved in its own thread and context (Django's is local
    to them), before the enqueue runs in an event loop."""
    if connection is not None and isinstance(target, TransactionalEnqueue):
        return target.bind_connection(connection)
    return connection


def enqueue_options(
    *,
    delay: int | None = None,
    priority: int | None = None,
    job_id: str | None = None,
    repeat: RepeatArg = None,
    dedupe: DedupeArg = None,
) -> EnqueueOptions:
    """Validate one job's enqueue options through `EnqueueOptions`, the one model every enqueue
    path uses; a broken rule raises `InvalidEnqueueOptionsError` naming the option."""
    if delay is None and priority is None and job_id is None and repeat is None and dedupe is None:
        # The common call: nothing to validate (the model is frozen). Every parameter is
        # tested here: tests/runtime/test_enqueue_options.py holds them to the model's fields.
        return _NO_OPTIONS
    try:
        return EnqueueOptions.model_validate(
            {
                "delay": delay,
                "priority": priority,
                "job_id": job_id,
                "repeat": repeat,
                "dedupe": dedupe,
            }
        )
    except ValidationError as exc:
        raise InvalidEnqueueOptionsError(describe_options_error(exc)) from None


_NO_OPTIONS = EnqueueOptions()


def describe_options_error(exc: ValidationError) -> str:
    """One line per broken option, e.g. `job_id: a job_id cannot contain ':' …`."""
    lines = [
        f"{'.'.join(str(part) for part in problem.where) or 'options'}: {problem.message}"
        for problem in option_problems(exc)
    ]
    return "invalid enqueue options: " + "; ".join(lines)


def _request(
    backend: Backend,
    queue: str,
    payload: Any,
    job: EnqueueOptions,
    options: ProcessorOptions | None,
) -> EnqueueRequest:
    delay, priority, job_id, repeat = job.delay, job.priority, job.job_id, job.repeat
    if options is not None:
        delay = options.delay if delay is None else delay
        if priority is None and backend.capabilities.supports("priority"):
            # A processor's default priority is a preference, not a demand: on a backend
            # without priorities (the generator already warned, PK801) jobs go without it.
            # A priority given for this one job is still refused below.
            priority = options.priority
    delay = delay or 0
    if delay:
        _check_supported(backend, "delay", "delayed jobs")
        limit = backend.capabilities.max_delay_ms
        if limit is not None and delay > limit:
            raise InvalidEnqueueOptionsError(
                f"invalid enqueue options: delay: {masked_url(backend.url)} holds a delay of at "
                f"most {limit} ms (got {delay})"
            )
    if priority is not None:
        _check_supported(backend, "priority", "priorities")
    if job_id is not None:
        _check_supported(backend, "job_id", "job ids")
    if repeat is not None:
        _check_supported(backend, "cron", "repeat schedules")
        if not backend.capabilities.job_repeat:
            note = backend.capabilities.notes.get("cron", "")
            raise BackendError(
                f"{masked_url(backend.url)} does not support a per-job Repeat at enqueue"
                + (f" ({note})" if note else "")
            )
    dedupe, dedupe_key = _dedupe(backend, job, options, payload)
    return EnqueueRequest(
        queue=queue,
        payload=payload,
        job_id=job_id,
        delay_ms=delay,
        priority=priority,
        repeat=repeat,
        dedupe=dedupe,
        dedupe_key=dedupe_key,
    )


def _dedupe(
    backend: Backend, job: EnqueueOptions, options: ProcessorOptions | None, payload: Any
) -> tuple[Dedupe | None, str | None]:
    """The job's deduplication and its key: its own `dedupe=` (refused where the backend
    cannot honour its mode), else its processor's (left out there, as a processor's default
    priority is: the generator already warned, PK801). A schedule is not deduplicated: it is
    keyed by its own identity (`EnqueueRequest.schedule_key`)."""
    dedupe = job.dedupe
    if dedupe is not None:
        if job.repeat is not None:
            raise InvalidEnqueueOptionsError(
                "invalid enqueue options: dedupe: a repeat schedule is not deduplicated "
                "(enqueueing it again updates the one schedule); drop dedupe= or repeat="
            )
        feature = DEDUPE_FEATURES[dedupe.mode]
        _check_supported(backend, feature, f"dedupe mode {dedupe.mode!r}")
    elif options is not None and options.dedupe is not None and job.repeat is None:
        if not backend.capabilities.supports(DEDUPE_FEATURES[options.dedupe.mode]):
            return None, None
        dedupe = options.dedupe
    if dedupe is None:
        return None, None
    try:
        return dedupe, dedupe.render(payload)
    except UnrenderableDedupeKey as exc:
        raise InvalidEnqueueOptionsError(f"invalid enqueue options: dedupe: {exc}") from None


def dump_payload(adapter: TypeAdapter[Any], queue: str, data: Any) -> Any:
    """`data` validated by `adapter` and dumped to its JSON form, which is validated again, as
    the worker will: a model instance is not revalidated by pydantic, so one built with
    `model_construct` (or mutated after construction) could otherwise carry invalid values
    past enqueue. Whatever cannot be validated or written (a `model_construct`ed bytes field
    that is not UTF-8, a value of another type than its field's, which pydantic would only warn
    about) is a `PayloadValidationError`; the backend's strict writer then refuses NaN and
    Infinity the same way."""
    try:
        payload = adapter.dump_python(adapter.validate_python(data), mode="json", warnings="error")
        adapter.validate_python(payload)
    except ValidationError as exc:
        fields = tuple(
            dict.fromkeys(".".join(str(part) for part in error["loc"]) for error in exc.errors())
        )
        raise PayloadValidationError(queue, without_error_urls(str(exc)), fields) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise PayloadValidationError(
            queue, f"not JSON-serialisable: {type(exc).__name__}: {exc}"
        ) from None
    return payload


def untyped_payload(queue: str, data: Any) -> Any:
    """The JSON form of a payload for a queue whose input type this process does not know:
    a pydantic model or dataclass instance by its own type's rule (as the typed path would);
    anything else must already be JSON data, refused otherwise rather than converted."""
    if isinstance(data, BaseModel) or (is_dataclass(data) and not isinstance(data, type)):
        return dump_payload(TypeAdapter(type(data)), queue, data)
    try:
        return _JSON_DATA.validate_python(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        # JsonValue's locations alternate a container tag and a key: ("dict", "a", "list", 1)
        path = [str(part) for part in error["loc"][1::2]]
        if error["loc"][-1:] == ("[key]",):
            where = "a key" + (f" in {'.'.join(path[:-1])}" if path[:-1] else "")
        else:
            where = ".".join(path) if path else "the payload"
        given = error.get("input")
        raise PayloadValidationError(
            queue,
            f"not JSON-serialisable: {where} is {type(given).__name__} {repr(given)[:60]}; without the "
            "queue's type (import the generated client) a payload is sent only as JSON values "
            "(dicts with string keys, lists, str, int, float, bool, None) or as a model",
        ) from None


class TypedQueue(Generic[In, Out]):
    """A queue with its payload and result types: what the generated client builds per queue."""

    def __init__(
        self,
        name: str,
        input: TypeAdapter[In],
        output: TypeAdapter[Out],
        options: ProcessorOptions | None = None,
        *,
        backend_url: str | None = None,
        root: Path | None = None,
    ) -> None:
        self.name = name
        self.input = input
        self.output = output
        self.options = options
        #: The project's configured backend, used when neither the call, `set_default_backend`
        #: nor `$PIKKU_QUEUE_URL` names one.
        self.backend_url = backend_url
        #: The project root a relative SQLite path is anchored at (None: the current folder).
        self.root = root
        known_queues[name] = self

    def dump(self, data: In) -> Any:
        """Validate `data` against the input type and return its JSON-ready form
        (`dump_payload`)."""
        return dump_payload(self.input, self.name, data)

    async def enqueue(
        self,
        data: In,
        *,
        delay: int | None = None,
        priority: int | None = None,
        job_id: str | None = None,
        repeat: RepeatArg = None,
        dedupe: DedupeArg = None,
        backend: BackendArg = None,
        connection: Any = None,
    ) -> JobHandle[Out]:
        """Validate and store one job. `connection`: the caller's open database connection
        or session (PostgreSQL), so the job is written inside that transaction: workers see
        it once it commits, and a rollback takes it away."""
        job_options = enqueue_options(
            delay=delay, priority=priority, job_id=job_id, repeat=repeat, dedupe=dedupe
        )
        payload = self.dump(data)
        target = backend_for(backend, self.backend_url, self.root)
        request = _request(target, self.name, payload, job_options, self.options)
        if connection is None:  # the common call, one coroutine less than `_send`'s
            job = await tracing.enqueue(target, request)
        else:
            [job] = await _send(target, [request], connection)
        return JobHandle(job, self.name, target, self.output)

    def enqueue_sync(
        self,
        data: In,
        *,
        delay: int | None = None,
        priority: int | None = None,
        job_id: str | None = None,
        repeat: RepeatArg = None,
        dedupe: DedupeArg = None,
        backend: BackendArg = None,
        connection: Any = None,
    ) -> JobHandle[Out]:
        """`enqueue` for sync code (`connection`: e.g. Django's, inside `transaction.atomic`)."""
        target = backend_for(backend, self.backend_url, self.root)
        connection = _bind(target, connection)
        return run_sync(
            self.enqueue(
                data,
                delay=delay,
                priority=priority,
                job_id=job_id,
                repeat=repeat,
                dedupe=dedupe,
                backend=target,
                connection=connection,
            )
        )

    async def enqueue_many(
        self,
        items: Sequence[In],
        *,
        delay: int | None = None,
        priority: int | None = None,
        dedupe: DedupeArg = None,
        backend: BackendArg = None,
        connection: Any = None,
    ) -> list[JobHandle[Out]]:
        """Enqueue many jobs in one round trip when the backend can (SQLite, memory, Redis,
        PostgreSQL: one statement), with `connection` inside the caller's transaction."""
        job_options = enqueue_options(delay=delay, priority=priority, dedupe=dedupe)
        payloads = []
        for index, item in enumerate(items):
            try:
                payloads.append(self.dump(item))
            except PayloadValidationError as exc:  # which item, not only which field
                raise PayloadValidationError(
                    self.name,
                    f"item {index}: {exc.detail}",
                    tuple(f"[{index}].{field}" if field else f"[{index}]" for field in exc.fields),
                ) from None
        target = backend_for(backend, self.backend_url, self.root)
        requests = [
            _request(target, self.name, payload, job_options, self.options) for payload in payloads
        ]
        if not requests:
            return []
        ids = await _send(target, requests, connection)
        return [JobHandle(job, self.name, target, self.output) for job in ids]


async def queue_job(
    queue: str,
    data: Any,
    *,
    delay: int | None = None,
    priority: int | None = None,
    job_id: str | None = None,
    repeat: RepeatArg = None,
    dedupe: DedupeArg = None,
    backend: BackendArg = None,
    connection: Any = None,
) -> JobHandle[Any]:
    """Enqueue by queue name. Validated when a client imported in this process knows the queue
    (the generated client registers every queue); only checked to be JSON-ready when only an
    imported registry knows it (its options and configured backend still apply); refused with
    UnknownQueueError when neither does: a job nobody serves would wait for ever.
    `connection`: inside the caller's open database transaction (`TypedQueue.enqueue`)."""
    known = known_queues.get(queue)
    if known is not None:
        handle: JobHandle[Any] = await known.enqueue(
            data,
            delay=delay,
            priority=priority,
            job_id=job_id,
            repeat=repeat,
            dedupe=dedupe,
            backend=backend,
            connection=connection,
        )
        return handle
    job_options = enqueue_options(
        delay=delay, priority=priority, job_id=job_id, repeat=repeat, dedupe=dedupe
    )
    registry = _registry_for(queue)
    target = backend_for(backend, registry.backend_url, registry.root)
    payload = untyped_payload(queue, data)
    request = _request(target, queue, payload, job_options, registry.get(queue).options)
    [job] = await _send(target, [request], connection)
    return JobHandle(job, queue, target)


def _registry_for(queue: str) -> Registry:
    """The imported registry that knows `queue`, else UnknownQueueError naming the known ones."""
    for registry in reversed(known_registries):
        if queue in registry.names():
            return registry
    names = sorted({*known_queues, *(n for r in known_registries for n in r.names())})
    stale = [path for r in known_registries for path in r.stale_sources()]
    if stale:  # the generated code is older than a declaring file
        hint = f" (the generated {stale_message(stale)})"
    elif known_registries:  # a generated client or registry is imported: it predates the queue
        hint = (
            " (if you declared it since the last scan, run `pikkugen scan` to add it to the"
            " generated client)"
        )
    else:
        hint = " (import the generated client or registry, or declare the queue with TypedQueue)"
    raise UnknownQueueError(
        f"no queue {queue!r}; known: {', '.join(names) or '(none)'}"
        + did_you_mean(queue, names)
        + hint
    )


def queue_job_sync(
    queue: str,
    data: Any,
    *,
    delay: int | None = None,
    priority: int | None = None,
    job_id: str | None = None,
    repeat: RepeatArg = None,
    dedupe: DedupeArg = None,
    backend: BackendArg = None,
    connection: Any = None,
) -> JobHandle[Any]:
    """`queue_job` for sync code."""
    if connection is not None:
        known = known_queues.get(queue)
        if known is not None:
            target = backend_for(backend, known.backend_url, known.root)
        else:
            registry = _registry_for(queue)
            target = backend_for(backend, registry.backend_url, registry.root)
        connection, backend = _bind(target, connection), target
    return run_sync(
        queue_job(
            queue,
            data,
            delay=delay,
            priority=priority,
            job_id=job_id,
            repeat=repeat,
            dedupe=dedupe,
            backend=backend,
            connection=connection,
        )
    )
