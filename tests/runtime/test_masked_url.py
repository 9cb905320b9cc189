"""Backend URLs are printed by workers and errors; their passwords must never be."""

from pikku_queue.adapters import masked_url


def test_password_is_masked_and_the_rest_kept() -> None:
    assert masked_url("redis://:s3cret@127.0.0.1:6390/2") == "redis://:***@127.0.0.1:6390/2"
    assert masked_url("rediss://user:pw@host/0?prefix=x") == "rediss://user:***@host/0?prefix=x"


def test_urls_without_password_are_unchanged() -> None:
    for url in ("sqlite:///.pikku/queue.db", "memory://", "redis://127.0.0.1:6379/0"):
        assert masked_url(url) == url
