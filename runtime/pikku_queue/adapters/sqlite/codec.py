"""JSON in and out of the SQLite columns.

Payloads, results, progress and errors are stored as compact JSON text (never pickle), so
any process, language or `sqlite3` shell can read the file. Reading is forgiving where the
row may have been written by something other than pikku_queue: a payload that is not JSON
comes back as its text instead of failing a listing.
"""

from __future__ import annotations

import json
from typing import Any

from pikku_queue.errors import BackendError
from pikku_queue.outcomes import ErrorInfo
from pikku_queue.payloads import UndecodablePayload, decode_payload, dump_json
from pikku_queue.records import JobInfo, JobState


def dumps(value: Any) -> str:
    """`pikku_queue.payloads.dump_json` for results, progress, errors and dead-letter
    records; a value that cannot be stored is a BackendError for the caller. Payloads are
    written at enqueue by `payloads.dump_payload`, which refuses a lone surrogate.

    Deliberately lenient on one point: a lone surrogate (in an error message, say) cannot be
    bound as UTF-8 text, so it is written as its ASCII escape instead of failing the
    transaction, as rows always were; `loads_or_text` reads such legacy rows back (as their
    text: `decode_payload` refuses the surrogate)."""
    try:
        return dump_json(value, escape_lone_surrogates=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise BackendError(f"payload is not JSON-serialisable: {exc}") from exc


def loads_or_text(text: str | bytes) -> Any:
    """The JSON value of a column, or (written by something else) its raw form: the text, or
    base64 of bytes that are not UTF-8 (`pikku_queue.payloads.stored_form`)."""
    try:
        return decode_payload(text)
    except UndecodablePayload as exc:
        return exc.stored


def error_from_json(text: str | None) -> ErrorInfo | None:
    if not text:
        return None
    data = json.loads(text)
    return ErrorInfo(
        type=str(data.get("type", "")),
        message=str(data.get("message", "")),
        traceback=str(data.get("traceback", "")),
    )


def job_info(row: tuple[Any, ...], now: int) -> JobInfo:
    """A `jobs` row read with `JOB_COLUMNS`; a delayed job already due reports as waiting."""
    (
        id_,
        queue,
        state,
        payload,
        attempts,
        progress,
        result,
        error,
        enqueued_at,
        finished_at,
        run_at,
    ) = row
    if state == "delayed" and run_at <= now:
        state = "waiting"
    return JobInfo(
        id=id_,
        queue=queue,
        state=JobState(state),
        payload=loads_or_text(payload),
        attempts_made=attempts,
        progress=json.loads(progress) if progress else None,
        result=json.loads(result) if result is not None else None,
        error=error_from_json(error),
        enqueued_at_ms=enqueued_at,
        finished_at_ms=finished_at,
    )
