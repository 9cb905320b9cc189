"""The attempts rule's write: which stored opts the worker rewrites with the declaration."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pikku_queue.adapters.redis.jobs import declared_opts, retry_options_difference
from pikku_queue.options import RetryOptions

ONE = RetryOptions(attempts=1)
THREE = RetryOptions(attempts=3, backoff="fixed", delay=1000)


@pytest.mark.parametrize(
    "stored",
    [{}, {"attempts": 0}, {"attempts": 1}, {"delay": 0, "attempts": 0}],
)
def test_one_declared_attempt_agrees_with_bullmqs_default(stored: dict[str, Any]) -> None:
    """No `attempts` or 0 is one attempt to Node and to BullMQ's scripts: nothing to write."""
    assert declared_opts(stored, ONE) is None
    assert retry_options_difference(stored, ONE) is None


@pytest.mark.parametrize(
    ("stored", "declaration", "attempts"),
    [
        ({}, THREE, 3),
        ({"attempts": 0}, THREE, 3),
        ({"attempts": 1}, THREE, 3),
        ({"attempts": 2}, ONE, 1),
        ({"attempts": "0"}, ONE, 1),  # not a number Node compares as one: normalised
        ({"attempts": False}, ONE, 1),
        ({"attempts": 0, "backoff": {"type": "fixed", "delay": 5}}, ONE, 1),
    ],
)
def test_differing_opts_get_the_declaration(
    stored: dict[str, Any], declaration: RetryOptions, attempts: int
) -> None:
    wanted = declared_opts(stored, declaration)
    assert wanted is not None
    assert wanted["attempts"] == attempts
    assert declared_opts(wanted, declaration) is None  # written once, then it agrees


@given(
    stored=st.dictionaries(
        st.sampled_from(["attempts", "backoff", "delay", "jobId"]),
        st.one_of(st.none(), st.integers(-3, 5), st.text(max_size=3), st.booleans()),
    ),
    attempts=st.integers(1, 5),
)
def test_the_written_opts_always_agree_with_the_declaration(
    stored: dict[str, Any], attempts: int
) -> None:
    declaration = RetryOptions(attempts=attempts, backoff="fixed", delay=100)
    wanted = declared_opts(stored, declaration)
    after = stored if wanted is None else wanted
    assert declared_opts(after, declaration) is None
    assert {k: v for k, v in after.items() if k not in ("attempts", "backoff")} == {
        k: v for k, v in stored.items() if k not in ("attempts", "backoff")
    }
