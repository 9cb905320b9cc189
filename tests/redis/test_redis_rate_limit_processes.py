"""A rate limit on Redis holds across worker processes: two processes on one queue start at
most `max` jobs per window between them (BullMQ's global rate limit, in the queue's keys)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rate_limit_worker import check_two_processes_share_one_limit

pytestmark = pytest.mark.redis


@pytest.mark.slow
def test_two_processes_share_one_rate_limit(redis_url: str, tmp_path: Path) -> None:
    check_two_processes_share_one_limit(redis_url, tmp_path)
