"""Per-file summary cache keyed by content hash (+ summary version), stored as JSON.

A summary depends only on the file's bytes, so the hash of those bytes is the whole key: a
renamed file or a fresh clone still hits. Writes go to a temporary file renamed into place, so
a crash or a concurrent scan never leaves a half-written entry; an unreadable entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import cast

from pikkugen.scanner.summary import SUMMARY_VERSION, ModuleSummary


def content_key(data: bytes) -> str:
    digest = hashlib.blake2b(data, digest_size=20)
    digest.update(b"\0pikkugen-scanner-" + SUMMARY_VERSION.encode())
    return digest.hexdigest()


class SummaryCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder / "scan"
        self.hits = 0
        self.writes = 0
        self._ready = False

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> ModuleSummary | None:
        try:
            text = self._path(key).read_text(encoding="utf-8")
            value = json.loads(text)
        except (OSError, ValueError):
            return None
        if not isinstance(value, dict) or value.get("version") != SUMMARY_VERSION:
            return None
        self.hits += 1
        return cast(ModuleSummary, value)

    def put(self, key: str, summary: ModuleSummary) -> None:
        """Best effort: a cache that cannot be written only makes the next scan slower."""
        try:
            self._prepare()
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(summary, handle, separators=(",", ":"))
                os.replace(tmp, self._path(key))
                self.writes += 1
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass

    def _prepare(self) -> None:
        if self._ready:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        ignore = self.folder.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# created by pikkugen: the scan cache is not source\n*\n")
        self._ready = True
