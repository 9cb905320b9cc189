"""The static scanner: finds queue processors in source files without importing them.

`scan()` is the entry point; diagnostic codes are listed in `pikkugen.scanner.codes`.
"""

from pikkugen.scanner.modules import import_root_for, module_name_for
from pikkugen.scanner.scan import ScanStats, scan

__all__ = ["ScanStats", "import_root_for", "module_name_for", "scan"]
