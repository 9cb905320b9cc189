"""What `sam build` needs, from the example's generated package: a requirements.txt naming
the runtime (never the generator) at the generator's version, and a template whose CodeUri and
Handler point at the generated handler module."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pikkugen
from test_sam import load

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "examples" / "shop" / "src" / "shop" / "generated"


def test_requirements_pin_the_runtime_at_the_generator_version() -> None:
    lines = (GENERATED / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert requirements == [f"pikku-queue[sqs]=={pikkugen.__version__}"]
    runtime = tomllib.loads((REPO / "runtime" / "pyproject.toml").read_text(encoding="utf-8"))
    assert runtime["project"]["version"] == pikkugen.__version__  # the pin exists
    assert "sqs" in runtime["project"]["optional-dependencies"]


def test_code_uri_and_handler_name_the_generated_module() -> None:
    template = load((GENERATED / "template.yaml").read_text(encoding="utf-8"))
    function = template["Globals"]["Function"]
    code = (GENERATED / function["CodeUri"]).resolve()
    module, _, attribute = function["Handler"].rpartition(".")
    assert attribute == "handler"
    assert (code / Path(*module.split("."))).with_suffix(".py").is_file()
    assert "sam build --manifest requirements.txt" in (GENERATED / "template.yaml").read_text()
