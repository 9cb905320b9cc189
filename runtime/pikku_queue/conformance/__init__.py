"""One conformance suite for every backend: the same scenarios, the same expectations.

Every backend (memory, SQLite, Redis, SQS, a third party's) promises the same semantics; this
suite is how that promise is checked. Scenarios a backend's `capabilities` declare unsupported
are skipped, so the skips in a report are exactly the gaps in the support table.

Run it against a backend by subclassing `BackendConformance` in a test module and providing a
`backend` fixture. The scenarios are plain `async def` tests: they need pytest-asyncio in auto
mode (`asyncio_mode = "auto"` in your pytest configuration; strict mode does not collect them)::

    import pytest
    from pikku_queue.conformance import BackendConformance

    class TestMyBackend(BackendConformance):
        lease_ms = 1000      # short leases so the stalled-job scenarios finish quickly

        @pytest.fixture
        async def backend(self, tmp_path):
            backend = MyBackend(...)
            yield backend
            await backend.close()

Knobs (class attributes): `lease_ms`, `backoff_ms`, `delay_ms`, `run_timeout_s`. Override
`abandon(backend, queue)` if your backend is not a `PullSource`: it must lease one job of
`queue` as a worker that then dies (for the stalled-job scenarios), or skip.

Every reader is total: override `stored_fields()` (each field your backend stores for a job,
with a hypothesis strategy of raw values a foreign writer could put there) and
`corrupt(backend, queue, job_id, field, value)` (overwrite that field of a waiting job past
every pikkugen writer; raise `StoredValueRefused` when your store's types refuse the value),
and `test_any_value_in_any_stored_field_gets_a_verdict` checks that
any such value ends, for that one job alone and in bounded time, in a verdict. It needs
hypothesis, imported only when that scenario runs.
"""

from pikku_queue.conformance.suite import BackendConformance, Doubled, Item, StoredValueRefused

__all__ = ["BackendConformance", "Doubled", "Item", "StoredValueRefused"]
