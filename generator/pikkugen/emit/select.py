"""Which emitters run for a configuration.

The core artifacts are always emitted; a configured runtime adds its plugin's emitters
(`pikkugen.runtimes`), imported only when that runtime is configured. A plugin that is not
installed is an info diagnostic and the generation goes on; a broken one is an error.
"""

from __future__ import annotations

from pikkugen.config import Config
from pikkugen.emit import client, package, registry, schema_files
from pikkugen.emit.base import Emitter
from pikkugen.model import Diagnostic
from pikkugen.runtimes import PluginError, plugin

CORE: tuple[tuple[str, Emitter], ...] = (
    ("package", package.emit),
    ("registry", registry.emit),
    ("client", client.emit),
    ("schemas", schema_files.emit),
)

EMITTER_MISSING = "PK502"
EMITTER_BROKEN = "PK503"


def emitters_for(config: Config) -> tuple[list[tuple[str, Emitter]], list[Diagnostic]]:
    chosen = list(CORE)
    notes: list[Diagnostic] = []
    for runtime in config.runtimes:
        try:
            found = plugin(runtime)
        except PluginError as exc:
            level = "info" if exc.missing else "error"
            code = EMITTER_MISSING if exc.missing else EMITTER_BROKEN
            notes.append(Diagnostic(level=level, code=code, message=exc.message))
            continue
        if found is not None:
            chosen.extend(found.emitters)
    return chosen, notes
