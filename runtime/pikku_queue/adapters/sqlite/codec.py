"""JSON in and out of the SQLite columns.

Payloads, results, progress and errors are stored as compact JSON text (never pickle), so
any process, language or `sqlite3` shell can read the file. Reading a job back for a view
(`get_job`, listings) is total where the row may have been written by something other than
pikku_queue: a payload, result or progress that is not JSON comes back as its raw form, an
error that is not one as an `InvalidRecordError` naming the column, a state no worker serves
as waiting (the next lease dead-letters it), instead of failing the lookup.
"""

from __future__ import annotations

from typing import Any

from pikku_queue import fields
from pikku_queue.adapters.sqlite.schema import JOB_STATES
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


def error_from_json(text: object) -> ErrorInfo | None:
    """A job's stored error; one that is not the JSON object pikkugen writes is shown as an
    `InvalidRecordError` naming the column, never raised."""
    if text is None or text == "":
        return None
    try:
        data = fields.json_value("error", text)
        if not isinstance(data, dict):
            raise fields.InvalidRecord("error", text, "not a JSON object")
    except fields.InvalidRecord as exc:
        return exc.error
    return ErrorInfo(
        type=str(data.get("type", "")),
        message=str(data.get("message", "")),
        traceback=str(data.get("traceback", "")),
    )


def _view(value: object) -> Any:
    """A JSON column for a view: its value, or its raw form (`loads_or_text`)."""
    if isinstance(value, str | bytes):
        return loads_or_text(value)
    return value


def _number(field: str, value: object) -> int | None:
    try:
        return fields.optional_integer(field, value)
    except fields.InvalidRecord:
        return None


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
    due = _number("run_at", run_at)
    if state not in JOB_STATES or (state == "delayed" and (due is None or due <= now)):
        state = "waiting"  # what the next lease does with it
    shown = _view(progress)
    return JobInfo(
        id=id_,
        queue=queue,
        state=JobState(state),
        payload=_view(payload),
        attempts_made=_number("attempts", attempts) or 0,
        progress=shown if isinstance(shown, dict) else None,
        result=_view(result),
        error=error_from_json(error),
        enqueued_at_ms=_number("enqueued_at", enqueued_at) or 0,
        finished_at_ms=_number("finished_at", finished_at),
    )
