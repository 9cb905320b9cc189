"""Processor signatures are `(data)` or `(ctx, data)`, positionally: `(data: Sms, extra: int)`
was accepted with `int` as the payload type."""

from __future__ import annotations

import pytest
from scanner_helpers import Tree, position_of

MODELS = "class Sms:\n    pass\n"


def scan(tree: Tree, signature: str, prelude: str = "") -> tuple[str, Tree]:
    source = (
        "from pikku_queue import queue_processor\n"
        "from app.models import Sms\n"
        f"{prelude}\n\n"
        '@queue_processor("sms")\n'
        f"async def send({signature}) -> None:\n"
        "    return None\n"
    )
    tree.write({"app/__init__.py": "", "app/models.py": MODELS, "app/jobs.py": source})
    return source, tree


@pytest.mark.parametrize("signature", ["data: Sms, extra: int", "data: Sms, extra: int = 0"])
def test_a_payload_followed_by_another_parameter_is_refused(tree: Tree, signature: str) -> None:
    source, _ = scan(tree, signature)
    found = tree.scan()
    assert found.names == []
    assert found.where("PK305") == ("app/jobs.py", *position_of(source, "data: Sms"))
    d = found.only("PK305")
    assert d.message == (
        "`send` takes (data, extra) and the first is annotated as something other than the job "
        "context; a processor takes (data) or (ctx, data), so this would read the payload type "
        "from `extra`"
    )
    assert d.hint is not None and "services" in d.hint


@pytest.mark.parametrize(
    ("signature", "prelude"),
    [
        ("ctx, data: Sms", ""),
        ("ctx: JobContext, data: Sms", "from pikku_queue import JobContext"),
        ("ctx: pq.JobContext, data: Sms", "import pikku_queue as pq"),
        ("ctx: 'JobContext', data: Sms", "from pikku_queue.context import JobContext"),
        ("ctx: Ctx, data: Sms", "from pikku_queue import JobContext\nCtx = JobContext"),
        ("ctx: Any, data: Sms", "from typing import Any"),
        ("ctx: object, data: Sms", ""),
        ("data: Sms", ""),
    ],
)
def test_a_context_first_is_accepted(tree: Tree, signature: str, prelude: str) -> None:
    scan(tree, signature, prelude)
    found = tree.scan()
    assert found.names == ["sms"], found.result.diagnostics
    assert found.processor("sms").input.annotation == "app.models.Sms"


def test_three_positional_parameters_stay_pk305(tree: Tree) -> None:
    scan(tree, "ctx, data: Sms, extra: int")
    found = tree.scan()
    assert "takes 3 positional parameters" in found.only("PK305").message
