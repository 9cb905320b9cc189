"""What each backend honours, as data.

Each backend declares its `Capabilities` inside its `BackendEntry`, in its adapter package
(`pikku_queue.adapters.<name>`); `pikku_queue.adapters.catalog` lists them. One declaration
feeds every reader: the generator (an option a configured runtime cannot honour is a
diagnostic at generate time), the README's support table (generated from it), the client's
refusals and the conformance suite (which skips a scenario a backend declares unsupported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pikku_queue.options import MAX_JOB_ID_LENGTH, MAX_PRIORITY, MIN_PRIORITY, DedupeMode

Feature = Literal[
    "priority",
    "delay",
    "cron",
    "job_id",
    "global_concurrency",
    "results",
    "progress",
    "timeout",
    "batch",
    "stalled_recovery",
    "events",
    "dead_letter",
    "metrics",
    "list_jobs",
    "retry_job",
    "remove_job",
    "promote_job",
    "pause_queue",
    "clean_jobs",
    "replay_dead_letters",
    "rate_limit",
    "rate_limit_group",
    "dedupe",
    "dedupe_replace",
    "dedupe_extend",
]

FEATURE_TITLES: dict[Feature, str] = {
    "priority": f"priority ({MIN_PRIORITY}..{MAX_PRIORITY:,})",
    "delay": "delay",
    "cron": "repeat (cron)",
    "job_id": f"job_id idempotency (≤ {MAX_JOB_ID_LENGTH} chars, no ':', not an integer)",
    "global_concurrency": "max_concurrency (global)",
    "results": "results (`JobHandle.result`)",
    "progress": "progress",
    "timeout": "timeout",
    "batch": "batch",
    "stalled_recovery": "stalled-job recovery",
    "events": "events",
    "dead_letter": "dead-letter queue",
    "metrics": "monitor stats",
    # What `pikkugen monitor` shows and does (the optional protocols of `pikku_queue.backend`):
    # it offers an action only where the backend declares it here.
    "list_jobs": "monitor: jobs by state, a page at a time",
    "retry_job": "monitor: retry a failed job",
    "remove_job": "monitor: remove a job",
    "promote_job": "monitor: promote a delayed job",
    "pause_queue": "monitor: pause / resume a queue",
    "clean_jobs": "monitor: clean completed / failed jobs",
    "replay_dead_letters": "monitor: list and replay dead letters",
    "rate_limit": "rate_limit (global, across workers)",
    "rate_limit_group": "rate_limit group_key (per payload field value)",
    "dedupe": "dedupe mode drop",
    "dedupe_replace": "dedupe mode replace (debounce)",
    "dedupe_extend": "dedupe mode extend",
}

#: The feature each `Dedupe.mode` needs.
DEDUPE_FEATURES: dict[DedupeMode, Feature] = {
    "drop": "dedupe",
    "replace": "dedupe_replace",
    "extend": "dedupe_extend",
}

#: The monitor's features (the web monitor reads these to know what it may offer).
MONITOR_FEATURES: frozenset[Feature] = frozenset(
    {
        "list_jobs",
        "retry_job",
        "remove_job",
        "promote_job",
        "pause_queue",
        "clean_jobs",
        "replay_dead_letters",
    }
)


@dataclass(frozen=True)
class Capabilities:
    backend: str
    title: str
    supported: frozenset[Feature]
    #: Longest delay the backend can hold, in ms (None: unlimited).
    max_delay_ms: int | None = None
    #: Largest payload in bytes (None: unlimited).
    max_payload_bytes: int | None = None
    #: Extra rule for queue names on this backend (a regex), with the reason.
    queue_name_pattern: str | None = None
    queue_name_rule: str | None = None
    #: Why a feature is missing or partial, shown in diagnostics and the support table.
    notes: dict[Feature, str] = field(default_factory=dict)
    #: False for a backend whose rules the generator knows but whose adapter is not built yet.
    implemented: bool = True
    #: False when "cron" holds only for a processor's own `repeat` (set up by the deployment,
    #: e.g. an EventBridge schedule) and a per-job `Repeat` at enqueue must be refused.
    job_repeat: bool = True
    #: A deduplication window the backend keeps itself and cannot change (SQS FIFO: 5 min):
    #: a `Dedupe.ttl_ms` other than it is a diagnostic; None: the window is `ttl_ms`.
    dedupe_window_ms: int | None = None

    def supports(self, feature: Feature) -> bool:
        return feature in self.supported


#: Every feature: what a backend that honours them all declares (`ALL_FEATURES - {...}`).
ALL_FEATURES: frozenset[Feature] = frozenset(FEATURE_TITLES)


@dataclass(frozen=True)
class BackendEntry:
    """Everything the code needs to know about one backend, declared once, in its adapter
    package's `__init__` (`BACKEND = BackendEntry(...)`), and read through
    `pikku_queue.adapters.catalog` by the URL resolver, tracing, the generator's checks, the
    support table and the conformance suite's skips, so that adding a backend is that one
    declaration plus its line in the catalog."""

    capabilities: Capabilities
    #: The URL schemes that name it (`redis`, `rediss`); the first is its own.
    schemes: tuple[str, ...]
    #: `module:function` that opens it from a URL, imported on first use (so a process that
    #: only needs SQLite never imports redis or boto3); None when no URL can open it.
    factory: str | None
    #: The pip extra of `pikku-queue` that installs its client library; None: pydantic only.
    extra: str | None
    #: Its `messaging.system` in traces (OpenTelemetry's messaging conventions).
    trace_system: str
    #: Why a URL cannot open it (when `factory` is None), for `connect`'s error.
    opened_by: str | None = None

    @property
    def name(self) -> str:
        return self.capabilities.backend
