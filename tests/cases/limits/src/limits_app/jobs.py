"""Rate limits and deduplication pikkugen checks at generate time."""

from pikku_queue import Dedupe, RateLimit, queue_processor

from limits_app.models import Signup

LIMIT = RateLimit(max=100, per_ms=1000)


# Fine on sqlite and redis; PK801 on sqs and cloudflare (no shared rate limit, no dedupe).
@queue_processor(
    "welcome-email",
    rate_limit=LIMIT,
    dedupe=Dedupe(key="welcome-{user_id}", ttl_ms=60_000),
)
def welcome(data: Signup) -> None:
    return None


# PK705: the key names `user`, which Signup does not have (did you mean `user_id`?).
@queue_processor("typo-key", dedupe=Dedupe(key="{user}", ttl_ms=1000))
def typo(data: Signup) -> None:
    return None


# PK705: a list cannot be part of a key.
@queue_processor("list-key", dedupe=Dedupe(key="{tags}", ttl_ms=1000, mode="replace"))
def list_key(data: Signup) -> None:
    return None


# PK801 on redis (BullMQ has no per-group limits) and sqs, cloudflare.
@queue_processor("per-tenant", rate_limit=RateLimit(max=5, per_ms=1000, group_key="tenant"))
def per_tenant(data: Signup) -> None:
    return None


# PK203: strict types, as every option (a bool is not a count).
@queue_processor("strict-limit", rate_limit=RateLimit(max=True, per_ms=1000))
def strict_limit(data: Signup) -> None:
    return None


# PK203: a placeholder must name one field.
@queue_processor("bad-template", dedupe={"key": "{user id}", "ttl_ms": 1000})
def bad_template(data: Signup) -> None:
    return None


# On sqs a FIFO queue deduplicates, for SQS's own 5 minutes: ttl_ms=60_000 is a PK802 there.
@queue_processor("signups.fifo", dedupe=Dedupe(key="{user_id}", ttl_ms=60_000))
def fifo_signup(data: Signup) -> None:
    return None
