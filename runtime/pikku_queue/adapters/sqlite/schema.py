"""The SQLite backend's tables, indexes and connection settings, in one place.

Why these and not others:

* Partial indexes hold only the rows each query needs (waiting by priority then sequence,
  delayed by due time, active by lease, finished by time), so leasing the next job costs the
  same with 10 or 100,000 jobs waiting.
* `jobs_by_state` serves the monitor (`sqlite.admin`): a page of one state, newest first, from
  any position. The counts are not read from it (that reads an entry per job): `job_counts`
  holds them, kept by triggers (`sqlite.counters`), and `jobs_scheduled` (one entry per
  repeat schedule) counts the next runs of schedules.
* WAL with `synchronous=NORMAL` keeps every committed transaction across a process crash (not
  across a power cut: that would need `FULL`), and lets readers run beside the one writer.
* `rate_windows` and `dedupe_keys` hold the rate limits' windows and the deduplication keys
  (`sqlite.limits`), one row per queue and group or key.
* The DDL runs in one `BEGIN IMMEDIATE` transaction, so processes opening a fresh file
  together do not race to create it.
* Every reader is total (`pikku_queue.fields`): the connection reads TEXT that is not UTF-8
  (another program may write it) as text with surrogate escapes instead of failing the fetch.
  A job in a state no worker serves has no index of its own (one would cost every state change
  about a third of a settle): the lease looks for such jobs now and then (`UNKNOWN_STATE`).
"""

from __future__ import annotations

import sqlite3

from pikku_queue.adapters.sqlite.counters import install_counters

#: The states pikkugen writes (`records.JobState`); a row in any other is leased to be
#: dead-lettered as `invalid_record`.
JOB_STATES = ("waiting", "delayed", "active", "completed", "failed", "dead_lettered")
#: The condition of such a row.
UNKNOWN_STATE = "state NOT IN ({})".format(", ".join(f"'{state}'" for state in JOB_STATES))

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    run_at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    stalls INTEGER NOT NULL DEFAULT 0,
    token INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    worker TEXT,
    progress TEXT,
    result TEXT,
    error TEXT,
    enqueued_at INTEGER NOT NULL,
    finished_at INTEGER,
    schedule TEXT,
    meta TEXT,
    UNIQUE (queue, id)
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (queue, priority, seq) WHERE state = 'waiting';
CREATE INDEX IF NOT EXISTS jobs_delayed ON jobs (queue, run_at) WHERE state = 'delayed';
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (queue, lease_until) WHERE state = 'active';
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (queue, finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (queue, state, seq);
CREATE INDEX IF NOT EXISTS jobs_scheduled ON jobs (queue, run_at)
    WHERE state = 'delayed' AND schedule IS NOT NULL;
CREATE TABLE IF NOT EXISTS job_counts (
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS paused_queues (
    queue TEXT PRIMARY KEY,
    paused_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS schedules (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    cron TEXT,
    every INTEGER,
    max_runs INTEGER,
    runs INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, key)
);
CREATE TABLE IF NOT EXISTS rate_windows (
    queue TEXT NOT NULL,
    grp TEXT NOT NULL,
    ends_at INTEGER NOT NULL,
    starts INTEGER NOT NULL,
    PRIMARY KEY (queue, grp)
);
CREATE TABLE IF NOT EXISTS dedupe_keys (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    job_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue, key)
);
CREATE INDEX IF NOT EXISTS dedupe_keys_expiry ON dedupe_keys (queue, expires_at);
"""

#: The columns `get_job` reads, in the order `job_info` unpacks them.
JOB_COLUMNS = "id, queue, state, CAST(payload AS BLOB), attempts, progress, result, error, enqueued_at, finished_at, run_at"


def open_connection(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), schema in place."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
    )
    conn.text_factory = _text
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        conn.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
        _add_meta_column(conn)
        install_counters(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return conn


def _text(data: bytes) -> str:
    """A TEXT value as str; bytes that are not UTF-8 keep their surrogate escapes, which the
    readers refuse (`payloads.stored_form` recovers the bytes)."""
    return data.decode("utf-8", "surrogateescape")


def _add_meta_column(conn: sqlite3.Connection) -> None:
    """Files made before `meta` (the job's trace context, `pikku_queue.tracing`) get it."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    if "meta" not in columns:
        conn.execute("BEGIN IMMEDIATE")
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        if "meta" not in columns:
            conn.execute("ALTER TABLE jobs ADD COLUMN meta TEXT")
        conn.execute("COMMIT")
