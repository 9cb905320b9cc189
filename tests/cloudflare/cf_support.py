"""What the Cloudflare tests share: the golden case's place and a wrangler.jsonc reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CASE = Path(__file__).resolve().parents[1] / "cases" / "cloudflare"


def read_jsonc(path: Path) -> Any:
    """wrangler.jsonc as data: our generated file has whole-line `//` comments only."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("//")]
    return json.loads("\n".join(lines))
