"""Every golden case, byte for byte, through the real `pikkugen scan`; then `mypy --strict`
over all expected packages at once, with each case's correct and wrong uses of its client."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from golden import CASES, case_names, out_folder, run_case
from pikkugen.emit.sinks import write_output
from pikkugen.standalone import generate_standalone, standalone_config

REGEN = "scripts/regen-golden"
RUNTIME = Path(__file__).resolve().parents[2] / "runtime"


def expected_files(name: str) -> dict[str, bytes]:
    expected = CASES / name / "expected"
    if not expected.is_dir():
        return {}
    return {
        p.relative_to(expected).as_posix(): p.read_bytes()
        for p in sorted(expected.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("name", case_names())
def test_golden_case(name: str, tmp_path: Path) -> None:
    result = run_case(name, tmp_path)
    expected = expected_files(name)
    assert sorted(result.files) == sorted(expected), f"file list differs; run {REGEN} {name}"
    for rel, data in expected.items():
        assert result.files[rel] == data, f"{rel} differs; run {REGEN} {name}"
    assert result.stderr == (CASES / name / "stderr.txt").read_text(encoding="utf-8")
    assert result.exit_code == (2 if "error[" in result.stderr else 0)
    assert bool(result.files) == (result.exit_code == 0)  # errors: nothing is written


def test_every_case_kind_is_present() -> None:
    assert {
        "basic",
        "every_option",
        "batch",
        "aliases",
        "hostile_names",
        "errors",
        "capabilities",
        "strict",
        "types",
        "one_queue",
        "dead_letter_cycle",
    } <= set(case_names())


def test_expected_python_is_ruff_formatted() -> None:
    folders = [str(CASES / n / "expected") for n in case_names() if expected_files(n)]
    ruff = [sys.executable, "-m", "ruff", "format", "--isolated", "--check", "--line-length=88"]
    proc = subprocess.run([*ruff, *folders], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


MARK = "# mypy-error"


@pytest.mark.slow
def test_mypy_strict_accepts_good_uses_and_rejects_bad_ones(tmp_path: Path) -> None:
    """One mypy run over every expected package and a standalone client made from each
    case's `schemas/` (mypy is slow on 2 cores: run it once).

    A line marked `# mypy-error` in a case's `use_bad.py` must be reported; nothing else may be.
    """
    search: list[str] = [str(RUNTIME)]
    targets: list[str] = []
    marked: set[tuple[str, int]] = set()
    uses = tmp_path / "uses"
    uses.mkdir()
    for name in case_names():
        if not expected_files(name):
            continue
        project = tmp_path / name
        shutil.copytree(CASES / name, project, ignore=shutil.ignore_patterns("expected"))
        out = out_folder(project)
        shutil.copytree(CASES / name / "expected", out)
        search.append(str(out.parent))
        targets.append(str(out))
        for use in sorted((CASES / name).glob("use_*.py")):
            copy = uses / f"{name}_{use.name}"
            shutil.copy(use, copy)
            targets.append(str(copy))
            for number, line in enumerate(use.read_text().splitlines(), start=1):
                if line.rstrip().endswith(MARK):
                    marked.add((copy.name, number))
        standalone = tmp_path / "standalone" / f"{name}_standalone"
        config = standalone_config(CASES / name / "expected" / "schemas", standalone)
        client = generate_standalone(CASES / name / "expected" / "schemas", config)
        assert not client.has_errors, client.diagnostics
        assert not write_output(config, client).refused
        targets.append(str(standalone))
    search.append(str(tmp_path / "standalone"))
    assert marked, "the negative cases must mark the lines mypy has to reject"
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\nplugins = pydantic.mypy\n"
        f"mypy_path = {':'.join(search)}\ncache_dir = {tmp_path / 'cache'}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), *targets],
        capture_output=True,
        text=True,
        check=False,
    )
    reported: set[tuple[str, int]] = set()
    unexpected: list[str] = []
    for line in proc.stdout.splitlines():
        match = re.match(r"(.+?):(\d+): error:", line)
        if not match:
            continue
        where = (Path(match.group(1)).name, int(match.group(2)))
        if Path(match.group(1)).parent == uses and where in marked:
            reported.add(where)
        else:
            unexpected.append(line)
    assert not unexpected, "\n".join(unexpected)
    assert reported == marked, f"not rejected: {sorted(marked - reported)}\n{proc.stdout}"


@pytest.mark.parametrize("seed", ["1", "4242"])
def test_output_does_not_depend_on_the_hash_seed(seed: str, tmp_path: Path) -> None:
    """Sets and dicts iterate differently under each PYTHONHASHSEED: output must not."""
    for name in ("hostile_names", "types"):
        result = run_case(name, tmp_path / seed, env={**os.environ, "PYTHONHASHSEED": seed})
        assert result.files == expected_files(name)


@pytest.mark.parametrize("name", [n for n in case_names() if expected_files(n)])
def test_expected_python_passes_ruff_check(name: str) -> None:
    """Imports sorted as ruff's isort sorts them (the app's packages first party), no unused
    names, lines within 88 characters: a project linting its generated code stays green."""
    expected = CASES / name / "expected"
    first_party = sorted(p.name for p in (CASES / name / "src").iterdir() if p.is_dir())
    ours = [str(expected / f) for f in ("client.py", "registry.py", "__init__.py")]
    ruff = [sys.executable, "-m", "ruff", "check", "--isolated", "--select=I,F,E,W,B"]
    option = f"lint.isort.known-first-party={first_party!r}"
    proc = subprocess.run(
        [*ruff, "--config", option, *ours], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_generated_python_file_passes_pyflakes() -> None:
    """Every emitter's Python output, not only the client's: no unused import (`Any` in a
    one-queue client was F401), no undefined name."""
    files = sorted(str(p) for n in case_names() for p in (CASES / n / "expected").rglob("*.py"))
    assert files
    ruff = [sys.executable, "-m", "ruff", "check", "--isolated", "--select=F", *files]
    proc = subprocess.run(ruff, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
