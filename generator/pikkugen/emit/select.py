"""Which emitters run for a configuration.

The core artifacts are always emitted; per-runtime wiring is looked up by module name only
when that runtime is configured, so a runtime's emitter (written and owned separately) is
optional: when its module is absent the generation goes on and says so with an info
diagnostic.
"""

from __future__ import annotations

import importlib

from pikkugen.config import Config
from pikkugen.emit import client, package, registry, schema_files
from pikkugen.emit.base import Emitter
from pikkugen.model import Diagnostic

CORE: tuple[tuple[str, Emitter], ...] = (
    ("package", package.emit),
    ("registry", registry.emit),
    ("client", client.emit),
    ("schemas", schema_files.emit),
)

#: runtime -> modules (each with an `emit(EmitInput) -> dict[str, str]`), in emission order.
RUNTIME_EMITTERS: dict[str, tuple[str, ...]] = {
    "redis": ("pikkugen.emit.redis_worker",),
    "sqs": ("pikkugen.emit.sqs_lambda", "pikkugen.emit.sam"),
    "cloudflare": ("pikkugen.runtimes.cloudflare",),
}

EMITTER_MISSING = "PK502"
EMITTER_BROKEN = "PK503"


def emitters_for(config: Config) -> tuple[list[tuple[str, Emitter]], list[Diagnostic]]:
    chosen = list(CORE)
    notes: list[Diagnostic] = []
    for runtime in config.runtimes:
        for module_name in RUNTIME_EMITTERS.get(runtime, ()):
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                notes.append(
                    Diagnostic(
                        level="info",
                        code=EMITTER_MISSING,
                        message=f"no emitter {module_name!r} is installed; the {runtime} "
                        "runtime's wiring files are not generated",
                    )
                )
                continue
            emitter = getattr(module, "emit", None)
            if not callable(emitter):
                notes.append(
                    Diagnostic(
                        level="error",
                        code=EMITTER_BROKEN,
                        message=f"{module_name!r} has no emit() function",
                    )
                )
                continue
            chosen.append((module_name.rpartition(".")[2], emitter))
    return chosen, notes
