"""Reading back a BullMQ job hash: every field a worker reads, decoded by `pikku_queue.fields`.

A job hash can hold what no BullMQ client wrote (a raw HSET, a producer writing hashes itself).
bullmq-python parses it in `Job.fromJSON` (`json.loads` of `opts`, `int()` of `timestamp`,
`delay`, `priority`, `atm`…), and BullMQ's own Lua scripts read some fields again: `HINCRBY` of
`atm`, `ats` and `stc`, `cjson.decode` of `parent`. One bad value there raised out of the fetch
("BullMQ worker error"), or made the script that finishes the job or checks stalls fail, so the
job stayed active, stalled, came back and failed the same way for ever.

`check_job_hash` decodes each field as BullMQ writes it and nothing else. It returns the hash
with each refused field replaced by BullMQ's default (so bullmq-python loads the job), the
`InvalidRecord` of the first refused field (the job's `invalid_record` verdict, naming the
field and its value), and the repairs: the same defaults, for the worker to write into the
stored hash while it holds the job's lock (`repair_script`), so that BullMQ's scripts (and a
Node worker or a dashboard reading the hash later) can finish and show the job. `data` is not
repaired: the payload has its own reader and reason (`invalid_payload`), and its dead-letter
record keeps the stored text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pikku_queue import fields
from pikku_queue.fields import InvalidRecord
from pikku_queue.options import MAX_PRIORITY

from .jobs import ERROR_FIELD, OUTCOME_FIELD

#: Integer fields of the hash: name → the value a repair writes (None: the field is removed).
INTEGER_FIELDS: dict[str, str | None] = {
    "timestamp": "0",
    "delay": "0",
    "priority": "0",
    "atm": "0",
    "attemptsMade": None,
    "ats": "1",  # moveToActive counted this start before the hash reached us
    "stc": "0",
    "processedOn": None,
    "finishedOn": None,
}
#: JSON fields: name → repair value (None: removed).
JSON_FIELDS: dict[str, str | None] = {
    "opts": "{}",
    "progress": None,
    "stacktrace": "[]",
    "parent": None,
}
#: Text fields BullMQ reads as they are (names, keys, reasons).
TEXT_FIELDS: dict[str, str | None] = {
    "name": None,
    "parentKey": None,
    "rjk": None,
    "failedReason": None,
    "defa": None,
    "deid": None,
}
#: The most any field's largest integer may be: BullMQ's priorities end at MAX_PRIORITY.
_INTEGER_MAXIMUM = {"priority": MAX_PRIORITY}
#: BullMQ's opts flags of which at most one may be set (bullmq-python's Job refuses more).
_EXCLUSIVE = (
    ("fpof", "failParentOnFailure"),
    ("cpof", "continueParentOnFailure"),
    ("idof", "ignoreDependencyOnFailure"),
    ("rdof", "removeDependencyOnFailure"),
)
_BOOL_OPTS = ("lifo", *(name for pair in _EXCLUSIVE for name in pair))
_INT_OPTS = ("attempts", "delay", "timestamp", "keepLogs", "kl", "stackTraceLimit", "sizeLimit")
_KEEP_OPTS = ("removeOnComplete", "removeOnFail")


@dataclass
class HashCheck:
    """What `check_job_hash` found: the hash to load, the verdict, the repairs to store."""

    raw: dict[str, Any]
    invalid: InvalidRecord | None = None
    #: field → the value to store instead (None: remove the field).
    repairs: dict[str, str | None] = field(default_factory=dict)


def check_job_hash(raw: Mapping[str, Any]) -> HashCheck:
    """Decode every field of a job hash a worker reads (see the module doc)."""
    checked = HashCheck(dict(raw))
    for name, repair in INTEGER_FIELDS.items():
        _check(checked, name, repair, _integer)
    for name, repair in JSON_FIELDS.items():
        _check(checked, name, repair, _JSON_CHECKS[name])
    for name, repair in TEXT_FIELDS.items():
        _check(checked, name, repair, fields.text)
    return checked


#: Each field's last stored text that passed its check. Every check is a function of the
#: field's name and text alone, so the same text passes again: the jobs of one producer share
#: most fields (opts, name, delay, priority), and are not decoded again one by one.
_PASSED: dict[str, str] = {}


def _check(checked: HashCheck, name: str, repair: str | None, decode: Any) -> None:
    value = checked.raw.get(name)
    if value is None:  # absent: BullMQ's default
        return
    if type(value) is str and _PASSED.get(name) == value:
        return
    try:
        decode(name, value)
        if type(value) is str:
            _PASSED[name] = value
    except InvalidRecord as exc:
        if checked.invalid is None:
            checked.invalid = exc
        checked.repairs[name] = repair
        if repair is None:
            checked.raw.pop(name, None)
        else:
            checked.raw[name] = repair


def _integer(name: str, value: object) -> int:
    return fields.integer(name, value, maximum=_INTEGER_MAXIMUM.get(name, fields.MAX_STORED_INT))


def _opts(name: str, value: object) -> None:
    """A job's opts: a JSON object whose options bullmq-python reads have BullMQ's types."""
    opts = fields.json_value(name, value)
    if not isinstance(opts, dict):
        raise InvalidRecord(name, value, "not a JSON object")
    problem = opts_problem(opts)
    if problem is not None:
        raise InvalidRecord(name, value, problem)


def opts_problem(opts: Mapping[str, Any]) -> str | None:
    """Why a decoded opts object is not one BullMQ writes, or None."""
    for key in _INT_OPTS:
        if key in opts and not _is_int(opts[key]):
            return f"{key} is not a non-negative integer"
    if "priority" in opts and not (_is_int(opts["priority"]) and opts["priority"] <= MAX_PRIORITY):
        return "priority is not an integer in 0..MAX_PRIORITY"
    for key in _BOOL_OPTS:
        if key in opts and not isinstance(opts[key], bool):
            return f"{key} is not true or false"
    if sum(1 for pair in _EXCLUSIVE if any(opts.get(k) for k in pair)) > 1:
        return "more than one of fpof, cpof, idof, rdof"
    for key in _KEEP_OPTS:
        if key in opts and not _keep(opts[key]):
            return f"{key} is not true, false, a count or {{age, count, limit}}"
    if "backoff" in opts and not _backoff(opts["backoff"]):
        return "backoff is not a delay or {type, delay}"
    for key in ("jobId", "tm"):
        if key in opts and not isinstance(opts[key], str):
            return f"{key} is not text"
    for key in ("parent", "repeat", "de", "deduplication", "telemetry"):
        if key in opts and not isinstance(opts[key], dict):
            return f"{key} is not an object"
    return None


def _is_int(value: object) -> bool:
    return type(value) is int and 0 <= value <= fields.MAX_STORED_INT


def _keep(value: object) -> bool:
    if isinstance(value, bool) or _is_int(value):
        return True
    return isinstance(value, dict) and all(
        key in ("age", "count", "limit") and _is_int(v) for key, v in value.items()
    )


def _backoff(value: object) -> bool:
    if _is_int(value):
        return True
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        return False
    return all(
        key not in value or _is_int(value[key]) or (key == "jitter" and _fraction(value[key]))
        for key in ("delay", "jitter")
    )


def _fraction(value: object) -> bool:
    return type(value) in (int, float) and 0 <= value <= 1  # type: ignore[operator]


def _progress(name: str, value: object) -> None:
    fields.json_value(name, value)


def _stacktrace(name: str, value: object) -> None:
    if not isinstance(fields.json_value(name, value), list):
        raise InvalidRecord(name, value, "not a JSON array")


def _parent(name: str, value: object) -> None:
    parent = fields.json_value(name, value)
    if not isinstance(parent, dict) or not all(
        isinstance(parent.get(key), str) for key in ("id", "queueKey")
    ):
        raise InvalidRecord(name, value, "not a JSON object with id and queueKey")


_JSON_CHECKS = {"opts": _opts, "progress": _progress, "stacktrace": _stacktrace, "parent": _parent}

#: Writes the repairs (and removes pikkugen's outcome fields of an earlier attempt) only while
#: the job is active under the caller's lock. KEYS: the job hash, its lock. ARGV: the token,
#: then pairs of field and value ("" value: HDEL). Returns 1 when written, 0 when not held.
REPAIR_SCRIPT = """
if redis.call("GET", KEYS[2]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == "" then
    redis.call("HDEL", KEYS[1], ARGV[i])
  else
    redis.call("HSET", KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
"""


def repair_args(token: str, repairs: Mapping[str, str | None]) -> list[str]:
    """REPAIR_SCRIPT's ARGV for `repairs`."""
    args = [token]
    for name, value in repairs.items():
        args += [name, "" if value is None else value]
    return args


#: pikkugen's outcome fields, stale on a job that is running again (retried elsewhere).
STALE_OUTCOME_FIELDS = (OUTCOME_FIELD, ERROR_FIELD)
