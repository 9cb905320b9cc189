"""Runtime "cloudflare": a Python Worker project, in its own folder `cloudflare/` of the
generated package, laid out as `pywrangler` expects:

- `cloudflare/src/cloudflare_worker.py` (wrangler's `main`): `class Default(WorkerEntrypoint)`
  whose `queue(batch)` and `scheduled(controller)` call
  `pikku_queue.adapters.cloudflare.CloudflareWorker`, with the queue → binding map, the
  dead-letter queues, the `-stalled` queues and the cron triggers written in. `src/` is the
  module root wrangler uploads (no `base_dir`), and it holds this one file;
- `cloudflare/wrangler.jsonc`: producers (every queue and dead-letter queue), consumers
  (settings from each processor's options, see `plan.consumer`; Cloudflare's own
  `dead_letter_queue` is `<queue>-stalled`, consumed by this Worker too), `limits.cpu_ms`
  (`plan.cpu_ms`), cron triggers, the `python_workers` compatibility flag. JSON with comments,
  so it carries the DO NOT EDIT header;
- `cloudflare/pyproject.toml`: the Python Worker project `pywrangler` reads. Its dependencies
  are what the Worker imports: `pikku-queue`, `pydantic`, and your project itself (the
  `[project]` of the pyproject.toml holding `[tool.pikkugen]`), so pywrangler vendors your
  code, this generated package and your dependencies into `python_modules`. Your project is a
  `path` source (`[tool.uv.sources]`, which uv reads when pywrangler resolves), as are your
  own path sources of those dependencies, rebased to this folder.

The folder holds nothing of another runtime (pywrangler refuses a `requirements.txt` beside
its `pyproject.toml`), and its module root holds only the entry point, so what pywrangler
creates beside it (`.venv-workers`, `python_modules`) is never uploaded twice.

Everything is sorted and rendered from the scan and the project file alone: byte-identical
between runs.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from pikkugen.config import Config
from pikkugen.emit.base import HEADER_LINE, EmitInput, header, py_literal, render
from pikkugen.runtimes import RuntimePlugin
from pikkugen.runtimes.cloudflare import plan

MODULE = "cloudflare_worker"
#: The Worker project's folder inside the generated package, and its module root in there.
FOLDER = "cloudflare"
MODULE_ROOT = "src"
#: What the Worker imports besides your project.
RUNTIME_DEPENDENCIES = ("pikku-queue", "pydantic")
#: The Workers runtime's behaviour date (a Python Workers release with Pyodide 0.28).
COMPATIBILITY_DATE = "2025-11-01"
COMPATIBILITY_FLAGS = ("python_workers",)


def worker_name(out_package: str) -> str:
    """`shop.generated` → `shop-generated` (Worker names: lowercase letters, digits, '-')."""
    cleaned = "".join(c if c.isalnum() else "-" for c in out_package.lower())
    return "-".join(part for part in cleaned.split("-") if part)[:63] or "pikku-worker"


def _consumer_entry(c: plan.Consumer) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "queue": c.queue,
        "max_batch_size": c.max_batch_size,
        "max_batch_timeout": c.max_batch_timeout,
        "max_retries": c.max_retries,
    }
    if c.dead_letter_queue is not None:
        entry["dead_letter_queue"] = c.dead_letter_queue
    entry["retry_delay"] = c.retry_delay
    if c.max_concurrency is not None:
        entry["max_concurrency"] = c.max_concurrency
    return entry


def wrangler_config(data: EmitInput) -> dict[str, Any]:
    decls = sorted(data.scan.processors, key=lambda d: d.name)
    consumers = [plan.consumer(d) for d in decls] + [plan.stalled_consumer(d) for d in decls]
    out_package = data.config.out_package
    config: dict[str, Any] = {
        "name": worker_name(out_package),
        "main": f"{MODULE_ROOT}/{MODULE}.py",
        "compatibility_date": COMPATIBILITY_DATE,
        "compatibility_flags": list(COMPATIBILITY_FLAGS),
        "queues": {
            "producers": [
                {"queue": queue, "binding": binding}
                for queue, binding in plan.bindings(decls).items()
            ],
            "consumers": [_consumer_entry(c) for c in sorted(consumers, key=lambda c: c.queue)],
        },
    }
    cpu_ms = plan.cpu_ms(decls)
    if cpu_ms is not None:
        config["limits"] = {"cpu_ms": cpu_ms}
    crons = plan.crons(decls)
    if crons:
        config["triggers"] = {"crons": list(crons)}
    return config


def _project_table(config: Config) -> dict[str, Any]:
    """The pyproject.toml holding `[tool.pikkugen]`, as data ({} when there is none)."""
    path = config.root / "pyproject.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def worker_dependencies(config: Config) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The Worker project's dependencies and their `[tool.uv.sources]`: the runtime's, then
    your project (a path source) when its pyproject.toml names one; your own uv sources of
    those names are kept, a `path` rebased from your project to the Worker's folder."""
    table = _project_table(config)
    worker_dir = config.out / FOLDER
    rebase = Path(os.path.relpath(config.root, worker_dir)).as_posix()
    dependencies = list(RUNTIME_DEPENDENCIES)
    sources: dict[str, dict[str, Any]] = {}
    name = table.get("project", {}).get("name")
    if isinstance(name, str) and name:
        dependencies.append(name)
        sources[name] = {"path": rebase, "editable": False}
    declared = table.get("tool", {}).get("uv", {}).get("sources", {})
    for dependency in RUNTIME_DEPENDENCIES:
        source = declared.get(dependency)
        if isinstance(source, dict):
            source = dict(source)
            if isinstance(source.get("path"), str) and not Path(source["path"]).is_absolute():
                source["path"] = f"{rebase}/{source['path']}"
            sources[dependency] = source
    return dependencies, sources


def _toml_inline(table: dict[str, Any]) -> str:
    items = ", ".join(f"{key} = {json.dumps(value)}" for key, value in table.items())
    return "{ " + items + " }"


def _jsonc(config: dict[str, Any], source: str) -> str:
    lines = [
        f"// {HEADER_LINE.removeprefix('# ')}",
        f"// source: {json.dumps(source)[1:-1]}",
        "// Create the queues once (`wrangler queues create <name>` for each queue named",
        "// below), then deploy from this folder: `uv run pywrangler deploy`.",
    ]
    return "\n".join(lines) + "\n" + json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def emit(data: EmitInput) -> dict[str, str]:
    config = data.config
    decls = sorted(data.scan.processors, key=lambda d: d.name)
    source = config.relative_paths()
    worker = render(
        "cloudflare/cloudflare_worker.py.j2",
        header=header(source),
        # wrangler's `main` is no module of your package (src/ holds no __init__.py), so an
        # import sorter sees both as third-party: one block, sorted by module name.
        imports=sorted(
            [
                "from pikku_queue.adapters.cloudflare import CloudflareWorker",
                f"from {config.out_package}.registry import REGISTRY",
            ],
            key=lambda line: line.split()[1].lower(),
        ),
        bindings=py_literal(plan.bindings(decls)),
        dead_letters=py_literal({d.name: plan.dead_letter_queue_of(d) for d in decls}),
        crons=py_literal({cron: queues for cron, queues in plan.crons(decls).items()}),
        stalled=py_literal(plan.stalled(decls)),
    )
    dependencies, sources = worker_dependencies(config)
    project = render(
        "cloudflare/pyproject.toml.j2",
        header=header(source),
        name=json.dumps(worker_name(config.out_package) + "-worker"),
        dependencies="".join(f"    {json.dumps(d)},\n" for d in dependencies),
        sources="".join(
            ["\n[tool.uv.sources]\n"]
            + [f"{json.dumps(n)} = {_toml_inline(t)}\n" for n, t in sources.items()]
        )
        if sources
        else "",
        missing_project=""
        if len(dependencies) > len(RUNTIME_DEPENDENCIES)
        else "# No [project] name was found in the pyproject.toml holding [tool.pikkugen]: add one\n"
        "# so your code (and this generated package) is vendored too.\n",
    )
    return {
        f"{FOLDER}/{MODULE_ROOT}/{MODULE}.py": worker,
        f"{FOLDER}/wrangler.jsonc": _jsonc(wrangler_config(data), source),
        f"{FOLDER}/pyproject.toml": project,
    }


#: This runtime's generator plugin (registered in `pikkugen.runtimes.PLUGINS`).
PLUGIN = RuntimePlugin(
    name="cloudflare",
    emitters=(("cloudflare", emit),),
    problems=plan.problems,
    templates="cloudflare",
)
