"""Reading a `redis://` / `rediss://` URL into connection settings and BullMQ options.

One URL must carry everything a worker or a producer needs (it travels through an environment
variable or a CLI flag), so the BullMQ options of the seed's `BullQueueAdapter` ride along as
query parameters. Ours are removed before redis-py sees the URL: redis-py rejects unknown ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pikku_queue.adapters import masked_url
from pikku_queue.errors import BackendError
from pikku_queue.retention import KeepJobs, parse_keep_jobs

#: Query parameters pikkugen reads itself; every other one goes to redis-py unchanged.
OWN_PARAMETERS = ("prefix", "remove_on_complete", "remove_on_fail")

__all__ = ["OWN_PARAMETERS", "KeepJobs", "RedisSettings", "parse_keep_jobs", "parse_redis_url"]


@dataclass(frozen=True)
class RedisSettings:
    connection_url: str  # what redis-py's `from_url` receives
    display_url: str  # the URL with its password masked, for messages and logs
    prefix: str = "bull"
    remove_on_complete: KeepJobs | None = None
    remove_on_fail: KeepJobs | None = None

    def default_job_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.remove_on_complete is not None:
            options["removeOnComplete"] = self.remove_on_complete
        if self.remove_on_fail is not None:
            options["removeOnFail"] = self.remove_on_fail
        return options


def parse_redis_url(url: str) -> RedisSettings:
    """Split a backend URL into redis-py's URL and pikkugen's BullMQ options."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unbalanced IPv6 bracket
        raise BackendError(f"not a valid URL: {masked_url(url)!r} ({exc})") from None
    if parts.scheme not in ("redis", "rediss") or url[len(parts.scheme) :][:3] != "://":
        # `redis:pw@host` (no //) would make the secret the "path" shown below
        raise BackendError(f"not a Redis URL (redis:// or rediss://): {masked_url(url)!r}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as exc:
        raise BackendError(f"bad port in {masked_url(url)!r}: {exc}") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise BackendError(
            f"the path of a Redis URL is the database number, got {path!r} in {masked_url(url)!r}"
        )
    own: dict[str, str] = {}
    passed: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in OWN_PARAMETERS:
            own[key] = value
        else:
            passed.append((key, value))
    prefix = own.get("prefix", "bull") or "bull"
    if ":" in prefix or " " in prefix:
        raise BackendError(f"prefix={prefix!r}: a key prefix cannot hold ':' or spaces")
    connection_url = urlunsplit(parts._replace(query=urlencode(passed)))
    return RedisSettings(
        connection_url=connection_url,
        display_url=masked_url(url),
        prefix=prefix,
        remove_on_complete=(
            parse_keep_jobs("remove_on_complete", own["remove_on_complete"])
            if "remove_on_complete" in own
            else None
        ),
        remove_on_fail=(
            parse_keep_jobs("remove_on_fail", own["remove_on_fail"])
            if "remove_on_fail" in own
            else None
        ),
    )
