"""Reading redis:// URLs: our options come out, redis-py's stay in, passwords never show."""

from __future__ import annotations

import pytest
from pikku_queue.adapters.redis.jobs import backoff_is_native, native_backoff
from pikku_queue.adapters.redis.url import parse_redis_url
from pikku_queue.errors import BackendError
from pikku_queue.options import RetryOptions


def test_own_parameters_are_read_and_removed() -> None:
    settings = parse_redis_url(
        "rediss://:pw@cache.example:6380/2?prefix=shop&remove_on_complete=1000"
        "&remove_on_fail=age:3600,count:50&ssl_cert_reqs=none"
    )
    assert settings.prefix == "shop"
    assert settings.connection_url == "rediss://:pw@cache.example:6380/2?ssl_cert_reqs=none"
    assert settings.default_job_options() == {
        "removeOnComplete": 1000,
        "removeOnFail": {"age": 3600, "count": 50},
    }
    assert settings.display_url.startswith("rediss://:***@cache.example:6380/2")
    assert "pw" not in settings.display_url


def test_defaults() -> None:
    settings = parse_redis_url("redis://localhost")
    assert (settings.prefix, settings.default_job_options()) == ("bull", {})
    assert parse_redis_url("redis://h/0?remove_on_complete=true").remove_on_complete is True


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost", "not a Redis URL"),
        ("redis://localhost/zero", "database number"),
        ("redis://localhost:notaport", "bad port"),
        ("redis://localhost?prefix=a:b", "cannot hold ':'"),
        ("redis://localhost?remove_on_fail=soon", "remove_on_fail='soon' is not understood"),
        ("redis://:secret@localhost/x", "database number"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(BackendError, match=message) as caught:
        parse_redis_url(url)
    assert "secret" not in str(caught.value)


def test_native_backoff_only_where_bullmq_computes_the_same_delays() -> None:
    assert backoff_is_native(RetryOptions(attempts=3, backoff="fixed", delay=100))
    assert backoff_is_native(RetryOptions(attempts=3, backoff="exponential", delay=100))
    assert not backoff_is_native(RetryOptions(attempts=3, backoff="exponential", factor=3))
    assert not backoff_is_native(
        RetryOptions(attempts=3, backoff="exponential", delay=10, max_delay=50)
    )
    assert not backoff_is_native(RetryOptions(attempts=3, delay=100, jitter=0.5))
    # Stored opts always carry a native type, so a Node worker never meets an unknown strategy.
    assert native_backoff(RetryOptions(attempts=3, backoff="exponential", factor=3, delay=5)) == {
        "type": "exponential",
        "delay": 5,
    }
    assert native_backoff(RetryOptions(attempts=1, delay=5)) is None
