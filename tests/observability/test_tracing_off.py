"""Off means off: with the OpenTelemetry API importable and no tracer provider set, enqueue and
attempt make no call into the tracer, the propagator or the context API, and no job carries a
trace context; a provider set later (even while the process runs) turns spans on for the next
jobs. Each case runs in a child process (`tracing_child.py`): a process takes one provider."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

CHILD = Path(__file__).with_name("tracing_child.py")


def run_child(tmp_path: Path, *flags: str, jobs: int = 20) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    out = subprocess.run(
        [sys.executable, str(CHILD), url, str(jobs), *flags],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_no_provider_no_span_work(tmp_path: Path) -> None:
    seen = run_child(tmp_path, jobs=20)
    assert seen["recording_before"] is False
    before = seen["before"]
    assert before["completed"] == 40 and before["results_ok"]
    assert seen["calls_before"] == {}  # not one span, context, injection or extraction
    assert before["carried_context"] == 0


def test_a_provider_set_later_turns_spans_on(tmp_path: Path) -> None:
    seen = run_child(tmp_path, "--set-provider", jobs=5)
    assert seen["calls_before"] == {}
    assert seen["recording_after"] is True
    after = seen["after"]
    assert after["completed"] == 10 and after["results_ok"]
    assert after["carried_context"] == 10  # each job carries its send span's context
    assert seen["span_names"] == ["process after", "send after"]
    # 5 single sends, 1 bulk send, 10 attempts.
    assert seen["spans"] == 5 + 1 + 10
