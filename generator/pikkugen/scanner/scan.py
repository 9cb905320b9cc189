"""`scan()`: paths → `ScanResult`, in stages that keep most files unparsed.

1. discover and read every file; parse only those whose bytes mention `pikku_queue`;
2. names those modules bind to pikku_queue things can be imported elsewhere under those names
   (re-exports), so files mentioning such a name are parsed too, until nothing new appears;
3. link: resolve each declaration-shaped call, read its options and types (modules a constant
   or a function is imported from are summarised on demand, even if the pre-filter skipped
   them), validate, and report duplicates.
"""

from __future__ import annotations

import os
import re
import traceback
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pikkugen.model import Diagnostic, ProcessorDecl, ScanResult
from pikkugen.scanner.build import Builder
from pikkugen.scanner.cache import SummaryCache
from pikkugen.scanner.codes import diagnostic
from pikkugen.scanner.discovery import SourceFile, discover, read
from pikkugen.scanner.guard import DEEP_HINT
from pikkugen.scanner.link import Tree, is_runtime
from pikkugen.scanner.modules import forget_packages
from pikkugen.scanner.pool import summarize_all
from pikkugen.scanner.summary import Decl, ModuleSummary, empty_summary

MARKER = b"pikku_queue"
#: Bytes of non-candidate files kept in memory for the re-export stages; beyond this total
#: they are read again from disk when a stage needs them.
KEEP_BYTES = 256 * 1024 * 1024


def identifiers_view(data: bytes) -> bytes:
    """The bytes the pre-filters search: the file itself, or for a file with non-ASCII bytes
    its NFKC form, since Python reads `import ｐikku_queue` (full-width) as `pikku_queue`."""
    if data.isascii():
        return data
    return unicodedata.normalize("NFKC", data.decode("utf-8", "replace")).encode()


@dataclass
class ScanStats:
    """What a scan did, for benchmarks and tests (pass one to `scan(stats=...)`)."""

    files: int = 0
    candidates: int = 0
    parsed: int = 0
    cache_hits: int = 0
    stages: int = 0
    processes: int = 0  # worker processes that parsed (0: all in-process)
    lazily_loaded: list[str] = field(default_factory=list)


def scan(
    paths: Sequence[Path],
    *,
    root: Path,
    exclude: Sequence[str] = (),
    cache_dir: Path | None = None,
    jobs: int | None = None,
    max_file_bytes: int = 1_000_000,
    stats: ScanStats | None = None,
) -> ScanResult:
    """Find every queue processor under `paths` without importing them. Never raises on user
    input: problems are diagnostics (a scanner bug becomes PK900 rather than a traceback)."""
    stats = stats if stats is not None else ScanStats()
    try:
        return _Scan(root, exclude, cache_dir, jobs, max_file_bytes, stats).run(paths)
    except Exception as exc:
        return ScanResult(diagnostics=(_internal(exc),))


def _internal(
    exc: Exception, path: str | None = None, line: int | None = None, column: int | None = None
) -> Diagnostic:
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return diagnostic(
        "PK900",
        f"internal scanner error: {exc!r} at {Path(frame.filename).name}:{frame.lineno}",
        path=path,
        line=line,
        column=column,
        hint="this is a bug in pikkugen; please report it with the file that triggers it",
    )


def _shortest_words(tokens: set[str]) -> list[bytes]:
    """Tokens for a substring pre-test, minus those containing another token (a file holding
    `add_queue_processor` also holds `queue_processor`)."""
    words = sorted({t.encode() for t in tokens}, key=lambda w: (len(w), w))
    kept: list[bytes] = []
    for word in words:
        if not any(k in word for k in kept):
            kept.append(word)
    return kept


class _Scan:
    def __init__(
        self,
        root: Path,
        exclude: Sequence[str],
        cache_dir: Path | None,
        jobs: int | None,
        max_file_bytes: int,
        stats: ScanStats,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.exclude = tuple(exclude)
        self.cache = SummaryCache(cache_dir) if cache_dir is not None else None
        self.jobs = jobs
        self.max_file_bytes = max_file_bytes
        self.stats = stats
        self.diagnostics: list[Diagnostic] = []
        self.skipped: set[str] = set()  # modules that could not be read

    def run(self, paths: Sequence[Path]) -> ScanResult:
        forget_packages()
        files, problems = discover(paths, self.root, self.exclude)
        self.diagnostics.extend(problems)
        by_module: dict[str, SourceFile] = {}
        for file in files:
            if is_runtime(file.module):
                continue  # the runtime itself, when the tree holds it: it declares nothing
            if file.module in by_module:
                first = by_module[file.module]
                self.diagnostics.append(
                    diagnostic(
                        "PK007",
                        f"module `{file.module}` is also {first.rel}; this file is ignored",
                        path=file.rel,
                        hint="scan one import root per package, or exclude the copy",
                    )
                )
            else:
                by_module[file.module] = file
        self.stats.files = len(by_module)
        tree = Tree(by_module, self._load_one)
        candidates: list[tuple[SourceFile, bytes]] = []
        rest: list[tuple[SourceFile, bytes | None]] = []
        kept = 0
        for file in by_module.values():
            data = read(file, self.max_file_bytes)
            if not isinstance(data, bytes):
                self.diagnostics.append(data)
                self.skipped.add(file.module)
            elif MARKER in data or MARKER in identifiers_view(data):
                candidates.append((file, data))
            else:
                kept += len(data)  # kept: a later stage may search it again
                rest.append((file, data if kept <= KEEP_BYTES else None))
        self._summarize(tree, candidates)
        self._reexport_stages(tree, rest)
        return self._link(tree)

    def _summarize(self, tree: Tree, batch: list[tuple[SourceFile, bytes]]) -> None:
        if not batch:
            return
        self.stats.stages += 1
        self.stats.candidates += len(batch)
        summaries, parsed, processes = summarize_all(
            [data for _, data in batch], cache=self.cache, jobs=self.jobs
        )
        self.stats.processes = max(self.stats.processes, processes)
        self.stats.parsed += parsed
        self.stats.cache_hits += len(batch) - parsed
        for (file, _), summary in zip(batch, summaries, strict=True):
            tree.summaries[file.module] = summary

    def _load_one(self, file: SourceFile) -> ModuleSummary:
        """A module needed for linking that the pre-filter skipped."""
        if file.module in self.skipped:
            return empty_summary()
        data = read(file, self.max_file_bytes)
        if not isinstance(data, bytes):
            self.diagnostics.append(data)
            self.skipped.add(file.module)
            return empty_summary()
        self.stats.lazily_loaded.append(file.module)
        summaries, parsed, _ = summarize_all([data], cache=self.cache, jobs=1)
        self.stats.parsed += parsed
        self.stats.cache_hits += 1 - parsed
        return summaries[0]

    def _reexport_stages(self, tree: Tree, rest: list[tuple[SourceFile, bytes | None]]) -> None:
        """Parse files that may use a name another module bound to pikku_queue, until no new
        such name appears. Most trees need one extra pass over bytes and parse nothing."""
        searched: set[str] = set()
        checked: set[str] = set()
        while True:
            tokens: set[str] = set()
            for module in sorted(tree.summaries):
                if module not in checked:
                    checked.add(module)
                    tokens.update(tree.reexported_names(module))
            tokens -= searched
            if not tokens:
                return
            searched |= tokens
            words = _shortest_words(tokens)
            alternatives = b"|".join(re.escape(t.encode()) for t in sorted(tokens))
            pattern = re.compile(rb"\b(?:" + alternatives + rb")\b")
            found: list[tuple[SourceFile, bytes]] = []
            remaining: list[tuple[SourceFile, bytes | None]] = []
            for file, kept in rest:
                if file.module in tree.summaries:
                    continue
                data = kept if kept is not None else read(file, self.max_file_bytes)
                if not isinstance(data, bytes):
                    continue
                # plain substring tests first: far cheaper than the word-boundary regex
                view = identifiers_view(data)
                if any(w in view for w in words) and pattern.search(view):
                    found.append((file, data))
                else:
                    remaining.append((file, kept))
            rest = remaining
            self._summarize(tree, found)

    def _link(self, tree: Tree) -> ScanResult:
        builder = Builder(tree)
        processors: list[ProcessorDecl] = []
        done: set[str] = set()
        while True:  # linking may load more modules; their declarations count too
            pending = sorted(set(tree.summaries) - done, key=lambda m: tree.files[m].rel)
            if not pending:
                break
            for module in pending:
                done.add(module)
                file = tree.files[module]
                summary = tree.summaries[module]
                problem = summary["problem"]
                if problem is not None:
                    self.diagnostics.append(
                        diagnostic(
                            problem["code"],
                            problem["message"],
                            path=file.rel,
                            line=problem["line"],
                            column=problem["column"],
                            hint=DEEP_HINT if problem["code"] == "PK006" else None,
                        )
                    )
                    continue
                for decl in summary["decls"]:
                    processor, problems = self._build(builder, file, decl)
                    self.diagnostics.extend(problems)
                    if processor is not None:
                        processors.append(processor)
        unique = self._duplicates(processors)
        self.diagnostics.extend(dead_letter_problems(unique))
        diagnostics = sorted(set(self.diagnostics), key=lambda d: d.sort_key())
        return ScanResult(
            processors=tuple(sorted(unique, key=lambda p: p.name)),
            diagnostics=tuple(diagnostics),
        )

    def _build(
        self, builder: Builder, file: SourceFile, decl: Decl
    ) -> tuple[ProcessorDecl | None, list[Diagnostic]]:
        """One declaration, isolated: whatever goes wrong costs this declaration only."""
        pos = decl["call"].get("p") or [1, 1]
        line, column = int(pos[0]), int(pos[1])
        try:
            return builder.build(file, decl)
        except RecursionError:
            message = "this declaration nests too deeply to analyse"
            return None, [
                diagnostic(
                    "PK006", message, path=file.rel, line=line, column=column, hint=DEEP_HINT
                )
            ]
        except Exception as exc:
            return None, [_internal(exc, file.rel, line, column)]

    def _duplicates(self, processors: list[ProcessorDecl]) -> list[ProcessorDecl]:
        first: dict[str, ProcessorDecl] = {}
        ordered = sorted(
            processors, key=lambda p: (p.location.path, p.location.line, p.location.column)
        )
        for processor in ordered:
            seen = first.get(processor.name)
            if seen is None:
                first[processor.name] = processor
                continue
            where = seen.location
            self.diagnostics.append(
                diagnostic(
                    "PK104",
                    f"queue {processor.name!r} is already declared by `{seen.function}`",
                    path=processor.location.path,
                    line=processor.location.line,
                    column=processor.location.column,
                    hint=f"first declared at {where.path}:{where.line}:{where.column}; "
                    "queue names must be unique",
                )
            )
        return list(first.values())


def dead_letter_problems(processors: Sequence[ProcessorDecl]) -> list[Diagnostic]:
    """Dead-letter queues that loop (PK206: a failing job would bounce between them for ever)
    or that another processor serves (PK207, a warning: that processor would run the failed
    jobs, with this queue's payloads). A queue that is its own DLQ is PK205, found earlier."""
    by_name = {p.name: p for p in processors}
    found: list[Diagnostic] = []
    reported: set[str] = set()
    for processor in sorted(processors, key=lambda p: p.name):
        target = processor.options.dead_letter_queue
        if target is None or target not in by_name or target == processor.name:
            continue
        path = [processor.name]
        while True:
            nxt = by_name[path[-1]].options.dead_letter_queue
            if nxt is None or nxt not in by_name or nxt == path[-1]:
                cycle: list[str] = []
                break
            if nxt in path:
                cycle = path[path.index(nxt) :]
                break
            path.append(nxt)
        if processor.name in cycle:
            if processor.name in reported:
                continue
            reported.update(cycle)
            first = min(
                (by_name[n] for n in cycle),
                key=lambda p: (p.location.path, p.location.line, p.location.column),
            )
            loop = cycle[cycle.index(first.name) :] + cycle[: cycle.index(first.name)]
            shown = " -> ".join(repr(n) for n in [*loop, first.name])
            found.append(
                _at_decl(
                    first,
                    "PK206",
                    f"dead-letter queues form a cycle: {shown}; a failing job would be "
                    "dead-lettered from one to the next for ever",
                    "point one of them at a queue no processor serves (e.g. "
                    f"{(first.name + '-dlq')[:80]!r}), or drop its dead_letter_queue",
                )
            )
        else:
            served = by_name[target]
            found.append(
                _at_decl(
                    processor,
                    "PK207",
                    f"dead_letter_queue {target!r} of queue {processor.name!r} is processed by "
                    f"`{served.function}`: it will run the jobs that fail here, with this "
                    "queue's payloads",
                    "if that is meant (a fallback processor), keep it; otherwise name a queue "
                    f"no processor serves, e.g. {(processor.name + '-dlq')[:80]!r}",
                )
            )
    return found


def _at_decl(processor: ProcessorDecl, code: str, message: str, hint: str) -> Diagnostic:
    where = processor.location
    return diagnostic(
        code, message, path=where.path, line=where.line, column=where.column, hint=hint
    )
