"""`[tool.pikkugen]` in pyproject.toml, merged with CLI flags, as one frozen value.

Every command reads the same `Config`, so `pikkugen scan` with no arguments, `--check` in CI
and `watch` on a laptop cannot disagree about what is scanned or where output goes. A bad key
or value is refused here, with the key's name, before any work starts.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pikku_queue.adapters.catalog import CAPABILITIES
from pikku_queue.redact import redact_url

from pikkugen.diagnostics import suggest
from pikkugen.model import Diagnostic

PYPROJECT = "pyproject.toml"
SECTION = "tool.pikkugen"
DEFAULT_RUNTIMES: tuple[str, ...] = ("sqlite",)
DEFAULT_OUT_NAME = "pikku_generated"
DEFAULT_MAX_FILE_BYTES = 1_000_000
_SERVICES_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class ConfigError(ValueError):
    """A configuration the generator refuses; carries where it came from for the diagnostic."""

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.hint = hint

    def to_diagnostic(self) -> Diagnostic:
        return Diagnostic(
            level="error", code="PK601", message=self.message, hint=self.hint, path=self.path
        )


@dataclass(frozen=True)
class Config:
    root: Path
    paths: tuple[Path, ...]
    out: Path
    out_package: str
    exclude: tuple[str, ...]
    runtimes: tuple[str, ...]
    services: str | None
    strict: bool
    backend: str | None
    cache: bool
    #: Files larger than this are skipped with a PK003 warning (generated data, vendored code).
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    #: `pkg.module:function` that `pikkugen worker` calls with every worker event.
    events: str | None = None

    def relative(self, path: Path) -> str:
        """`path` relative to the project root, posix, for messages and generated headers.

        Outside the root it is `../…`, never absolute: a header holding `/home/alice/…` would
        make `--check` fail on every other machine (the standalone client reads a schemas
        folder in another checkout)."""
        try:
            return path.relative_to(self.root).as_posix() or "."
        except ValueError:
            pass
        try:
            return Path(os.path.relpath(path, self.root)).as_posix()
        except ValueError:  # another drive (Windows): no relative form exists
            return path.as_posix()

    def relative_paths(self) -> str:
        """The scanned paths as a generated file's `# source:` line shows them."""
        return ", ".join(self.relative(p) for p in self.paths)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a `[tool.pikkugen]` table."""
    here = start if start.is_dir() else start.parent
    for folder in (here, *here.parents):
        candidate = folder / PYPROJECT
        if candidate.is_file() and _section(_read_toml(candidate)) is not None:
            return candidate
    return None


def no_project_message(cwd: Path) -> str:
    """What every command says when no `[tool.pikkugen]` is found at or above `cwd`."""
    return (
        f"no {PYPROJECT} with a [{SECTION}] table in {cwd} or any folder above:"
        " run pikkugen inside your project (or add the table to its pyproject.toml)"
    )


def load_config(start: Path | None = None, **overrides: Any) -> Config:
    """Read the nearest `[tool.pikkugen]` upward from `start` (default: cwd), then apply
    `overrides` (CLI flags; a None value means "not given").

    Paths in the file are relative to its folder; paths given as overrides are relative to the
    current directory, as a shell user expects. Without any pyproject section the root is
    `start` itself and everything takes its default.
    """
    cwd = Path.cwd()
    begin = (start or cwd).resolve()
    unknown = sorted(set(overrides) - set(_VALIDATORS))
    if unknown:
        raise TypeError(f"load_config() got unknown override(s): {', '.join(unknown)}")
    pyproject = find_pyproject(begin)
    table: dict[str, Any] = {}
    where: str | None = None
    if pyproject is not None:
        root = pyproject.parent
        where = PYPROJECT
        section = _section(_read_toml(pyproject))
        table = dict(section or {})
        _reject_unknown_keys(table, where)
    else:
        root = begin if begin.is_dir() else begin.parent

    values: dict[str, Any] = {}
    for key, validate in _VALIDATORS.items():
        if key in table:
            values[key] = validate(table[key], f"[{SECTION}] {key}", where)
    given = {k: v for k, v in overrides.items() if v is not None}
    for key, value in given.items():
        values[key] = _VALIDATORS[key](value, f"option --{key.replace('_', '-')}", None)

    path_base = {k: (cwd if k in given else root) for k in ("paths", "out")}
    paths = tuple(_absolute(p, path_base["paths"]) for p in values.get("paths", ()))
    if not paths:
        src = root / "src"
        paths = (src if src.is_dir() else root,)
    if "out" in values:
        out = _absolute(values["out"], path_base["out"])
    else:
        first = paths[0]
        out = (first if first.is_dir() or not first.suffix else first.parent) / DEFAULT_OUT_NAME
    return Config(
        root=root,
        paths=paths,
        out=out,
        out_package=package_name_for(out, where=where),
        exclude=tuple(values.get("exclude", ())),
        runtimes=tuple(values.get("runtimes", DEFAULT_RUNTIMES)),
        services=values.get("services"),
        strict=bool(values.get("strict", False)),
        backend=values.get("backend"),
        cache=bool(values.get("cache", True)),
        max_file_bytes=int(values.get("max_file_bytes", DEFAULT_MAX_FILE_BYTES)),
        events=values.get("events"),
    )


def package_name_for(out: Path, *, where: str | None = None) -> str:
    """The dotted import name the generated package will have: `out` itself becomes a package
    (it gets an `__init__.py`), and every parent folder that already is one adds a part."""
    parts = [out.name]
    folder = out.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        parts.append(folder.name)
        folder = folder.parent
    parts.reverse()
    for part in parts:
        if not part.isidentifier():
            raise ConfigError(
                f"the output folder {out.as_posix()!r} cannot be imported: "
                f"{part!r} is not a Python identifier",
                path=where,
                hint="choose an `out` folder whose name (and package parents) are identifiers",
            )
    return ".".join(parts)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}", path=path.as_posix()) from None


def _section(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    tool = data.get("tool")
    if not isinstance(tool, Mapping):
        return None
    section = tool.get("pikkugen")
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(f"[{SECTION}] must be a table", path=PYPROJECT)
    return section


def _reject_unknown_keys(table: Mapping[str, Any], where: str) -> None:
    for key in sorted(table):
        if key not in _VALIDATORS:
            close = suggest(key, list(_VALIDATORS))
            hint = f"did you mean {close!r}?" if close else None
            known = ", ".join(_VALIDATORS)
            raise ConfigError(
                f"unknown key {key!r} in [{SECTION}] (known keys: {known})", path=where, hint=hint
            )


def _absolute(path: str | Path, base: Path) -> Path:
    candidate = Path(path)
    return (candidate if candidate.is_absolute() else base / candidate).resolve()


def _fail(what: str, expected: str, value: Any, where: str | None) -> ConfigError:
    return ConfigError(f"{what}: expected {expected}, got {value!r}", path=where)


def _string_list(value: Any, what: str, where: str | None) -> tuple[str, ...]:
    if isinstance(value, str | Path):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, bytes):
        raise _fail(what, "a list of strings", value, where)
    items: list[str] = []
    for item in value:
        if not isinstance(item, str | Path) or not str(item):
            raise _fail(what, "a list of non-empty strings", value, where)
        items.append(str(item))
    return tuple(items)


def _one_path(value: Any, what: str, where: str | None) -> str:
    if not isinstance(value, str | Path) or not str(value):
        raise _fail(what, "a folder path (string)", value, where)
    return str(value)


def _runtimes(value: Any, what: str, where: str | None) -> tuple[str, ...]:
    names = _string_list(value, what, where)
    for name in names:
        if name not in CAPABILITIES:
            known = ", ".join(sorted(CAPABILITIES))
            raise ConfigError(f"{what}: unknown runtime {name!r} (known: {known})", path=where)
    return tuple(sorted(set(names)))


def _services(value: Any, what: str, where: str | None) -> str:
    if not isinstance(value, str) or not _SERVICES_RE.match(value):
        raise ConfigError(
            f"{what}: expected 'package.module:function', got {value!r}",
            path=where,
            hint="name the factory that builds the services, e.g. 'shop.services:create_services'",
        )
    return value


def _events(value: Any, what: str, where: str | None) -> str:
    if not isinstance(value, str) or not _SERVICES_RE.match(value):
        raise ConfigError(
            f"{what}: expected 'package.module:function', got {value!r}",
            path=where,
            hint="name the function to call with each worker event, e.g. 'shop.hooks:on_event'",
        )
    return value


def _boolean(value: Any, what: str, where: str | None) -> bool:
    if not isinstance(value, bool):
        raise _fail(what, "true or false", value, where)
    return value


def _positive_int(value: Any, what: str, where: str | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _fail(what, "a positive integer", value, where)
    return value


def _backend(value: Any, what: str, where: str | None) -> str:
    if not isinstance(value, str) or "://" not in value:
        # never echoed as written: `u:pw@host` (no scheme) is a secret with a typo
        shown = redact_url(value) if isinstance(value, str) else f"a {type(value).__name__}"
        raise ConfigError(
            f"{what}: expected a backend URL such as 'sqlite:///.pikku/queue.db', got {shown}",
            path=where,
        )
    return value


_VALIDATORS: dict[str, Callable[[Any, str, str | None], Any]] = {
    "paths": _string_list,
    "out": _one_path,
    "exclude": _string_list,
    "runtimes": _runtimes,
    "services": _services,
    "strict": _boolean,
    "backend": _backend,
    "cache": _boolean,
    "max_file_bytes": _positive_int,
    "events": _events,
}
