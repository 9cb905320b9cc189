"""How many finished jobs a backend keeps: BullMQ's `removeOnComplete` / `removeOnFail`.

One spelling for every backend that stores finished jobs (a URL query parameter, or the
backend's keyword argument): `true` (remove at once), `false` (keep all), a count to keep
(`1000`), or `age:SECONDS` and/or `count:N` (`age:3600,count:100`: at most 100, none older
than an hour). Redis hands the value to BullMQ as is; SQLite applies it itself
(`adapters.sqlite.retention`).

The embedded backend keeps by default the last `SQLITE_KEEP_COMPLETED` completed and
`SQLITE_KEEP_FAILED` failed (or dead-lettered) jobs per queue, so a file that runs for months
stays the size of its last window of work; Redis keeps everything unless told, as BullMQ does.
A dead-letter queue's records are waiting jobs of that queue: retention never removes them.
"""

from __future__ import annotations

from pikku_queue.errors import BackendError

#: BullMQ's `removeOnComplete` / `removeOnFail`: a flag, a count to keep, or `{age, count}`
#: (age in seconds).
KeepJobs = bool | int | dict[str, int]

#: The embedded backend's defaults (per queue): recent history for `pikkugen monitor` and
#: `get_job`, bounded so the file and a worker's memory stay flat.
SQLITE_KEEP_COMPLETED: KeepJobs = {"count": 10_000}
SQLITE_KEEP_FAILED: KeepJobs = {"count": 100_000}


def parse_keep_jobs(name: str, text: str) -> KeepJobs:
    """`true`/`false`, a count (`1000`), or `age:3600` / `age:3600,count:100` (age in s)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered.isdigit():
        return int(lowered)
    keep: dict[str, int] = {}
    for part in lowered.split(","):
        key, _, value = part.partition(":")
        if key not in ("age", "count") or not value.isdigit() or key in keep:
            raise BackendError(
                f"{name}={text!r} is not understood; use true, false, a count (1000), "
                "or age:SECONDS and/or count:N (age:3600,count:100)"
            )
        keep[key] = int(value)
    return keep


def keep_limits(keep: KeepJobs) -> tuple[int | None, int | None]:
    """(count to keep, age in ms to keep) of a rule; None: no limit of that kind."""
    if keep is True:
        return 0, None
    if keep is False:
        return None, None
    if isinstance(keep, int):
        return max(keep, 0), None
    count = keep.get("count")
    age = keep.get("age")
    return (
        None if count is None else max(int(count), 0),
        None if age is None else max(int(age), 0) * 1000,
    )
