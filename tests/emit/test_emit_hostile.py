"""Hostile queue names cannot inject code into generated modules: the emitted files parse,
mean exactly the names they were given, import and register every queue, and are stable
under `ruff format`."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from emit_support import HOSTILE, config_for, decl, scan_of
from pikkugen.emit.sinks import write_output
from pikkugen.generate import generate

NAMES = [*HOSTILE, "email-queue", "email_queue", "Email.Queue", "a", "a-sync"]
RUNTIME = Path(__file__).resolve().parents[2] / "runtime"


def hostile_output(tmp_path: Path) -> Path:
    config = config_for(tmp_path, services="app.services:make")
    decls = [
        decl(name, function=f"app.jobs.f{i}", dead_letter_queue=None, line=i + 1)
        for i, name in enumerate(NAMES)
    ]
    result = generate(config, scan=scan_of(*decls))
    assert not result.has_errors, result.diagnostics
    assert not write_output(config, result).refused
    return config.out


def string_constants(tree: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def test_generated_modules_hold_the_names_only_as_string_constants(tmp_path: Path) -> None:
    out = hostile_output(tmp_path)
    for module in ("client.py", "registry.py", "__init__.py"):
        text = (out / module).read_text(encoding="utf-8")
        tree = ast.parse(text)
        if module != "__init__.py":
            assert set(NAMES) <= string_constants(tree)
        for node in ast.walk(tree):
            # the only calls are the ones the templates write
            if isinstance(node, ast.Call):
                assert ast.unparse(node.func) in {
                    "TypedQueue",
                    "TypeAdapter",
                    "REGISTRY.get",
                    "Registry",
                    "QueueEntry",
                    "ProcessorOptions.model_validate",
                    "project_root",
                    *(f"QUEUE_{s}.enqueue" for s in _stems()),
                    *(f"QUEUE_{s}.enqueue_sync" for s in _stems()),
                    "untyped_queue_job",
                    "untyped_queue_job_sync",
                }, ast.unparse(node)
    index = json.loads((out / "schemas" / "queues.json").read_text())
    assert sorted(q["name"] for q in index["queues"]) == sorted(NAMES)
    for path in (out / "schemas").iterdir():
        assert path.parent == out / "schemas"


def _stems() -> list[str]:
    from pikkugen.emit.names import assign_identifiers

    return [s.upper() for s in assign_identifiers(NAMES).values()]


def test_generated_modules_import_and_register_every_name(tmp_path: Path) -> None:
    out = hostile_output(tmp_path)
    script = (
        "import json, gen.client, gen.registry\n"
        "from pikku_queue.client import known_queues\n"
        "print(json.dumps([sorted(known_queues), gen.registry.REGISTRY.names(),"
        " gen.registry.REGISTRY.services]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(out.parent), str(RUNTIME)])}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    known, registered, services = json.loads(proc.stdout)
    assert known == sorted(NAMES)
    assert registered == sorted(NAMES)
    assert services == "app.services:make"


def test_generated_modules_are_ruff_formatted(tmp_path: Path) -> None:
    out = hostile_output(tmp_path)
    ruff = [sys.executable, "-m", "ruff", "format", "--isolated", "--check", "--line-length=88"]
    proc = subprocess.run([*ruff, str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
