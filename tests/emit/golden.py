"""Golden cases: `tests/cases/<name>/` holds a project (`pyproject.toml`, `src/`), the package
`pikkugen scan` writes for it (`expected/`) and what it prints to stderr (`stderr.txt`).

Regenerate every case (never edit `expected/` by hand):

    scripts/regen-golden            # or: .venv/bin/python tests/emit/golden.py [CASE ...]

Each case runs in a scratch copy through the real command line, so the expected output is
exactly what a user would get.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CASES = Path(__file__).resolve().parents[1] / "cases"
#: Case files that are inputs to the tests, not to the generator.
NOT_COPIED = ("expected", "stderr.txt", "use_*.py", ".pikkugen_cache", "__pycache__")
COMMAND = [sys.executable, "-c", "from pikkugen.cli import main; main()", "scan", "--no-cache"]


@dataclass(frozen=True)
class CaseOutput:
    files: dict[str, bytes]
    stderr: str
    exit_code: int
    out: Path


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "pyproject.toml").is_file())


def out_folder(project: Path) -> Path:
    from pikkugen.config import load_config

    return load_config(project).out


def run_case(name: str, work: Path, env: dict[str, str] | None = None) -> CaseOutput:
    """Copy case `name` into `work` and run `pikkugen scan` there."""
    project = work / name
    shutil.copytree(CASES / name, project, ignore=shutil.ignore_patterns(*NOT_COPIED))
    proc = subprocess.run(
        COMMAND, cwd=project, capture_output=True, text=True, check=False, env=env
    )
    out = out_folder(project)
    files = (
        {
            p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        }
        if out.is_dir()
        else {}
    )
    return CaseOutput(files=files, stderr=proc.stderr, exit_code=proc.returncode, out=out)


def regenerate(name: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        result = run_case(name, Path(scratch))
        case = CASES / name
        shutil.rmtree(case / "expected", ignore_errors=True)
        for rel, data in result.files.items():
            target = case / "expected" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (case / "stderr.txt").write_text(result.stderr, encoding="utf-8")
        print(f"{name}: exit {result.exit_code}, {len(result.files)} file(s)")


def main(argv: list[str]) -> int:
    names = argv or case_names()
    unknown = sorted(set(names) - set(case_names()))
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    for name in names:
        regenerate(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
