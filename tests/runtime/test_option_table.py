"""The 14 processor options are declared once, by `ProcessorOptions`: the declaration
functions' keywords (`Unpack[ProcessorOptionArgs]`), the scanner's known keywords and the
registry's options all come from it."""

from __future__ import annotations

import inspect

import pytest
from pikku_queue import add_queue_processor, queue_processor
from pikku_queue.options import ProcessorOptionArgs, ProcessorOptions
from pikkugen.scanner.build import OPTION_NAMES
from pydantic import ValidationError


def test_every_source_names_the_model_fields() -> None:
    fields = list(ProcessorOptions.model_fields)
    assert len(fields) == 14
    assert list(ProcessorOptionArgs.__annotations__) == fields
    assert list(OPTION_NAMES) == fields  # the scanner's known keywords
    for declare in (queue_processor, add_queue_processor):
        parameters = inspect.signature(declare).parameters
        [var] = [p for p in parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
        assert var.name == "options"
        assert not set(parameters) & set(fields)  # no option spelled out a second time


def test_keywords_validate_through_the_model() -> None:
    def job(data: dict[str, int]) -> None: ...

    spec = add_queue_processor(
        name="q", func=job, concurrency=3, events=["completed"], retry_options={"attempts": 2}
    )
    assert spec.options == ProcessorOptions.model_validate(
        {"concurrency": 3, "events": ("completed",), "retry_options": {"attempts": 2}}
    )
    assert queue_processor("q", max_concurrency=None, events=None)(job) is job
    with pytest.raises(ValidationError, match="concurency"):
        queue_processor("q", concurency=2)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="concurrency"):
        queue_processor("q", concurrency=0)
