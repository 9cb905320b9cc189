"""The stored-field scenario of the shared conformance suite on the Cloudflare double: any
value a foreign producer or the JS conversion hands the consumer in a message's body, id,
timestamp or attempts gives that one message a verdict, and its neighbours in the batch run
(the rest of the suite assumes a backend that can look jobs up and run a worker loop, which a
Cloudflare Worker cannot; test_cloudflare_worker.py runs those scenarios on the double)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from cf_backend import DoubleBackend
from hypothesis import strategies as st
from pikku_queue.backend import Backend
from pikku_queue.conformance import BackendConformance

#: What JavaScript can hand a Python Worker for a value, once Pyodide converted it.
JS_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and the infinities too: a v8 body can hold them
    | st.text(max_size=12)
    | st.binary(max_size=12)
    | st.builds(object),  # a JsProxy of a Date, a Map, a class instance
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4) | st.integers(0, 9), inner, max_size=3)
    ),
    max_leaves=8,
)

KEEP = {
    "test_any_value_in_any_stored_field_gets_a_verdict",
    "test_many_values_in_any_stored_field_get_a_verdict",
}


class TestCloudflareDoubleStoredFields(BackendConformance):
    # Only the stored-field scenarios: the others are not collected for this backend.
    locals().update(
        {
            name: None
            for name in dir(BackendConformance)
            if name.startswith("test_") and name not in KEEP
        }
    )

    def stored_fields(self) -> Mapping[str, Any]:
        return {
            "body": JS_VALUES
            | st.text().map(lambda t: '{"n": ' + t)  # JSON text cut short
            | st.binary(),
            "attempts": JS_VALUES | st.integers(min_value=-5, max_value=5),
            "timestamp": JS_VALUES,
            "id": JS_VALUES,
        }

    async def corrupt(
        self, backend: Backend, queue: str, job_id: str, field: str, value: object
    ) -> None:
        assert isinstance(backend, DoubleBackend)
        backend.platform.queue(queue).stored[job_id].overrides[field] = value

    @pytest.fixture
    async def backend(self) -> AsyncIterator[DoubleBackend]:
        yield DoubleBackend()
