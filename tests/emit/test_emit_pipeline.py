"""The generate() pipeline's own guards: name clashes with the client's names, optional
runtime emitters, and emitters that misbehave."""

from __future__ import annotations

from pathlib import Path

import pytest
from emit_support import config_for, decl, scan_of
from pikkugen.emit import select
from pikkugen.emit.base import EmitInput
from pikkugen.generate import MANIFEST, generate


def test_a_type_module_shadowing_a_client_name_is_an_error(tmp_path: Path) -> None:
    clash = decl("q", input="TypeAdapter.models.X", modules=("TypeAdapter.models",), line=9)
    result = generate(config_for(tmp_path), scan=scan_of(clash, decl("fine")))
    codes = [(d.code, d.line) for d in result.diagnostics if d.code == "PK501"]
    assert codes == [("PK501", 9)]
    assert result.has_errors


def test_a_missing_runtime_emitter_is_an_info_and_generation_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(select.RUNTIME_EMITTERS, "cloudflare", ("pikkugen.emit.no_such_thing",))
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
