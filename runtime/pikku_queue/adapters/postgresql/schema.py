"""The PostgreSQL backend's tables, created and migrated by the backend itself.

Why it is built this way:

* Versioned migrations, applied in order, each once: `{schema}.version` holds the versions
  applied. A worker or producer that opens the backend runs `migrate` before its first
  statement, so a new release brings its tables along, and an old process meeting a newer
  schema (a version it does not know) refuses to run rather than guess.
* Safe when several processes start at once: the whole migration is one transaction that
  first takes a transaction-level advisory lock named after the schema, so a second process
  waits, then finds the versions applied and does nothing. `CREATE SCHEMA IF NOT EXISTS` runs
  under the lock too.
* The job table is shaped on pg-boss's (`name` is the queue, `data` the payload, `state`
  `created`/`retry`/`active`/`completed`/`failed`, `retry_count`, `start_after`,
  `created_on`, `started_on`, `completed_on`, `output`, `dead_letter`, `priority`,
  `singleton_key`'s role played by the job id): the same states and timestamps, so the design
  stays open to sharing pg-boss's own tables (docs/postgresql.md says where that stops today).
* JSON is stored as `text`, not `jsonb`: `jsonb` refuses `\\u0000` and lone-surrogate escapes,
  which a result or an error message may hold; one such value would fail its settle on every
  lease. Every value our strict writer accepts round-trips as text, and `data::jsonb` still
  queries a payload.
* Partial indexes hold only the rows each query needs (ready jobs by priority then sequence,
  active ones by lease, finished ones by time), so leasing costs the same with 10 or 100,000
  jobs waiting; an insert updates only two of them (the key and the ready index), and `seq`
  is drawn 1,000 at a time per session: bulk inserts are what those two choices speed up
  (FIFO holds per producer; two producers' jobs interleave by the block each drew).
* `rate_window` and `dedupe_key` hold the rate limits' windows and the deduplication keys
  (`limits`), so every process on the database shares them.
"""

from __future__ import annotations

from collections.abc import Callable

from pikku_queue.fields import MAX_STORED_INT

#: Each migration's DDL, by version, as a function of the schema name. Never edit one that
#: shipped: add the next.
MIGRATIONS: dict[int, Callable[[str], str]] = {}


def _migration(version: int) -> Callable[[Callable[[str], str]], Callable[[str], str]]:
    def register(ddl: Callable[[str], str]) -> Callable[[str], str]:
        MIGRATIONS[version] = ddl
        return ddl

    return register


@_migration(1)
def _jobs(s: str) -> str:
    return f"""
CREATE FUNCTION {s}.ms(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(extract(epoch FROM t) * 1000)::bigint $$;
CREATE FUNCTION {s}.at_ms(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT to_timestamp(ms / 1000.0) $$;
CREATE TABLE {s}.job (
    seq bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000),
    name text NOT NULL,
    id text NOT NULL,
    state text NOT NULL DEFAULT 'created'
        CHECK (state IN ('created', 'retry', 'active', 'completed', 'failed')),
    priority integer NOT NULL DEFAULT 0,
    data text NOT NULL,
    retry_count integer NOT NULL DEFAULT 0,
    stalled_count integer NOT NULL DEFAULT 0,
    lease_token bigint NOT NULL DEFAULT 0,
    start_after timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_on timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_on timestamptz,
    lease_until timestamptz,
    worker text,
    progress text,
    output text,
    error text,
    completed_on timestamptz,
    dead_letter text,
    schedule_key text,
    meta text,
    PRIMARY KEY (name, id)
);
CREATE INDEX job_ready ON {s}.job (name, priority, seq) WHERE state IN ('created', 'retry');
CREATE INDEX job_active ON {s}.job (name, lease_until) WHERE state = 'active';
CREATE INDEX job_finished ON {s}.job (name, completed_on, seq) WHERE completed_on IS NOT NULL;
CREATE INDEX job_scheduled ON {s}.job (name, schedule_key)
    WHERE schedule_key IS NOT NULL AND state IN ('created', 'retry', 'active');
CREATE TABLE {s}.schedule (
    name text NOT NULL,
    key text NOT NULL,
    cron text,
    every bigint,
    max_runs integer,
    runs integer NOT NULL DEFAULT 0,
    data text NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    PRIMARY KEY (name, key)
);
"""


@_migration(2)
def _paused(s: str) -> str:
    # A paused queue (the monitor's pause): the lease statement probes it by primary key.
    # `ms` made total: a timestamptz may be +-infinity (another program's write), which
    # `extract` cannot give as a bigint; it reads as the largest stored integer, signed.
    return f"""
CREATE TABLE {s}.paused (
    name text PRIMARY KEY,
    paused_on timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE OR REPLACE FUNCTION {s}.ms(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN isfinite(t) THEN floor(extract(epoch FROM t) * 1000)::bigint
                      WHEN t > 'epoch'::timestamptz THEN {MAX_STORED_INT}
                      ELSE -{MAX_STORED_INT} END $$;
"""


@_migration(3)
def _cancel(s: str) -> str:
    """Cancelling (`JobHandle.cancel`): the `cancelled` state, and the lease token of the
    attempt asked to stop, on the job's own row (so it goes with the row: a later job that
    reuses the id starts without it)."""
    return f"""
ALTER TABLE {s}.job DROP CONSTRAINT job_state_check;
ALTER TABLE {s}.job ADD CONSTRAINT job_state_check
    CHECK (state IN ('created', 'retry', 'active', 'completed', 'failed', 'cancelled'));
ALTER TABLE {s}.job ADD COLUMN cancel_requested bigint;
"""


@_migration(4)
def _limits(s: str) -> str:
    """Rate limits and deduplication (`limits`): a rate-limit window per queue and group,
    and a deduplication key per queue, each row locked by the statement that counts in it."""
    return f"""
CREATE TABLE {s}.rate_window (
    name text NOT NULL,
    grp text NOT NULL,
    ends_at timestamptz NOT NULL,
    starts integer NOT NULL,
    PRIMARY KEY (name, grp)
);
CREATE TABLE {s}.dedupe_key (
    name text NOT NULL,
    key text NOT NULL,
    job_id text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (name, key)
);
CREATE INDEX dedupe_key_expiry ON {s}.dedupe_key (name, expires_at);
CREATE INDEX dedupe_key_job ON {s}.dedupe_key (name, job_id);
"""


LATEST_VERSION = max(MIGRATIONS)


def lock_key(schema: str) -> str:
    """The text whose hash names the advisory lock of `schema`'s migrations."""
    return f"pikku_queue:migrate:{schema}"


def bootstrap(schema: str) -> str:
    """What runs first in the migration transaction, after the lock: the schema and the
    version table (idempotent)."""
    return (
        f"CREATE SCHEMA IF NOT EXISTS {schema};"
        f" CREATE TABLE IF NOT EXISTS {schema}.version (version integer PRIMARY KEY,"
        " migrated_on timestamptz NOT NULL DEFAULT clock_timestamp())"
    )


def channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a schema's queues (the payload is the queue name)."""
    return f"pikku_{schema}"


def finished_channel(schema: str) -> str:
    """The channel a settle notifies when jobs finish (the payload is the queue name), for
    producers waiting on `JobHandle.result()`."""
    return f"pikku_{schema}_finished"
