"""The web monitor on SQS shows what SQS can tell (counts from the queue attributes, the
dead-letter queue) and says that it cannot list jobs."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "observability"))

from monitor_server import serving
from pikkugen.web_monitor.config import MonitorConfig

pytestmark = pytest.mark.sqs


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_the_monitor_on_sqs(queues: Any, backend_url: str) -> None:
    queues.create("mon-dlq")
    queues.create("mon")
    for n in range(3):
        queues.sqs.send_message(QueueUrl=queues.url("mon"), MessageBody=json.dumps({"n": n}))
    config = MonitorConfig(url=backend_url, queues=["mon"], dead_letter_queues={"mon": "mon-dlq"})
    with serving(config) as base:
        stats = _get(base + "api/stats")
        [mon] = [q for q in stats["queues"] if q["queue"] == "mon"]
        assert mon["counts"]["waiting"] == 3
        # SQS offers replay only; each missing feature comes with the backend's reason
        assert stats["features"] == ["replay_dead_letters"]
        assert "cannot list its messages" in stats["missing"]["list_jobs"]
        assert "no pause" in stats["missing"]["pause_queue"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(base + "api/jobs?queue=mon&state=waiting")
        assert refused.value.code == 404
        assert "cannot list jobs" in json.loads(refused.value.read())["error"]
        assert _get(base + "api/dlq?queue=mon-dlq")["records"] == []
        assert len(_get(base + "api/series?queue=mon")["buckets"]) >= 30
