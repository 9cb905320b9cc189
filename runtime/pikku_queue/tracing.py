"""OpenTelemetry traces from enqueue to worker, with the `opentelemetry-api` package only.

When the API is installed (`pip install 'pikkugen[otel]'`; the SDK, its exporter and its
set-up are the application's), every enqueue runs in a `send <queue>` span (kind PRODUCER)
and carries that span's W3C trace context with the job, beside the payload, never in it:

    SQLite, memory   the `meta` column of the job's row (JSON)
    Redis            BullMQ's own telemetry field of the job's opts (`opts.tm`, as bullmq-otel
                     writes it): `data` is untouched, so Node workers and schemas are unchanged
    SQS (and Lambda) the `traceparent` / `tracestate` message attributes

Each attempt then runs in a `process <queue>` span (kind CONSUMER): a child of the send span
and linked to it (a batch attempt links every item's send span), with the messaging
semantic-convention attributes `messaging.system`, `messaging.destination.name`,
`messaging.operation.name`/`.type`, `messaging.message.id`, `pikku.attempt`, and `error.type`
for a failed attempt. The processor runs inside that span, so its own spans nest under it.
It works wherever the engine runs a job: the pull workers, Redis, SQS, the push core (Lambda;
on Cloudflare, whose messages have no field beside the body, an attempt's span starts its own
trace).

Off means off. Without the API nothing is registered and the engine's only cost is one
empty-list check per attempt (`pikku_queue.observe`); the producer's only cost is one boolean
test. With the API but no tracer provider set (the API's default proxy, whose spans go
nowhere: common, since many libraries depend on the API), no span is started, no context is
attached and nothing is injected into a job: each attempt and each enqueue reads one module
attribute (is a provider set yet?) and goes on. Once the application sets a provider (the
SDK's, at any time, even after the worker started), the next attempt and the next enqueue see
it and are traced from then on (`recording()`).
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pikku_queue import observe
from pikku_queue.adapters.catalog import trace_system

if TYPE_CHECKING:
    from pikku_queue.backend import Backend
    from pikku_queue.outcomes import Delivery, Outcome
    from pikku_queue.processor import Processor
    from pikku_queue.records import EnqueueRequest

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Link, SpanKind, StatusCode, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the [otel] extra is not installed: no tracing, no cost
    trace = None  # type: ignore[assignment]

TRACER_NAME = "pikku_queue"

#: `messaging.system` of the attempts running in this context (set by each worker).
_SYSTEM: contextvars.ContextVar[str] = contextvars.ContextVar("pikku_system", default="pikku")


def set_system(url: str) -> None:
    """Name the backend of the attempts run from this context on (a worker calls it first)."""
    _SYSTEM.set(trace_system(url))


_enabled = trace is not None
#: W3C Trace Context, whatever propagators the application set: that is what the job stores.
_PROPAGATOR = TraceContextTextMapPropagator() if trace is not None else None
_tracer: Tracer | None = None
#: True once a tracer provider other than the API's defaults is set (it is set once per
#: process and never unset, so this is decided for good the first time it holds).
_live = False
#: Whether the provider was looked up through the API once (which loads the one named by
#: `OTEL_PYTHON_TRACER_PROVIDER`, as the API's own `get_tracer` would).
_looked_up = False
#: The API module's global provider slot, read per attempt (None until a provider is set).
_API = trace
_NO_SLOT = object()


def _provider_set() -> bool:
    """Whether the process's tracer provider is a real one: not the API's default proxy (which
    hands out no-op spans until a provider is set) nor its explicit no-op provider."""
    global _looked_up
    if not _looked_up:
        _looked_up = True
        trace.get_tracer_provider()  # loads a provider named by the environment, if any
    provider = getattr(_API, "_TRACER_PROVIDER", _NO_SLOT)
    if provider is None:  # the API's default: nothing set yet (the per-job fast path)
        return False
    if provider is _NO_SLOT:  # an API without that slot: ask it the public, slower way
        provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def recording() -> bool:
    """Whether an enqueue or attempt starting now is traced: tracing enabled and a tracer
    provider set. Cheap enough to ask per job (one attribute read until a provider is set,
    one boolean after); a provider set later is seen by the next call."""
    global _live, _tracer
    if not _enabled:
        return False
    if _live:
        return True
    if not _provider_set():
        return False
    _live = True
    _tracer = None  # the provider's own tracer from now on, not the API's proxy
    return True


def _get_tracer() -> Tracer:
    """One tracer for the process, looked up once a provider is set: `get_tracer` per job
    would cost more than a no-op job."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer(TRACER_NAME)
    return _tracer


def available() -> bool:
    """Whether the OpenTelemetry API is installed."""
    return trace is not None


def enabled() -> bool:
    return _enabled


class TracingObserver:
    """The engine's attempt observer that runs each attempt in a `process` span."""

    def attempt_started(
        self, processor: Processor, deliveries: Sequence[Delivery]
    ) -> observe.AttemptEnd | None:
        if not recording():  # no provider: no span, no context, no closure
            return None
        tracer = _get_tracer()
        links = []
        parent = None
        for delivery in deliveries:
            if not delivery.trace_context:
                continue
            assert _PROPAGATOR is not None
            producer = _PROPAGATOR.extract(delivery.trace_context)
            span_context = trace.get_current_span(producer).get_span_context()
            if span_context.is_valid:
                links.append(Link(span_context))
                if len(deliveries) == 1:
                    parent = producer
        first = deliveries[0]
        attributes: dict[str, Any] = {
            "messaging.system": _SYSTEM.get(),
            "messaging.destination.name": processor.name,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "pikku.attempt": first.attempt,
        }
        if len(deliveries) == 1:
            attributes["messaging.message.id"] = first.job_id
        else:
            attributes["messaging.batch.message_count"] = len(deliveries)
        span = tracer.start_span(
            f"process {processor.name}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        )
        token = otel_context.attach(trace.set_span_in_context(span))

        def ended(settled: Sequence[tuple[Delivery, Outcome]], elapsed_s: float) -> None:
            try:
                failures = [o for _, o in settled if o.kind != "completed"]
                if failures:
                    error = failures[0].error
                    span.set_attribute("error.type", error.type)
                    span.set_attribute("pikku.outcome", failures[0].kind)
                    span.set_status(StatusCode.ERROR, error.message[:200])
                elif not settled:
                    span.set_attribute("error.type", "cancelled")
                span.end()
            finally:
                otel_context.detach(token)

        return ended

    def stalled(self, queue: str, count: int) -> None:
        return None


_OBSERVER = TracingObserver()
_remove: Callable[[], None] | None = None


def enable(on: bool = True) -> None:
    """Turn tracing on (the default when the API is installed) or off, in this process."""
    global _enabled, _remove
    _enabled = on and trace is not None
    if _enabled and _remove is None:
        _remove = observe.add_observer(_OBSERVER)
    elif not _enabled and _remove is not None:
        _remove()
        _remove = None


def disable() -> None:
    enable(False)


async def enqueue(target: Backend, request: EnqueueRequest) -> str:
    """`target.enqueue(request)` in a `send` span whose context travels with the job."""
    if request.repeat is not None or not recording():
        # No provider (or tracing off): nothing to record or carry. A schedule's runs are not
        # this trace's.
        return await target.enqueue(request)
    tracer = _get_tracer()
    with tracer.start_as_current_span(
        f"send {request.queue}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": trace_system(target.url),
            "messaging.destination.name": request.queue,
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
        },
    ) as span:
        try:
            job_id = await target.enqueue(_with_context(request))
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__name__)
            raise
        span.set_attribute("messaging.message.id", job_id)
        return job_id


async def enqueue_many(
    target: Backend,
    requests: Sequence[EnqueueRequest],
    send: Callable[[Sequence[EnqueueRequest]], Any],
) -> list[str]:
    """`send(requests)` (a backend's bulk enqueue) in one `send` span for the batch."""
    if not requests or not recording():
        return list(await send(requests))
    tracer = _get_tracer()
    with tracer.start_as_current_span(
        f"send {requests[0].queue}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": trace_system(target.url),
            "messaging.destination.name": requests[0].queue,
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
            "messaging.batch.message_count": len(requests),
        },
    ):
        # one span, so one context for the batch: injected once, not once per job
        carrier = _carrier()
        if not carrier:
            return list(await send(requests))
        return list(
            await send([dataclasses.replace(r, trace_context=dict(carrier)) for r in requests])
        )


def _carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    assert _PROPAGATOR is not None
    _PROPAGATOR.inject(carrier)
    return carrier


def _with_context(request: EnqueueRequest) -> EnqueueRequest:
    carrier = _carrier()
    if not carrier:
        return request
    return dataclasses.replace(request, trace_context=carrier)


def context_of(carrier: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The trace context fields of a stored carrier (None when there are none)."""
    if not carrier:
        return None
    found = {k: str(v) for k, v in carrier.items() if k in ("traceparent", "tracestate")}
    return found or None


if _enabled:
    enable()
