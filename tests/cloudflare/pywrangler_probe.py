"""Run by test_pywrangler.py with pywrangler's own venv, in a generated Worker folder:
pywrangler's checks and its dependency resolution, as far as they run offline, printed as one
JSON object. Not collected by pytest (no test_ prefix); it imports only workers-py."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import click
from pywrangler import resolve, sync, utils


def main() -> None:
    report: dict[str, object] = {}
    try:
        sync.check_requirements_txt()
    except click.exceptions.Exit as exc:
        report["requirements_txt"] = f"exit {exc.exit_code}"
        print(json.dumps(report))
        return
    report["requirements_txt"] = "ok"
    utils.check_wrangler_config()
    report["python"] = utils.get_python_version()
    report["pyodide_interpreter"] = utils.get_uv_pyodide_interp_name()
    report["pyodide_index"] = utils.get_pyodide_index()
    report["dependencies"] = resolve.parse_requirements()
    report["min_wrangler"] = ".".join(map(str, utils.MIN_WRANGLER_VERSION))
    # pywrangler's own resolution (`uv pip compile pyproject.toml … --no-build`, then its
    # InstallPlan of the lock file), with its Pyodide target swapped for this machine's
    # Python: the Pyodide interpreter uv would download and index.pyodide.org are the only
    # two things it needs from outside (the caller sets UV_OFFLINE and UV_FIND_LINKS).
    resolve.get_uv_pyodide_interp_name = lambda: sys.executable  # type: ignore[assignment]
    resolve.get_pyodide_index = lambda: "file:///no-pyodide-index-offline"  # type: ignore[assignment]
    plan = resolve.resolve_requirements()
    report["resolved"] = sorted(name for name, _ in plan.requirements)
    report["local_packages"] = sorted(plan.local_packages)
    lock = tomllib.loads(Path(utils.get_lockfile_path()).read_text())
    report["directories"] = {
        p["name"]: p["directory"]["path"] for p in lock["packages"] if "directory" in p
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
