"""PK705: a `Dedupe` key or a `RateLimit` group_key is held against the input type's JSON
Schema (the one the generator built), with the closest field as a hint."""

from __future__ import annotations

from typing import Any

from emit_support import decl
from pikkugen.schemas import PAYLOAD_FIELD, payload_field_problems
from pydantic import BaseModel, TypeAdapter


class Tenant(BaseModel):
    tenant_id: str


class Order(BaseModel):
    order_id: int
    tenant: Tenant
    lines: list[str] = []


def schema_of(kind: Any) -> dict[str, Any]:
    return TypeAdapter(kind).json_schema()


def problems(kind: Any, **options: Any) -> list[tuple[str, str, str | None]]:
    found = payload_field_problems(decl("q", path="src/app/jobs.py", **options), schema_of(kind))
    return [(d.code, d.message, d.hint) for d in found]


def test_named_fields_of_the_type_pass() -> None:
    assert problems(Order, dedupe={"key": "o-{order_id}", "ttl_ms": 10}) == []
    assert problems(Order, rate_limit={"max": 1, "per_ms": 10, "group_key": "order_id"}) == []


def test_a_missing_field_is_named_with_the_closest_one() -> None:
    [(code, message, hint)] = problems(Order, dedupe={"key": "{order}", "ttl_ms": 10})
    assert code == PAYLOAD_FIELD == "PK705"
    assert "'order'" in message and "lines, order_id, tenant" in message
    assert hint == "did you mean 'order_id'?"
    [(_, message, _)] = problems(
        Order, rate_limit={"max": 1, "per_ms": 10, "group_key": "tenant_id"}
    )
    assert "rate_limit group_key" in message  # a nested field is not a payload field


def test_a_list_or_object_field_cannot_be_part_of_a_key() -> None:
    found = problems(Order, dedupe={"key": "{lines}-{tenant}", "ttl_ms": 10})
    assert [m.split("holds a JSON ")[1].split(";")[0] for _, m, _ in found] == ["array", "object"]


def test_a_scalar_input_has_no_fields_and_a_dict_is_not_judged() -> None:
    [(code, message, _)] = problems(int, dedupe={"key": "{n}", "ttl_ms": 10})
    assert code == "PK705" and "a JSON integer" in message
    assert problems(dict[str, Any], dedupe={"key": "{anything}", "ttl_ms": 10}) == []
    assert problems(int, dedupe={"key": "constant", "ttl_ms": 10}) == []  # no placeholder
