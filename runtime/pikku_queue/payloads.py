"""The one reader of stored payloads, for every backend.

A backend can hold payloads the engine cannot read: text that is not JSON, JSON with `NaN` or
`Infinity` (what Python's `json.dumps` writes by default), a lone surrogate (`"\\ud800"`,
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
import re
from typing import Any, Literal

from pikku_queue.errors import PayloadValidationError
from pikku_queue.outcomes import DeadLetter, ErrorInfo

#: How a dead-letter record holds the original payload: "json" (the decoded value), "text"
#: (the raw text, which is not valid JSON for the engine), "base64" (the raw bytes).
PayloadEncoding = Literal["json", "text", "base64"]

#: A `\uD800`-`\uDFFF` escape: only then can a decoded value hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (a producer wrote it with allow_nan)")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


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
    JSON writer could not write back (not UTF-8, not JSON, NaN/Infinity, a lone surrogate,
    nesting too deep to parse)."""
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
    surrogate is written as its `\\uXXXX` escape instead of refused; only for the text of
    error and dead-letter records (an exception message may hold one: refusing it would fail
    the settle on every lease), never for a payload or result."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if not text.isascii():  # O(1) in CPython: the common ASCII payload costs nothing more
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a ValueError: a lone surrogate
            if not escape_lone_surrogates:
                raise
            ascii = True
        if ascii:
            text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text


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
