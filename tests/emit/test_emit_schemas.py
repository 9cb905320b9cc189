"""JSON Schemas come from one child process: user modules that crash, exit, print or fail to
import become diagnostics naming the module; results are cached until a source changes."""

from __future__ import annotations

from pathlib import Path

from emit_support import config_for, decl
from pikkugen.schemas import build_schemas


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "src" / "app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / name).write_text(text)
    return tmp_path


MODELS = """
import dataclasses, enum
from pydantic import BaseModel
from typing_extensions import TypedDict
print("noise on stdout must not corrupt the answer")

class Email(BaseModel):
    to: str

class Point(TypedDict):
    x: int

@dataclasses.dataclass
class Box:
    size: float

class Color(enum.Enum):
    RED = "red"
"""


def test_every_kind_of_type_gets_a_schema(tmp_path: Path) -> None:
    root = project(tmp_path, {"models.py": MODELS})
    mods = ("app.models",)
    processors = [
        decl("model", input="app.models.Email", output="list[app.models.Email]", modules=mods),
        decl("typeddict", input="app.models.Point", output="dict[str, int]", modules=mods),
        decl("dataclass", input="app.models.Box", output="app.models.Color | None", modules=mods),
        decl("builtins", input="tuple[int, str]", output="None"),
    ]
    result = build_schemas(config_for(root), processors)
    assert result.diagnostics == ()
    email_in, email_out = result.schemas["model"]
    assert email_in["title"] == "Email" and email_in["required"] == ["to"]
    assert email_out["type"] == "array"
    assert result.schemas["typeddict"][0]["properties"] == {"x": {"title": "X", "type": "integer"}}
    assert result.schemas["dataclass"][0]["properties"]["size"]["type"] == "number"
    assert result.schemas["dataclass"][1]["anyOf"][1] == {"type": "null"}
    assert result.schemas["builtins"] == (
        {
            "maxItems": 2,
            "minItems": 2,
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "type": "array",
        },
        {"type": "null"},
    )


def test_import_failures_name_the_module_and_the_exception(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "raises.py": "raise ValueError('no config file')\n",
            "exits.py": "import sys\nsys.exit(3)\n",
            "fine.py": "import enum\n\nclass Ok(enum.IntEnum):\n    A = 1\n",
        },
    )
    processors = [
        decl("a", input="app.raises.X", modules=("app.raises",), line=4),
        decl("b", input="app.exits.X", modules=("app.exits",), line=9),
        decl("c", input="app.fine.Missing", modules=("app.fine",), line=12),
        decl("d", input="int", output="app.fine.Ok", modules=("app.fine",), line=20),
    ]
    result = build_schemas(config_for(root), processors)
    messages = {(d.code, d.line): d.message for d in result.diagnostics}
    assert "'app.raises'" in messages["PK701", 4]
    assert "ValueError: no config file" in messages["PK701", 4]
    assert "'app.exits'" in messages["PK701", 9] and "SystemExit: 3" in messages["PK701", 9]
    assert "AttributeError" in messages["PK702", 12]
    assert all("Traceback" not in m for m in messages.values())
    assert set(result.schemas) == {"d"}  # the other processors still got their schemas


def test_a_crashing_interpreter_is_a_diagnostic_naming_the_module(tmp_path: Path) -> None:
    root = project(tmp_path, {"crash.py": "import os\nos._exit(7)\n"})
    result = build_schemas(
        config_for(root), [decl("a", input="app.crash.X", modules=("app.crash",))]
    )
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "PK703"
    assert "exited with status 7" in diagnostic.message
    assert "'app.crash'" in diagnostic.message


def test_results_are_cached_until_a_source_file_changes(tmp_path: Path) -> None:
    counter = tmp_path / "imports.txt"
    models = f"from pydantic import BaseModel\nopen({str(counter)!r}, 'a').write('x')\n"
    root = project(tmp_path, {"models.py": models + "class A(BaseModel):\n    a: int\n"})
    config = config_for(root, cache=True)
    processors = [decl("q", input="app.models.A", modules=("app.models",))]
    first = build_schemas(config, processors)
    second = build_schemas(config, processors)
    assert first == second
    assert counter.read_text() == "x"  # the second answer came from the cache
    (root / "src" / "app" / "models.py").write_text(models + "class A(BaseModel):\n    b: str\n")
    third = build_schemas(config, processors)
    assert counter.read_text() == "xx"
    assert list(third.schemas["q"][0]["properties"]) == ["b"]
    assert len(list((root / ".pikkugen_cache" / "schemas").iterdir())) == 1  # no pile-up


def test_a_large_answer_comes_back_whole(tmp_path: Path) -> None:
    big = (
        "from pydantic import create_model\n"
        "Big = create_model('Big', **{f'field_{i}': (int, ...) for i in range(4000)})\n"
    )
    root = project(tmp_path, {"big.py": big})
    result = build_schemas(config_for(root), [decl("q", input="app.big.Big", modules=("app.big",))])
    assert result.diagnostics == ()
    assert len(result.schemas["q"][0]["properties"]) == 4000  # far more than a pipe buffer
