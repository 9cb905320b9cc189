"""Watch: regenerate whenever a scanned source or the configuration changes.

It is the write sink in a loop. Changes are debounced (an editor's save-all arrives as one
batch), the generator's own output and cache are ignored (writing must not retrigger), and a
changed pyproject.toml reloads the configuration. A bad configuration or a failed generation
is reported and the loop keeps watching: fixing the file is the next event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pikkugen.config import PYPROJECT, Config, ConfigError
from pikkugen.emit.sinks import WriteReport, write_output
from pikkugen.generate import CACHE_FOLDER, GenerateResult, generate

DEBOUNCE_MS = 300
#: How often an idle watcher wakes up (to notice `stop_event`).
_IDLE_MS = 200


class StopEvent(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Round:
    """One regeneration: what changed, and what came of it (or the configuration error)."""

    changed: tuple[str, ...]
    result: GenerateResult | None
    report: WriteReport | None
    error: ConfigError | None = None


def watch(
    load: Callable[[], Config],
    on_round: Callable[[Round], None],
    *,
    stop_event: StopEvent | None = None,
    debounce_ms: int = DEBOUNCE_MS,
    force_polling: bool | None = None,
) -> None:
    """Generate once, then again after every relevant change until `stop_event` is set."""
    import watchfiles

    config = load()
    roots = sorted({*config.paths, config.root / PYPROJECT} - {config.out})
    watched = [p for p in roots if p.exists()]

    def relevant(_change: object, raw: str) -> bool:
        path = Path(raw)
        ignored = (config.out, config.root / CACHE_FOLDER)
        if any(path == folder or folder in path.parents for folder in ignored):
            return False
        return path.suffix in (".py", ".pyi") or path.name == PYPROJECT

    started = False
    # The first (possibly empty) batch arrives once the watcher is running: generating only
    # then means an edit made during the first generation is never missed.
    for changes in watchfiles.watch(
        *watched,
        watch_filter=relevant,
        debounce=debounce_ms,
        stop_event=stop_event,
        force_polling=force_polling,
        raise_interrupt=False,
        yield_on_timeout=True,
        rust_timeout=_IDLE_MS,
    ):
        if not started:
            started = True
            on_round(_once(config, ()))
            continue
        if not changes:
            continue
        changed = tuple(sorted(path for _change, path in changes))
        if any(Path(p).name == PYPROJECT for p in changed):
            try:
                config = load()
            except ConfigError as exc:
                on_round(Round(changed=changed, result=None, report=None, error=exc))
                continue
        on_round(_once(config, changed))


def _once(config: Config, changed: tuple[str, ...]) -> Round:
    result = generate(config)
    return Round(changed=changed, result=result, report=write_output(config, result))
