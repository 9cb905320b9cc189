"""A FIFO, a socket or a device named `*.py` under the scanned tree is skipped with PK008, never
opened blocking: a FIFO used to hang `pikkugen scan` and `list` until something wrote to it, a
symlink to `/dev/zero` was read up to `max_file_bytes`, a socket was an error."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from scanner_helpers import Scanned, Tree

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")

GOOD = "from pikku_queue import queue_processor\n@queue_processor('ok')\ndef ok(data: int) -> int: ...\n"
PIKKUGEN = str(Path(sys.executable).parent / "pikkugen")
#: A scan of a handful of files takes well under a second; a blocked one never ends.
BLOCKED_AFTER_S = 60


@pytest.fixture
def specials(tmp_path: Path) -> Iterator[Path]:
    """A project whose package holds a good module and one special file of each kind."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pikkugen]\npaths = ["src"]\nout = "src/shop/generated"\n'
    )
    package = tmp_path / "src" / "shop"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(GOOD)
    os.mkfifo(package / "pipe.py")
    (package / "zeros.py").symlink_to("/dev/zero")
    os.symlink(package / "pipe.py", package / "to_pipe.py")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(package / "sock.py"))
    try:
        yield tmp_path
    finally:
        server.close()


SKIPPED = {
    "src/shop/pipe.py": "a FIFO",
    "src/shop/to_pipe.py": "a FIFO",
    "src/shop/zeros.py": "a character device",
    "src/shop/sock.py": "a socket",
}


def _scan_within(tree: Tree, *paths: str) -> Scanned:
    box: dict[str, Scanned] = {}
    worker = threading.Thread(target=lambda: box.update(found=tree.scan(*paths)), daemon=True)
    worker.start()
    worker.join(BLOCKED_AFTER_S)
    assert "found" in box, "the scan blocked on a special file"
    return box["found"]


def test_a_special_file_is_skipped_with_pk008_and_the_rest_scans(specials: Path) -> None:
    found = _scan_within(Tree(specials), "src")
    assert found.names == ["ok"]
    skipped = {d.path: d for d in found.result.diagnostics if d.code == "PK008"}
    assert set(skipped) == set(SKIPPED)
    for path, what in SKIPPED.items():
        assert skipped[path].level == "warning"
        assert skipped[path].message.startswith(what), skipped[path].message
    assert [d.code for d in found.result.diagnostics if d.code != "PK008"] == []


def test_a_special_file_given_by_name_is_skipped_too(specials: Path) -> None:
    found = _scan_within(Tree(specials), "src/shop/pipe.py", "src/shop/jobs.py")
    assert found.names == ["ok"]
    assert found.where("PK008") == ("src/shop/pipe.py", None, None)


@pytest.mark.parametrize("command", [("scan",), ("list", "--format", "json")])
def test_scan_and_list_finish_and_name_the_skipped_files(
    specials: Path, command: tuple[str, ...]
) -> None:
    done = subprocess.run(
        [PIKKUGEN, *command, "--no-cache"],
        cwd=specials, capture_output=True, text=True, timeout=BLOCKED_AFTER_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    if command[0] == "list":
        listed = json.loads(done.stdout)
        assert [p["name"] for p in listed["processors"]] == ["ok"]
        codes = {(d["code"], d["path"]) for d in listed["diagnostics"]}
        assert codes == {("PK008", path) for path in SKIPPED}
    else:
        assert done.stderr.count("warning[PK008]") == len(SKIPPED), done.stderr
        assert (specials / "src" / "shop" / "generated" / "registry.py").is_file()
