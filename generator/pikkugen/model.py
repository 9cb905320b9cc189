"""The IR: what the scanner found, as frozen data. Everything downstream reads only this."""

from __future__ import annotations

from typing import Literal

from pikku_queue.options import ProcessorOptions
from pydantic import BaseModel, ConfigDict, Field

Level = Literal["error", "warning", "info"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Location(_Frozen):
    #: Path relative to the project root, with forward slashes.
    path: str
    line: int  # 1-based
    column: int  # 1-based


class Diagnostic(_Frozen):
    """A problem found while generating: data, rendered in one place (`diagnostics.render`)."""

    level: Level
    code: str  # e.g. "PK101"
    message: str
    hint: str | None = None
    path: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def is_error(self) -> bool:
        return self.level == "error"

    @classmethod
    def at(
        cls, location: Location, level: Level, code: str, message: str, hint: str | None = None
    ) -> Diagnostic:
        """A diagnostic pointing at a declaration (the checks after the scan all do)."""
        return cls(
            level=level,
            code=code,
            message=message,
            hint=hint,
            path=location.path,
            line=location.line,
            column=location.column,
        )

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path or "", self.line or 0, self.column or 0, self.code, self.message)


class TypeRef(_Frozen):
    """A type annotation with every name fully qualified.

    `annotation` is a Python expression whose names are dotted paths (`shop.models.Email`,
    `list[shop.models.Item]`, `dict[str, typing.Any]`; builtins stay bare), rebuilt by the
    scanner from the parsed tree, so it holds only names, attributes, subscripts, `|`, `None`
    and literal constants. `modules` lists the modules to import for it to evaluate.
    """

    annotation: str
    modules: tuple[str, ...] = ()


class ProcessorDecl(_Frozen):
    """One declared queue processor."""

    name: str  # the queue name
    function: str  # "pkg.mod.func"
    module: str  # "pkg.mod"
    #: The per-job payload type. For batch processors, the element of the `list[...]` parameter.
    input: TypeRef
    #: The per-job result type. For batch processors, the element of the returned `list[...]`.
    output: TypeRef
    is_async: bool
    takes_context: bool = True
    location: Location
    options: ProcessorOptions = Field(default_factory=ProcessorOptions)


class ScanResult(_Frozen):
    processors: tuple[ProcessorDecl, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)
