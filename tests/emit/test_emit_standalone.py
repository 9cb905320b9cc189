"""The standalone client reads only the schemas folder: its index is checked like any other
untrusted input, and same-named types of input and output cannot clobber each other."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from golden import CASES
from pikkugen.standalone import combined_schema, generate_standalone, standalone_config


def test_an_index_cannot_point_outside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text("{}")
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    entry = {"name": "q", "input_schema": "../secret.json", "output_schema": "q.output.json"}
    (schemas / "queues.json").write_text(json.dumps({"version": 1, "queues": [entry]}))
    result = generate_standalone(schemas, standalone_config(schemas, tmp_path / "client"))
    (problem,) = result.diagnostics
    assert problem.code == "PK401" and "plain names" in problem.message
    assert result.files == {}


def test_input_and_output_types_with_one_title_both_survive() -> None:
    item_in = {"title": "Item", "type": "object", "properties": {"a": {"type": "integer"}}}
    item_out = {"title": "Item", "type": "object", "properties": {"b": {"type": "string"}}}
    combined = combined_schema(item_in, item_out)
    assert combined["properties"] == {
        "input": {"$ref": "#/$defs/Item"},
        "output": {"$ref": "#/$defs/ItemOutput"},
    }
    assert combined["$defs"]["Item"] == item_in and combined["$defs"]["ItemOutput"] == item_out


def test_shapes_without_a_name_stay_inline() -> None:
    listed = {
        "type": "array",
        "items": {"$ref": "#/$defs/Item"},
        "$defs": {"Item": {"title": "Item"}},
    }
    combined = combined_schema(listed, {"type": "integer"})
    assert combined["properties"]["input"] == {"type": "array", "items": {"$ref": "#/$defs/Item"}}
    assert combined["properties"]["output"] == {"type": "integer"}
    assert list(combined["$defs"]) == ["Item"]


def test_a_schemas_folder_outside_the_cwd_is_named_relatively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # another repository's checkout: an absolute path in the header would differ per machine
    schemas = tmp_path / "worker" / "gen" / "schemas"
    schemas.mkdir(parents=True)
    shutil.copytree(CASES / "basic" / "expected" / "schemas", schemas, dirs_exist_ok=True)
    service = tmp_path / "service"
    service.mkdir()
    monkeypatch.chdir(service)
    config = standalone_config(Path("../worker/gen/schemas"), Path("client"))
    result = generate_standalone(Path("../worker/gen/schemas"), config)
    assert not result.has_errors, result.diagnostics
    headers = {text.split("\n")[1] for name, text in result.files.items() if name.endswith(".py")}
    assert headers == {"# source: ../worker/gen/schemas"}
    assert str(tmp_path) not in "".join(result.files.values())
