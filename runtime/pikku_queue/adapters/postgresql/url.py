"""`postgresql://` URLs: what is ours in the query (schema, retention, pool size) and what goes
to libpq as it is (host, credentials, `sslmode`, `application_name`, …)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pikku_queue.errors import BackendError
from pikku_queue.redact import redact_url
from pikku_queue.retention import (
    SQLITE_KEEP_COMPLETED,
    SQLITE_KEEP_FAILED,
    KeepJobs,
    parse_keep_jobs,
)

#: The schema the tables live in unless `?schema=` names another.
DEFAULT_SCHEMA = "pikku"
#: Connections a backend keeps open for its statements (its LISTEN connection aside).
DEFAULT_POOL_SIZE = 4
#: A schema name we embed in statements: a plain lowercase identifier, at most 51 bytes (the NOTIFY channel adds six).
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,50}")
OUR_PARAMETERS = ("schema", "remove_on_complete", "remove_on_fail", "pool_size")


@dataclass(frozen=True)
class PostgresSettings:
    #: The URL libpq gets: ours without the parameters above.
    conninfo: str
    schema: str
    remove_on_complete: KeepJobs
    remove_on_fail: KeepJobs
    pool_size: int


def check_schema(name: str) -> str:
    if not _SCHEMA_NAME.fullmatch(name):
        raise BackendError(
            f"schema {name!r} is not a plain lowercase PostgreSQL identifier"
            " ([a-z_][a-z0-9_]*, at most 51 characters)"
        )
    return name


def parse_url(url: str) -> PostgresSettings:
    """Split a `postgresql://` (or `postgres://`) URL into libpq's part and ours."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise BackendError(f"not a postgresql:// URL: {redact_url(url)!r}")
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        (ours.__setitem__(key, value) if key in OUR_PARAMETERS else theirs.append((key, value)))
    conninfo = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(theirs)))
    pool_size = ours.get("pool_size", str(DEFAULT_POOL_SIZE))
    if not pool_size.isdigit() or int(pool_size) < 1:
        raise BackendError(f"pool_size={pool_size!r} is not a whole number >= 1")
    return PostgresSettings(
        conninfo=conninfo,
        schema=check_schema(ours.get("schema", DEFAULT_SCHEMA)),
        remove_on_complete=parse_keep_jobs("remove_on_complete", ours.get("remove_on_complete", ""))
        if "remove_on_complete" in ours
        else SQLITE_KEEP_COMPLETED,
        remove_on_fail=parse_keep_jobs("remove_on_fail", ours["remove_on_fail"])
        if "remove_on_fail" in ours
        else SQLITE_KEEP_FAILED,
        pool_size=int(pool_size),
    )
