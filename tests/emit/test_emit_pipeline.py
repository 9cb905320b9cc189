"""The generate() pipeline's own guards: name clashes with the client's names, optional
runtime emitters, and emitters that misbehave."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from emit_support import config_for, decl, scan_of
from pikkugen import runtimes
from pikkugen.emit import select
from pikkugen.emit.base import EmitInput, templates_dir
from pikkugen.generate import MANIFEST, generate


def test_types_are_imported_by_name_unless_that_would_clash(tmp_path: Path) -> None:
    processors = [
        decl(
            "a",
            input="shop.models.Email",
            output="list[shop.models.Item]",
            modules=("shop.models",),
        ),
        decl(
            "b",
            input="shop.legacy.Item",
            output="typing.Optional[int]",
            modules=("shop.legacy", "typing"),
        ),
        decl("c", input="shop.models.Repeat", output="shop.models.list", modules=("shop.models",)),
    ]
    client = generate(config_for(tmp_path), scan=scan_of(*processors)).files["client.py"]
    assert "from shop.models import Email\n" in client
    assert "from typing import Any, Literal, Optional, overload\n" in client
    assert "import shop.legacy\nimport shop.models\n" in client  # Item twice, Repeat, list
    assert "    data: Email,\n" in client
    assert "JobHandle[list[shop.models.Item]]" in client
    assert "    data: shop.legacy.Item,\n" in client and "JobHandle[Optional[int]]" in client
    assert "    data: shop.models.Repeat,\n" in client  # `Repeat` is the client's own name
    assert "JobHandle[shop.models.list]" in client  # a builtin's name is never shadowed


def test_a_package_and_its_module_both_listed_do_not_garble_the_annotation() -> None:
    from pikkugen.emit.localize import localize
    from pikkugen.model import TypeRef

    ref = TypeRef(annotation="dict[str, shop.models.Email]", modules=("shop", "shop.models"))
    local = localize([ref], reserved=())
    assert local.annotation(ref) == "dict[str, Email]"
    assert local.names == {("shop.models", "Email"): "Email"}


def test_a_type_module_shadowing_a_client_name_is_an_error(tmp_path: Path) -> None:
    # two types named X: both modules are imported whole, and `TypeAdapter` would be bound
    clash = decl("q", input="TypeAdapter.models.X", modules=("TypeAdapter.models",), line=9)
    other = decl("r", input="other.X", modules=("other",), line=20)
    result = generate(config_for(tmp_path), scan=scan_of(clash, other, decl("fine")))
    codes = [(d.code, d.line) for d in result.diagnostics if d.code == "PK501"]
    assert codes == [("PK501", 9)]
    assert result.has_errors


def test_a_missing_runtime_emitter_is_an_info_and_generation_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(runtimes.PLUGINS, "cloudflare", "pikkugen.runtimes.no_such_thing")
    result = generate(config_for(tmp_path, runtimes=("cloudflare",)), scan=scan_of(decl("q")))
    (note,) = [d for d in result.diagnostics if d.code == "PK502"]
    assert note.level == "info" and "no_such_thing" in note.message
    assert "client.py" in result.files and not result.has_errors


def test_emitters_cannot_write_outside_the_folder_or_over_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def rogue(data: EmitInput) -> dict[str, str]:
        return {"../escape.py": "x", "client.py": "y", MANIFEST: "z", "ok/extra.txt": "fine"}

    monkeypatch.setattr(select, "CORE", (*select.CORE, ("rogue", rogue)))
    result = generate(config_for(tmp_path), scan=scan_of(decl("q")))
    found = sorted((d.code, d.message.split(" produced ")[-1]) for d in result.diagnostics)
    assert [code for code, _ in found] == ["PK505", "PK506", "PK506"]
    assert "../escape.py" not in result.files
    assert result.files["ok/extra.txt"] == "fine"
    assert result.files["client.py"] != "y"


def test_annotations_with_non_ascii_literals_keep_their_names_and_ruff_quotes() -> None:
    # CPython's column offsets count UTF-8 bytes: splicing local names by offset once cut
    # `shop.models.Email` into `shopEmail` after a non-ASCII literal. The IR holds repr()s,
    # which ruff would requote.
    from pikkugen.emit.localize import localize
    from pikkugen.model import TypeRef

    ref = TypeRef(
        annotation="dict[typing.Literal['é€😀', 'say \"hi\"', 'a\\nb'], shop.models.Email]",
        modules=("shop.models", "typing"),
    )
    local = localize([ref], reserved=(), shared={("typing", "Literal"): "Literal"})
    assert local.annotation(ref) == ('dict[Literal["é€😀", \'say "hi"\', "a\\nb"], Email]')


def test_client_with_literal_annotations_is_ruff_formatted(tmp_path: Path) -> None:
    processors = [
        decl(
            "q",
            input="dict[typing.Literal['é', 'x'], shop.models.Email]",
            output="typing.Literal[-1, 'ü']",
            modules=("shop.models", "typing"),
        )
    ]
    client = generate(config_for(tmp_path), scan=scan_of(*processors)).files["client.py"]
    assert '    data: dict[Literal["é", "x"], Email],\n' in client
    assert ') -> JobHandle[Literal[-1, "ü"]]:\n' in client
    path = tmp_path / "client.py"
    path.write_text(client, encoding="utf-8")
    ruff = [sys.executable, "-m", "ruff", "format", "--isolated", "--check", str(path)]
    proc = subprocess.run(ruff, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_type_named_like_an_import_of_the_client_is_imported_by_module(tmp_path: Path) -> None:
    # `from .registry import BACKEND_URL` would shadow a user type imported by that name
    processors = [decl("q", input="shop.models.BACKEND_URL", modules=("shop.models",))]
    client = generate(config_for(tmp_path), scan=scan_of(*processors)).files["client.py"]
    assert "import shop.models\n" in client
    assert "    data: shop.models.BACKEND_URL,\n" in client
    assert "from shop.models import" not in client


def test_every_registered_runtime_has_a_plugin_and_a_capabilities_entry() -> None:
    from pikku_queue.adapters.catalog import CAPABILITIES

    for name in runtimes.PLUGINS:
        found = runtimes.plugin(name)
        assert found is not None and found.name == name and found.emitters
        assert name in CAPABILITIES
        assert found.templates is not None and (templates_dir() / found.templates).is_dir()


def test_a_plugin_module_without_plugin_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(runtimes.PLUGINS, "cloudflare", "pikkugen.emit.base")
    result = generate(config_for(tmp_path, runtimes=("cloudflare",)), scan=scan_of(decl("q")))
    (note,) = [d for d in result.diagnostics if d.code == "PK503"]
    assert note.level == "error" and "defines no PLUGIN" in note.message
