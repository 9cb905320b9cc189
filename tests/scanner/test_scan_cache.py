"""The per-file cache: used when content is unchanged, JSON on disk, safe when damaged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pikkugen.scanner import parse
from pikkugen.scanner.cache import content_key
from pikkugen.scanner.pool import PARALLEL_THRESHOLD, can_fork
from scanner_helpers import Tree


def write_project(tree: Tree, count: int) -> None:
    files: dict[str, str | bytes] = {"app/__init__.py": ""}
    for i in range(count):
        files[f"app/t{i}.py"] = (
            f"from pikku_queue import queue_processor\nTIMEOUT = {1000 + i}\n"
            f"@queue_processor('q{i}', timeout=TIMEOUT)\ndef t(data: int) -> int: ...\n"
        )
    tree.write(files)


def test_warm_scan_parses_nothing_and_gives_the_same_result(tree: Tree, tmp_path: Path) -> None:
    write_project(tree, 5)
    cache = tmp_path / ".pikkugen_cache"
    before = parse.parse_count
    cold = tree.scan("app", cache_dir=cache, jobs=1)
    assert parse.parse_count - before == 5
    assert (cold.stats.parsed, cold.stats.cache_hits) == (5, 0)
    entries = sorted((cache / "scan").glob("*.json"))
    assert len(entries) == 5
    assert all(json.loads(e.read_text())["version"] for e in entries)  # JSON, not pickle
    assert (cache / ".gitignore").read_text().endswith("*\n")

    before = parse.parse_count
    warm = tree.scan("app", cache_dir=cache, jobs=1)
    assert parse.parse_count == before  # libcst never ran
    assert (warm.stats.parsed, warm.stats.cache_hits) == (0, 5)
    assert warm.result == cold.result


def test_the_cache_entry_is_what_the_scan_reads(tree: Tree, tmp_path: Path) -> None:
    """Tamper with a cached summary: a scan that really uses the cache reports the tampered
    value (nobody would do this on purpose; it proves the hit path)."""
    write_project(tree, 1)
    cache = tmp_path / "c"
    assert tree.scan("app", cache_dir=cache).processor("q0").options.timeout == 1000
    (entry,) = (cache / "scan").glob("*.json")
    summary = json.loads(entry.read_text())
    summary["constants"]["TIMEOUT"]["v"] = 4242
    entry.write_text(json.dumps(summary))
    assert tree.scan("app", cache_dir=cache).processor("q0").options.timeout == 4242
    # without the cache the file is the truth again
    assert tree.scan("app").processor("q0").options.timeout == 1000


def test_changed_file_is_reparsed_and_damaged_entries_are_misses(
    tree: Tree, tmp_path: Path
) -> None:
    write_project(tree, 3)
    cache = tmp_path / "c"
    tree.scan("app", cache_dir=cache)
    tree.write(
        {
            "app/t1.py": "from pikku_queue import queue_processor\n@queue_processor('new')\ndef t(data: int) -> int: ...\n"
        }
    )
    damaged = cache / "scan" / f"{content_key((tree.root / 'app/t0.py').read_bytes())}.json"
    assert damaged.exists()
    damaged.write_text("{not json")
    again = tree.scan("app", cache_dir=cache)
    assert again.names == ["new", "q0", "q2"]
    assert again.stats.parsed == 2  # the edited file and the damaged entry
    assert not list((cache / "scan").glob(".tmp-*"))


def test_parallel_parse_gives_the_same_result_as_in_process(tree: Tree) -> None:
    if not can_fork():
        pytest.skip("other threads run in this process: the scanner parses in-process then")
    write_project(tree, PARALLEL_THRESHOLD + 3)
    parallel = tree.scan("app", jobs=2)
    serial = tree.scan("app", jobs=1)
    assert (parallel.stats.processes, serial.stats.processes) == (2, 0)
    assert parallel.stats.parsed == PARALLEL_THRESHOLD + 3
    assert parallel.result == serial.result
    assert len(parallel.names) == PARALLEL_THRESHOLD + 3


def test_a_warm_scan_never_imports_libcst(tree: Tree, tmp_path: Path) -> None:
    """`pikkugen scan --check` on an unchanged tree pays neither libcst's import nor a parse."""
    import subprocess
    import sys

    write_project(tree, 2)
    cache = tmp_path / "c"
    tree.scan("app", cache_dir=cache)
    script = (
        "import sys\nfrom pathlib import Path\nfrom pikkugen.scanner import scan\n"
        f"r = scan([Path({str(tree.root / 'app')!r})], root=Path({str(tree.root)!r}), "
        f"cache_dir=Path({str(cache)!r}))\n"
        "print(len(r.processors), 'libcst' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["2", "False"]
