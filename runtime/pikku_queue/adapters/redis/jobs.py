"""Translation between pikkugen's job records and BullMQ's job hash.

Kept apart from the connection code so the mapping (which fields a Node worker reads, which
state names mean what) can be read in one place and tested without a server.
"""

from __future__ import annotations

import json
from typing import Any

from pikku_queue import fields
from pikku_queue.options import Dedupe, ProcessorOptions, RetryOptions
from pikku_queue.outcomes import ErrorInfo
from pikku_queue.records import EnqueueRequest, JobInfo, JobState

#: Extra fields pikkugen writes into a BullMQ job hash when a job fails for good. BullMQ (Node
#: and Python) ignores hash fields it does not know, so a dashboard still shows a failed job.
OUTCOME_FIELD = "pikkuOutcome"  # "dead_lettered" | "failed" | "cancelled"
ERROR_FIELD = "pikkuError"  # ErrorInfo as JSON
#: Set in the hash of an active job asked to stop (`JobHandle.cancel`): the lock token of the
#: attempt it was asked of. It lives and dies with the job's hash, so a later job that reuses
#: the id starts without it. Our workers poll it; a Node worker ignores it (and runs on).
CANCEL_FIELD = "pikkuCancel"
#: How our Redis connections decode replies. A foreign producer may store bytes that are not
#: UTF-8; a strict decode fails on the whole reply (BullMQ's moveToActive: the job would stay
#: active for ever), this one keeps them as lone surrogates that `encoding_error` spots.
ENCODING_ERRORS = "surrogateescape"
#: The backoff type our worker sets (in memory only) so BullMQ asks our strategy for the delay.
PIKKU_BACKOFF = "pikku"

_STATES: dict[str, JobState] = {
    "waiting": JobState.WAITING,
    "wait": JobState.WAITING,
    "prioritized": JobState.WAITING,
    "paused": JobState.WAITING,
    "waiting-children": JobState.WAITING,
    "delayed": JobState.DELAYED,
    "active": JobState.ACTIVE,
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
}


def stored_count(value: Any, default: int = 0) -> int:
    """An integer hash field read where no verdict can be given (a listing, a sweep): its
    value, or `default` when it is absent or not an integer (`pikku_queue.fields.integer`)."""
    if value is None:
        return default
    try:
        return fields.integer("field", value)
    except fields.InvalidRecord:
        return default


def backoff_is_native(retry: RetryOptions) -> bool:
    """Whether BullMQ's own strategy computes exactly our delays (so a Node worker agrees)."""
    if retry.jitter > 0:
        return False
    if retry.backoff == "fixed":
        return True
    return retry.factor == 2.0 and retry.max_delay is None


def native_backoff(retry: RetryOptions) -> dict[str, Any] | None:
    """The BullMQ backoff stored in the job's opts: exact when `backoff_is_native`, otherwise
    the nearest native one, so a Node worker still retries sensibly and never meets an
    unknown strategy name. Our own worker always applies the engine's exact delay."""
    if retry.attempts <= 1 or retry.delay <= 0:
        return None
    return {"type": retry.backoff, "delay": retry.delay}


#: The job opts key of the trace context (`pikku_queue.tracing`).
TRACE_OPTION = "tm"


def trace_context_of(opts: Any) -> dict[str, str] | None:
    """The trace context stored in a job's opts (None when it has none or it is not ours)."""
    raw = opts.get(TRACE_OPTION) if isinstance(opts, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        carrier = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(carrier, dict):
        return None
    found = {k: str(v) for k, v in carrier.items() if k in ("traceparent", "tracestate")}
    return found or None


def job_options(request: EnqueueRequest, options: ProcessorOptions | None) -> dict[str, Any]:
    """BullMQ job opts for a request; the processor's retry policy rides along when known."""
    opts: dict[str, Any] = {}
    if request.job_id is not None:
        opts["jobId"] = request.job_id
    if request.delay_ms > 0:
        opts["delay"] = request.delay_ms
    if request.priority is not None:
        opts["priority"] = request.priority
    if request.dedupe is not None and request.dedupe_key is not None:
        opts["deduplication"] = deduplication_option(request.dedupe, request.dedupe_key)
    if request.trace_context:
        # BullMQ's own telemetry field (Node reads it as opts.telemetry.metadata): the trace
        # context rides outside `data`, so Node workers and schemas see the payload unchanged.
        opts[TRACE_OPTION] = json.dumps(dict(request.trace_context), separators=(",", ":"))
    if options is not None:
        retry = options.retry_options
        opts["attempts"] = retry.attempts
        backoff = native_backoff(retry)
        if backoff is not None:
            opts["backoff"] = backoff
    return opts


def deduplication_option(dedupe: Dedupe, key: str) -> dict[str, Any]:
    """BullMQ's `deduplication` job option for a `Dedupe` (its `de:<key>` Redis key is what
    Node producers with the same id share): `drop` is its throttle mode (a ttl), `replace` its
    debounce mode (replace + extend: the delayed job is replaced, the window restarts),
    `extend` its extend mode (the window restarts; the earlier job's delay is pushed back by
    `RedisBackend`, a second call)."""
    option: dict[str, Any] = {"id": key, "ttl": dedupe.ttl_ms}
    if dedupe.mode in ("replace", "extend"):
        option["extend"] = True
    if dedupe.mode == "replace":
        option["replace"] = True
    return option


def retry_options_difference(opts: dict[str, Any], retry: RetryOptions) -> str | None:
    """How a job's stored BullMQ `attempts` / `backoff` differ from what `job_options` stores
    for the declared `retry`, e.g. `attempts=2 (declared 3)`; None when they agree or the job
    stores neither. The attempts rule: the declaration decides on every backend (SQLite and
    SQS jobs carry no retry options at all), so these only explain a difference in the log."""
    problems = []
    attempts = opts.get("attempts")
    if (
        attempts is not None
        and stored_count(attempts) != retry.attempts
        and not (stored_count(attempts) <= 1 and retry.attempts == 1)
    ):
        problems.append(f"attempts={attempts} (declared {retry.attempts})")
    stored = opts.get("backoff")
    if isinstance(stored, int | float):  # BullMQ's shorthand: a number is a fixed delay
        stored = {"type": "fixed", "delay": stored}
    if isinstance(stored, dict) and stored.get("type") != PIKKU_BACKOFF:
        declared = native_backoff(retry)
        found = {"type": stored.get("type"), "delay": stored.get("delay")}
        if declared is None or found != declared:
            problems.append(
                f"backoff={found['type']} {found['delay']} ms (declared {retry.backoff}"
                f" {retry.delay} ms)"
            )
    return "; ".join(problems) if problems else None


def declared_opts(stored: dict[str, Any], retry: RetryOptions) -> dict[str, Any] | None:
    """The job opts `stored` with the declaration's `attempts` and native `backoff`, as
    `job_options` stores them; None when they are already so. A pikkugen worker writes these
    into a foreign producer's job before its first retry, so that a Node worker taking a later
    attempt follows the same rule (`DECLARE_OPTS_SCRIPT`)."""
    backoff = native_backoff(retry)
    same_backoff = stored.get("backoff") == backoff if backoff else "backoff" not in stored
    attempts = stored.get("attempts")
    # No `attempts`, or 0 (BullMQ's default, Node's and bullmq-python's alike), is one attempt
    # to every reader (Node retries while attemptsMade + 1 < attempts; the scripts announce
    # retries-exhausted at attemptsMade >= attempts): a declaration of one agrees with it.
    one = retry.attempts == 1 and (attempts is None or (type(attempts) is int and attempts == 0))
    if (attempts == retry.attempts or one) and same_backoff:
        return None
    opts = {**stored, "attempts": retry.attempts}
    if backoff is None:
        opts.pop("backoff", None)
    else:
        opts["backoff"] = backoff
    return opts


#: Replaces a job's stored opts only while the caller holds its lock and the opts are still
#: the text it read. KEYS: the job hash, its lock. ARGV: token, old opts text, new opts text.
DECLARE_OPTS_SCRIPT = """
if redis.call("GET", KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call("HGET", KEYS[1], "opts") ~= ARGV[2] then return 0 end
redis.call("HSET", KEYS[1], "opts", ARGV[3])
return 1
"""


def error_from_hash(raw: dict[str, Any]) -> ErrorInfo | None:
    """Our recorded error if there is one, else BullMQ's `failedReason` and last stacktrace."""
    stored = raw.get(ERROR_FIELD)
    if stored:
        try:
            data = json.loads(stored)
            return ErrorInfo(
                type=str(data.get("type", "")),
                message=str(data.get("message", "")),
                traceback=str(data.get("traceback", "")),
            )
        except (ValueError, AttributeError):
            pass
    reason = raw.get("failedReason")
    if not reason:
        return None
    try:
        stack = json.loads(raw.get("stacktrace") or "[]")
    except ValueError:
        stack = []
    last = str(stack[-1]) if isinstance(stack, list) and stack else ""
    return ErrorInfo(type="Error", message=str(reason), traceback=last)


def encoding_error(text: str) -> ErrorInfo | None:
    """Why `text` is not what its producer wrote as UTF-8: our connections decode replies with
    `ENCODING_ERRORS`, so the bytes that are not UTF-8 arrive as lone surrogates."""
    if text.isascii():  # the usual case, and O(1) in CPython
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return ErrorInfo(
            type="UnicodeDecodeError",
            message=f"payload is not UTF-8: an invalid byte at character {exc.start}",
        )
    return None


def payload_error(text: str | None) -> ErrorInfo | None:
    """Why a job's `data` field cannot be read as JSON, or None when it can (or is absent:
    BullMQ then reads `{}`). Too deep a nesting raises RecursionError, not ValueError."""
    if text is None:
        return None
    error = encoding_error(text)
    if error is not None:
        return error
    try:
        json.loads(text)
    except (ValueError, RecursionError) as exc:
        return ErrorInfo(type=type(exc).__name__, message=f"payload is not JSON: {exc}")
    return None


def loads_or_text(text: str) -> Any:
    """The JSON value of a hash field, or the text itself when something else wrote it."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _json_field(raw: dict[str, Any], name: str, default: Any) -> Any:
    text = raw.get(name)
    if text is None or text == "":
        return default
    return loads_or_text(text)


def _payload(text: str | None) -> Any:
    """A job's payload; the stored text itself when it is not JSON, or not even UTF-8."""
    if text is None or text == "":
        return None
    return text if encoding_error(text) is not None else loads_or_text(text)


_ERROR_STATES = frozenset({JobState.FAILED, JobState.DEAD_LETTERED, JobState.CANCELLED})


def job_info(queue: str, job_id: str, raw: dict[str, Any], bull_state: str) -> JobInfo:
    """A `JobInfo` from a BullMQ job hash (`HGETALL`) and its state name."""
    state = _STATES.get(bull_state, JobState.WAITING)
    if state is JobState.FAILED and raw.get(OUTCOME_FIELD) == "dead_lettered":
        state = JobState.DEAD_LETTERED
    elif state is JobState.FAILED and raw.get(OUTCOME_FIELD) == "cancelled":
        state = JobState.CANCELLED
    progress = _json_field(raw, "progress", None)
    finished = raw.get("finishedOn")
    attempts = raw.get("atm") or raw.get("attemptsMade") or "0"
    return JobInfo(
        id=job_id,
        queue=queue,
        state=state,
        payload=_payload(raw.get("data")),
        attempts_made=stored_count(attempts),
        progress=progress if isinstance(progress, dict) else None,
        result=_json_field(raw, "returnvalue", None) if state is JobState.COMPLETED else None,
        error=error_from_hash(raw) if state in _ERROR_STATES else None,
        enqueued_at_ms=stored_count(raw.get("timestamp")),
        finished_at_ms=stored_count(finished) if finished else None,
    )
