"""`schemas/`: each queue's input and output JSON Schema, plus `queues.json`, an index with
every queue's options.

The folder is self-contained on purpose: `pikkugen client SCHEMAS_DIR` builds a typed client
for another code base from it alone, without access to the worker's source.
"""

from __future__ import annotations

import json
from typing import Any

from pikkugen.emit.base import EmitInput
from pikkugen.emit.names import assign_file_stems, assign_identifiers
from pikkugen.emit.registry import root_hop

INDEX = "queues.json"
INDEX_VERSION = 1


def dump_json(value: Any) -> str:
    """Stable JSON text: ASCII only (a lone surrogate in a description cannot break the file)
    and a final newline."""
    return json.dumps(value, indent=2, ensure_ascii=True) + "\n"


def emit(data: EmitInput) -> dict[str, str]:
    processors = sorted(data.scan.processors, key=lambda p: p.name)
    files = assign_file_stems(p.name for p in processors)
    stems = assign_identifiers(p.name for p in processors)
    out: dict[str, str] = {}
    index: list[dict[str, Any]] = []
    for decl in processors:
        pair = data.schemas.get(decl.name)
        if pair is None:
            continue
        stem = files[decl.name]
        input_file, output_file = f"{stem}.input.json", f"{stem}.output.json"
        out[f"schemas/{input_file}"] = dump_json(pair[0])
        out[f"schemas/{output_file}"] = dump_json(pair[1])
        index.append(
            {
                "name": decl.name,
                "identifier": stems[decl.name],
                "input_schema": input_file,
                "output_schema": output_file,
                "input": decl.input.annotation,
                "output": decl.output.annotation,
                "options": decl.options.model_dump(mode="json"),
            }
        )
    config = data.config
    out[f"schemas/{INDEX}"] = dump_json(
        {
            "version": INDEX_VERSION,
            # What `pikkugen client` needs to enqueue where the workers read: the configured
            # backend, and the project root seen from this folder (a relative SQLite path
            # is anchored there, never at an absolute path of the generating machine).
            "backend": config.backend,
            "root": root_hop(config.root, config.out / "schemas"),
            "queues": index,
        }
    )
    return out
