"""The generated wrangler.jsonc against the JSON Schema the `wrangler` npm package ships
(config-schema.json): the example app's and the golden case's."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from cf_support import read_jsonc
from wrangler_npm import install

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {
    "shop": REPO
    / "examples"
    / "shop"
    / "src"
    / "shop"
    / "generated"
    / "cloudflare"
    / "wrangler.jsonc",
    "golden": REPO
    / "tests"
    / "cases"
    / "cloudflare"
    / "expected"
    / "cloudflare"
    / "wrangler.jsonc",
}


@pytest.fixture(scope="module")
def schema() -> object:
    return json.loads((install() / "node_modules" / "wrangler" / "config-schema.json").read_text())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_generated_wrangler_config_matches_wranglers_schema(schema: object, name: str) -> None:
    config = read_jsonc(CONFIGS[name])
    jsonschema.validate(config, schema)  # type: ignore[arg-type]
    assert config["queues"]["consumers"]


def test_the_schema_check_catches_a_wrong_key(schema: object) -> None:
    config = read_jsonc(CONFIGS["golden"])
    config["queues"]["consumers"][0]["max_retry"] = 3
    with pytest.raises(jsonschema.ValidationError, match="max_retry"):
        jsonschema.validate(config, schema)  # type: ignore[arg-type]
