"""A rate limit on PostgreSQL holds across worker processes: two processes on one database
start at most `max` jobs per window between them (the window is a row both lock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rate_limit_worker import check_two_processes_share_one_limit

pytestmark = pytest.mark.postgresql


@pytest.mark.slow
def test_two_processes_share_one_rate_limit(postgres_url: str, tmp_path: Path) -> None:
    check_two_processes_share_one_limit(postgres_url, tmp_path)
