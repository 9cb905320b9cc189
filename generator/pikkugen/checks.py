"""Checks that need the configuration: what each configured runtime cannot honour.

Pikku checks adapter support only when a worker starts; here every declared option is held
against every runtime in `[tool.pikkugen] runtimes` at generate time. The rules come from the
one capability declaration in `pikku_queue.capabilities`, so the support table, the
conformance suite and these diagnostics cannot drift apart. A mismatch is a warning (the
runtime ignores or clamps the option), or an error under `strict`. A processor's `repeat` the
sqs runtime's EventBridge schedule cannot express is always an error (PK804): the deployed
stack would otherwise run another schedule, or none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from pikku_queue.adapters.catalog import CAPABILITIES
from pikku_queue.capabilities import DEDUPE_FEATURES, Capabilities, Feature
from pikku_queue.options import ALL_EVENTS, ProcessorOptions

from pikkugen.config import Config
from pikkugen.model import Diagnostic, Level, ProcessorDecl
from pikkugen.runtimes import PluginError, ProblemKind, RuntimePlugin, plugin

UNSUPPORTED = "PK801"
OUT_OF_RANGE = "PK802"
NAME_FORBIDDEN = "PK803"
#: A processor's `repeat` the sqs runtime's EventBridge schedule (or the cloudflare runtime's
#: cron trigger) cannot express: an error even without `strict`, since the deployment would
#: silently run another schedule or none.
SCHEDULE_INEXPRESSIBLE = "PK804"

_DEFAULTS = ProcessorOptions()
#: A runtime plugin's problem kinds as diagnostic codes.
_PLUGIN_CODES: dict[ProblemKind, str] = {
    "inexpressible": SCHEDULE_INEXPRESSIBLE,
    "unsupported": UNSUPPORTED,
    "out_of_range": OUT_OF_RANGE,
}


def check_runtimes(config: Config, processors: Sequence[ProcessorDecl]) -> list[Diagnostic]:
    """Every option of every processor that a configured runtime cannot honour."""
    level: Level = "error" if config.strict else "warning"
    found: list[Diagnostic] = []
    for runtime in config.runtimes:
        caps = CAPABILITIES[runtime]
        for decl in processors:
            for code, message, hint in _problems(decl, caps):
                severity: Level = "error" if code == SCHEDULE_INEXPRESSIBLE else level
                found.append(Diagnostic.at(decl.location, severity, code, message, hint))
    return sorted(found, key=Diagnostic.sort_key)


def _used_features(options: ProcessorOptions) -> Iterator[tuple[Feature, str]]:
    """The runtime features a processor's options ask for, with the option that asks."""
    if options.priority is not None:
        yield "priority", f"priority={options.priority}"
    if options.delay:
        yield "delay", f"delay={options.delay}"
    if options.max_concurrency is not None:
        yield "global_concurrency", f"max_concurrency={options.max_concurrency}"
    if options.timeout is not None:
        yield "timeout", f"timeout={options.timeout}"
    if options.batch is not None:
        yield "batch", f"batch=BatchOptions(size={options.batch.size})"
    if options.dead_letter_queue is not None:
        yield "dead_letter", f"dead_letter_queue={options.dead_letter_queue!r}"
    if options.metrics:
        yield "metrics", "metrics=True"
    if options.events != ALL_EVENTS:
        yield "events", "events=[...]"
    if options.max_stalled_count != _DEFAULTS.max_stalled_count:
        yield "stalled_recovery", f"max_stalled_count={options.max_stalled_count}"
    if options.repeat is not None:
        yield "cron", "repeat=Repeat(...)"
    if options.rate_limit is not None:
        limit = options.rate_limit
        yield "rate_limit", f"rate_limit=RateLimit(max={limit.max}, per_ms={limit.per_ms})"
        if limit.group_key is not None:
            yield "rate_limit_group", f"rate_limit=RateLimit(group_key={limit.group_key!r})"
    if options.dedupe is not None:
        mode = options.dedupe.mode
        yield DEDUPE_FEATURES[mode], f"dedupe=Dedupe(mode={mode!r})"


def _problems(decl: ProcessorDecl, caps: Capabilities) -> Iterator[tuple[str, str, str]]:
    runtime = caps.backend
    drop = f"drop {runtime!r} from [tool.pikkugen] runtimes"
    for feature, option in _used_features(decl.options):
        if not caps.supports(feature):
            why = caps.notes.get(feature)
            reason = f": {why}" if why else ""
            yield (
                UNSUPPORTED,
                f"queue {decl.name!r} sets {option}, which the {runtime} runtime cannot "
                f"honour{reason}",
                f"remove the option, or {drop}",
            )
    limit = caps.max_delay_ms
    if limit is not None and decl.options.delay > limit:
        yield (
            OUT_OF_RANGE,
            f"queue {decl.name!r} sets delay={decl.options.delay} ms, beyond the {runtime} "
            f"runtime's limit of {limit} ms",
            f"use a delay of at most {limit} ms, or {drop}",
        )
    dedupe, window = decl.options.dedupe, caps.dedupe_window_ms
    if dedupe is not None and window is not None and dedupe.ttl_ms != window:
        yield (
            OUT_OF_RANGE,
            f"queue {decl.name!r} sets dedupe ttl_ms={dedupe.ttl_ms}, but the {runtime} "
            f"runtime deduplicates for {window} ms, whatever the ttl",
            f"use ttl_ms={window}, or {drop}",
        )
    # what only the runtime's own plugin knows (a schedule its trigger cannot express…)
    runtime_plugin = _plugin_or_none(runtime)
    if runtime_plugin is not None:
        for kind, message, instead in runtime_plugin.problems(decl):
            yield _PLUGIN_CODES[kind], message, f"{instead}, or {drop}"
    if caps.queue_name_pattern is not None:
        pattern = re.compile(caps.queue_name_pattern)
        named = [("queue name", decl.name)]
        if decl.options.dead_letter_queue is not None:
            named.append(("dead_letter_queue", decl.options.dead_letter_queue))
        for what, name in named:
            if not pattern.fullmatch(name):
                rule = caps.queue_name_rule or f"names must match {caps.queue_name_pattern}"
                yield (
                    NAME_FORBIDDEN,
                    f"{what} {name!r} is not allowed on the {runtime} runtime: {rule}",
                    f"rename the queue, or {drop}",
                )


def _plugin_or_none(runtime: str) -> RuntimePlugin | None:
    """The runtime's plugin; None when it has none, or it is missing (emit.select reports
    that once)."""
    try:
        return plugin(runtime)
    except PluginError:
        return None
