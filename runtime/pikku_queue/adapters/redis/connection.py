"""Opening Redis connections the way BullMQ needs them, and saying what is wrong when one
cannot be opened (a missing or wrong password, nothing listening) instead of letting a
retrying client hide the cause behind minutes of backoff."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

from pikku_queue.errors import BackendError

from .jobs import ENCODING_ERRORS
from .packing import fast_packing
from .url import RedisSettings


def explain_connection_error(settings: RedisSettings, exc: Exception) -> BackendError:
    """A `BackendError` that says what to change, for the errors users actually meet."""
    message = str(exc)
    where = settings.display_url
    if isinstance(exc, redis_errors.AuthenticationError) or "NOAUTH" in message:
        if urlsplit(settings.connection_url).password is None:
            return BackendError(
                f"Redis at {where} needs a password: put it in the URL as "
                f"redis://:PASSWORD@host:port/db ({message})"
            )
        return BackendError(f"Redis at {where} refused the URL's credentials ({message})")
    if isinstance(exc, redis_errors.ConnectionError | OSError):
        return BackendError(f"cannot connect to Redis at {where}: {message}")
    return BackendError(f"Redis error at {where}: {type(exc).__name__}: {message}")


def new_client(settings: RedisSettings, *, retries: int = 5) -> aioredis.Redis:
    """A redis-py client as BullMQ needs it (decoded responses), retrying dropped connections
    briefly so a Redis restart does not surface as an error."""
    client = aioredis.Redis.from_url(
        settings.connection_url,
        decode_responses=True,
        encoding_errors=ENCODING_ERRORS,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries) if retries else None,
        retry_on_error=[redis_errors.BusyLoadingError, redis_errors.TimeoutError]
        if retries
        else None,
    )
    return fast_packing(client)


async def check_connection(settings: RedisSettings) -> None:
    """Fail fast with a clear message (wrong password, nothing listening) instead of letting
    a retrying client hide the cause behind minutes of backoff."""
    client = aioredis.Redis.from_url(
        settings.connection_url, decode_responses=True, retry=Retry(NoBackoff(), 0)
    )
    try:
        await client.ping()
    except (redis_errors.RedisError, OSError, TypeError) as exc:
        # TypeError: a URL parameter redis-py passes on but its connection does not take.
        raise explain_connection_error(settings, exc) from exc
    finally:
        await client.aclose()
