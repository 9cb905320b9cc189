"""A rate limit on SQLite holds across worker processes: two processes on one file start at
most `max` jobs per window between them (the window lives in the file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rate_limit_worker import check_two_processes_share_one_limit


@pytest.mark.slow
def test_two_processes_share_one_rate_limit(tmp_path: Path) -> None:
    check_two_processes_share_one_limit(f"sqlite:///{tmp_path / 'queue.db'}", tmp_path)
