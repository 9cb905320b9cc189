"""The static scanner: finds queue processors in source files without importing them.

`scan()` is the entry point; the modules, in the order data flows through them:

- `discovery`: walk the paths, apply excludes, read bytes (size cap), module names (`modules`);
- `parse` (+ `exprs`, `positions`): one libcst pass per candidate file → a JSON-able
  `summary` that depends only on the file's bytes;
- `cache` / `pool`: summaries cached by content hash, misses parsed in forked workers;
- `link`: names resolved across modules (aliases, re-exports, relative and star imports);
- `literals`, `annotations`, `build`: option values, type references, validation → IR;
- `scan`: the stages tying them together; `codes`: the diagnostic code table.
"""

from pikkugen.scanner.modules import import_root_for, module_name_for
from pikkugen.scanner.scan import ScanStats, scan

__all__ = ["ScanStats", "import_root_for", "module_name_for", "scan"]
