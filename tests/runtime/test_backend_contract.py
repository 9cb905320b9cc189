"""The backend contract lives in `pikku_queue.backend`: the built-in backends satisfy the
optional protocols they implement, and no caller probes those members with `getattr`."""

from __future__ import annotations

import re
from pathlib import Path

from pikku_queue import backend as contract
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.adapters.sqlite.backend import SqliteBackend

RUNTIME = Path(contract.__file__).resolve().parent
OPTIONAL = ("clock", "poll_interval_s", "closed", "enqueue_many", "finished_summary", "get_job")


def test_no_getattr_probe_for_contract_members() -> None:
    names = "|".join(OPTIONAL)
    probe = re.compile(r"getattr\([^)]*[\"'](" + names + ")[\"']")
    found = [
        f"{path.relative_to(RUNTIME)}:{n}"
        for path in RUNTIME.rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if probe.search(line)
    ]
    assert found == []


async def test_built_in_backends_satisfy_their_optional_protocols(tmp_path: Path) -> None:
    sqlite = SqliteBackend(str(tmp_path / "q.db"))
    memory = MemoryBackend()
    try:
        for backend in (sqlite, memory):
            assert isinstance(backend, contract.Backend)
            assert isinstance(backend, contract.PullSource)
            assert isinstance(backend, contract.HasClock)
            assert isinstance(backend, contract.Polled)
            assert isinstance(backend, contract.BulkEnqueue)
            assert isinstance(backend, contract.Closable)
            assert isinstance(backend, contract.SummarisesFinished)
        assert not sqlite.closed
    finally:
        await sqlite.close()
        await memory.close()
    assert sqlite.closed and memory.closed
