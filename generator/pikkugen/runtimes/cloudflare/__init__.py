"""Runtime "cloudflare": a Python Worker, its wrangler config and its Python project file.

Three files in the generated package:

- `cloudflare_worker.py`: `class Default(WorkerEntrypoint)` whose `queue(batch)` and
  `scheduled(controller)` call `pikku_queue.adapters.cloudflare.CloudflareWorker`, with the
  queue → binding map, the dead-letter queues and the cron triggers written in;
- `wrangler.jsonc`: producers (every queue and dead-letter queue), consumers (settings from
  each processor's options, see `plan.consumer`), cron triggers, the `python_workers`
  compatibility flag. JSON with comments, so it carries the DO NOT EDIT header; `base_dir`
  is the folder the package is imported from, so the app's modules are uploaded with it;
- `pyproject.toml`: the Python Worker project `pywrangler` reads (pikku-queue, pydantic).

Everything is sorted and rendered from the scan alone: byte-identical between runs.
"""

from __future__ import annotations

import json
from typing import Any

from pikkugen.emit.base import HEADER_LINE, EmitInput, header, py_literal, render
from pikkugen.runtimes import RuntimePlugin
from pikkugen.runtimes.cloudflare import plan

MODULE = "cloudflare_worker"
#: The Workers runtime's behaviour date (a Python Workers release with Pyodide 0.28).
COMPATIBILITY_DATE = "2025-11-01"
COMPATIBILITY_FLAGS = ("python_workers",)


def worker_name(out_package: str) -> str:
    """`shop.generated` → `shop-generated` (Worker names: lowercase letters, digits, '-')."""
    cleaned = "".join(c if c.isalnum() else "-" for c in out_package.lower())
    return "-".join(part for part in cleaned.split("-") if part)[:63] or "pikku-worker"


def wrangler_config(data: EmitInput) -> dict[str, Any]:
    decls = sorted(data.scan.processors, key=lambda d: d.name)
    consumers = []
    for decl in decls:
        c = plan.consumer(decl)
        entry: dict[str, Any] = {
            "queue": c.queue,
            "max_batch_size": c.max_batch_size,
            "max_batch_timeout": c.max_batch_timeout,
            "max_retries": c.max_retries,
            "dead_letter_queue": c.dead_letter_queue,
            "retry_delay": c.retry_delay,
        }
        if c.max_concurrency is not None:
            entry["max_concurrency"] = c.max_concurrency
        consumers.append(entry)
    out_package = data.config.out_package
    config: dict[str, Any] = {
        "name": worker_name(out_package),
        "main": f"{MODULE}.py",
        "base_dir": "/".join([".."] * len(out_package.split("."))),
        "compatibility_date": COMPATIBILITY_DATE,
        "compatibility_flags": list(COMPATIBILITY_FLAGS),
        "queues": {
            "producers": [
                {"queue": queue, "binding": binding}
                for queue, binding in plan.bindings(decls).items()
            ],
            "consumers": consumers,
        },
    }
    crons = plan.crons(decls)
    if crons:
        config["triggers"] = {"crons": list(crons)}
    return config


def _jsonc(config: dict[str, Any], source: str) -> str:
    lines = [
        f"// {HEADER_LINE.removeprefix('# ')}",
        f"// source: {json.dumps(source)[1:-1]}",
        "// Create the queues once (`wrangler queues create <name>` for each producer queue),",
        "// then deploy from this folder: `uv run pywrangler deploy` (or `wrangler deploy`).",
    ]
    return "\n".join(lines) + "\n" + json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def emit(data: EmitInput) -> dict[str, str]:
    config = data.config
    decls = sorted(data.scan.processors, key=lambda d: d.name)
    source = config.relative_paths()
    worker = render(
        "cloudflare/cloudflare_worker.py.j2",
        header=header(source),
        package=config.out_package,
        bindings=py_literal(plan.bindings(decls)),
        dead_letters=py_literal({d.name: plan.dead_letter_queue_of(d) for d in decls}),
        crons=py_literal({cron: queues for cron, queues in plan.crons(decls).items()}),
    )
    project = render(
        "cloudflare/pyproject.toml.j2",
        header=header(source),
        name=json.dumps(worker_name(config.out_package) + "-worker"),
    )
    return {
        f"{MODULE}.py": worker,
        "wrangler.jsonc": _jsonc(wrangler_config(data), source),
        "pyproject.toml": project,
    }


#: This runtime's generator plugin (registered in `pikkugen.runtimes.PLUGINS`).
PLUGIN = RuntimePlugin(
    name="cloudflare",
    emitters=(("cloudflare", emit),),
    problems=plan.problems,
    templates="cloudflare",
)
