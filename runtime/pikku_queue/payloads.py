"""The one reader of stored payloads, for every backend.

A backend can hold payloads the engine cannot read: text that is not JSON, JSON with `NaN` or
`Infinity` (what Python's `json.dumps` writes by default) or a number too large for a float
(`1e400`, which Python reads as infinity), a lone surrogate (`"\\ud800"`,
which no UTF-8 writer can store again), bytes that are not UTF-8. Accepting such a payload
and failing later, when its result or dead-letter record is written, is what made workers
loop on one row for ever. So every backend decodes through `decode_payload`, and a payload
it refuses becomes one `invalid_payload` dead letter at once, its raw form kept by
`stored_form` in a shape any backend can always write back: the text itself when it is
valid Unicode, else base64 of its bytes (`PayloadEncoding` says which).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Literal

from pikku_queue.errors import PayloadValidationError
from pikku_queue.outcomes import DeadLetter, ErrorInfo
from pikku_queue.records import DeadLetterRecord

#: How a dead-letter record holds the original payload: "json" (the decoded value), "text"
#: (the raw text, which is not valid JSON for the engine), "base64" (the raw bytes).
PayloadEncoding = Literal["json", "text", "base64"]

#: A `\uD800`-`\uDFFF` escape: only then can a decoded value hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (a producer wrote it with allow_nan)")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or an exponent, refused when it overflows a float:
    `1e400` would be read as infinity, which no strict writer can write back (its result or
    dead-letter record would fail to store, and the job come back for ever)."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} overflows a float")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


class UndecodablePayload(ValueError):
    """A stored payload the engine cannot read; carries its verdict and its stored form."""

    def __init__(self, raw: str | bytes, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.error = error
        self.encoding, self.stored = stored_form(raw)

    def verdict(self) -> DeadLetter:
        return DeadLetter("invalid_payload", self.error)


def _undecodable(raw: str | bytes, exc: BaseException, what: str) -> UndecodablePayload:
    return UndecodablePayload(
        raw, ErrorInfo(type=type(exc).__name__, message=f"payload is not {what}: {exc}")
    )


def decode_payload(raw: str | bytes | bytearray | memoryview) -> Any:
    """The JSON value of a stored payload; raises `UndecodablePayload` for anything a strict
    JSON writer could not write back (not UTF-8, not JSON, NaN/Infinity or a number that
    overflows a float, a lone surrogate, nesting too deep to parse)."""
    if isinstance(raw, bytearray | memoryview):
        raw = bytes(raw)
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _undecodable(raw, exc, "UTF-8") from None
    elif isinstance(raw, str):
        text = raw
    else:
        raise TypeError(f"a payload is JSON text or bytes, not {type(raw).__name__}")
    if not text.isascii():  # O(1) in CPython; a surrogate (or surrogateescape) is not UTF-8
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            # The bytes behind the text were not UTF-8 (Redis replies decode with
            # surrogateescape): the same verdict as for those bytes themselves.
            raise UndecodablePayload(
                raw,
                ErrorInfo(
                    type="UnicodeDecodeError",
                    message=f"payload is not UTF-8: an invalid byte at character {exc.start}",
                ),
            ) from None
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:  # too deeply nested: RecursionError
        raise _undecodable(raw, exc, "JSON") from None
    if _SURROGATE_ESCAPE.search(text) is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _undecodable(raw, exc, "valid Unicode (a lone surrogate)") from None
    return value


class UnstorableResultError(ValueError):
    """A processor's result that no strict JSON writer can store (`check_result`)."""


def dump_json(value: Any, *, ascii: bool = False, escape_lone_surrogates: bool = False) -> str:
    """Compact JSON text of `value` under the writers' rule: JSON types only, no NaN or
    Infinity (`allow_nan=False`), no lone surrogate (the text must encode as UTF-8), so
    `decode_payload` reads back what was written. Raises TypeError or ValueError. The one
    JSON writer of every backend's payloads, results and dead-letter records.

    `ascii=True`: the same value as ASCII-only text (`\\uXXXX` escapes), for a store that
    refuses some code points (SQS bodies) or whose existing texts are ASCII (Cloudflare's
    size check); a lone surrogate is still refused. `escape_lone_surrogates=True`: a lone
    surrogate in a string is written as the visible text of its escape (`\\ud800`, six
    characters) instead of refused, so the strict reader reads the record back; only for the
    text of error and dead-letter records (an exception message may hold one: refusing it
    would fail the settle on every lease), never for a payload or result."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if not text.isascii():  # O(1) in CPython: the common ASCII payload costs nothing more
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a ValueError: a lone surrogate
            if not escape_lone_surrogates:
                raise
            return dump_json(_visible_surrogates(value), ascii=ascii)
        if ascii:
            text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text


def _visible_surrogates(value: Any) -> Any:
    """`value` with each lone surrogate in its strings (keys too) replaced by the text of its
    escape, `\\udXXX`: what a reader shows, and what any writer can store."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_visible_surrogates(k): _visible_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_visible_surrogates(item) for item in value]
    return value


def dump_payload(queue: str, value: Any, *, ascii: bool = False) -> str:
    """`dump_json` of a payload at enqueue; what it refuses is a `PayloadValidationError`
    (`not JSON-serialisable: ...`), the same on every backend, before anything is sent."""
    try:
        return dump_json(value, ascii=ascii)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadValidationError(queue, f"not JSON-serialisable: {exc}") from None


def check_result(value: Any) -> None:
    """Refuse a processor's result that could not be stored (`dump_json`'s rule), so the
    engine fails that attempt instead of a backend failing its settle on every lease."""
    try:
        dump_json(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UnstorableResultError(f"result is not JSON-serialisable: {exc}") from None


#: How much of an error message the cut form of a dead-letter record keeps.
CUT_MESSAGE_CHARS = 1_000


def dead_letter_forms(record: DeadLetterRecord, *, ascii: bool = False) -> Iterator[str]:
    """The JSON texts a dead-letter record can be written as, most complete first; a backend
    stores the first its store takes (SQS and Cloudflare: the first that fits a message).

    The total writer: whatever the error text, payload or numbers, a form can be written. 1.
    the record itself (`dump_json`, a lone surrogate in its text escaped); 2. if the strict
    writer refuses the payload, the payload kept as text (`payload_encoding` "text": the JSON
    Python writes for it, NaN, Infinity and lone surrogates as escaped text), as records
    already keep a payload the reader refused; 3. that with the error cut (the message to
    `CUT_MESSAGE_CHARS`, no traceback), for a store with a size limit. When none is taken
    (a payload with no text at all, or too large for the store), the job ends `failed` with
    `minimal_error` instead, and nothing redelivers it."""
    full = _record_text(record, ascii)
    if full is None:
        lenient = _lenient_text(record.payload)
        if lenient is None:
            return
        record = replace(record, payload=lenient, payload_encoding="text")
        full = _record_text(record, ascii)
        if full is None:
            return
    yield full
    cut = _record_text(replace(record, error=minimal_error(record.error)), ascii)
    if cut is not None and cut != full:
        yield cut


def minimal_error(error: ErrorInfo) -> ErrorInfo:
    """The error kept when nothing more can be: its type and its message cut, no traceback."""
    message = error.message
    if len(message) > CUT_MESSAGE_CHARS:
        message = message[: CUT_MESSAGE_CHARS - 1] + "…"
    return ErrorInfo(type=error.type[:200], message=message)


def _record_text(record: DeadLetterRecord, ascii: bool) -> str | None:
    try:
        return dump_json(record.as_payload(), ascii=ascii, escape_lone_surrogates=True)
    except (TypeError, ValueError, RecursionError):
        return None


def _lenient_text(value: object) -> str | None:
    """Python's own JSON text of a value the strict writer refuses: NaN and Infinity as
    literals, lone surrogates escaped, other objects by their `repr`."""
    try:
        return json.dumps(value, separators=(",", ":"), default=repr)
    except Exception:  # RecursionError, or a foreign object's __repr__ raising
        return None


def stored_form(raw: str | bytes) -> tuple[PayloadEncoding, str]:
    """("text", the text) when `raw` is valid Unicode, else ("base64", its bytes in base64).

    A str holding surrogates came from bytes decoded with `surrogateescape` (Redis) or holds a
    lone surrogate itself: its bytes are recovered with that handler, else `surrogatepass`."""
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
            return "text", raw
        except UnicodeEncodeError:
            try:
                data = raw.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                data = raw.encode("utf-8", "surrogatepass")
    else:
        data = bytes(raw)
        try:
            return "text", data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return "base64", base64.b64encode(data).decode("ascii")


def raw_original(encoding: str, stored: Any) -> str | bytes | None:
    """What `dlq replay` writes back for a dead-letter record's payload, so a fixed consumer
    reads the job as it was: the raw text ("text"), the raw bytes ("base64"); None for
    "json", a decoded value each backend writes with its own JSON writer."""
    if encoding == "json":
        return None
    if encoding == "text":
        return str(stored)
    if encoding == "base64":
        return base64.b64decode(str(stored))
    raise ValueError(f"unknown payload encoding {encoding!r} in a dead-letter record")


def raw_bytes(encoding: str, stored: str) -> bytes:
    """The original bytes of a payload kept by `stored_form` (inverse of it)."""
    if encoding == "base64":
        return base64.b64decode(stored)
    return stored.encode("utf-8")
