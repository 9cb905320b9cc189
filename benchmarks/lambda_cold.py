"""A Lambda cold start's import cost and bundle size with the runtime on its own.

    .venv/bin/python benchmarks/lambda_cold.py          # 15 fresh processes per figure
    .venv/bin/python benchmarks/lambda_cold.py -n 30

Builds both wheels, then two fresh venvs: the runtime-only one (the pikku-queue wheel with
[sqs], what `requirements.txt` puts in a Lambda bundle) and the full one (the pikkugen wheel
too, with every generator dependency). In the runtime-only venv it times, each in a new
process (median of N), importing the example app's generated `shop.generated.sqs_lambda`
(what Lambda's cold start imports), and the baseline: a bare handler module that imports only
boto3 and pydantic. Prints the ratio (goal: at most 1.3) and the installed size of each
venv's site-packages. Figures only; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from runtime_venv import build_wheels, runtime_only_venv, site_size  # noqa: E402

BARE = """
import boto3
import pydantic


def handler(event, context):
    return {"batchItemFailures": []}
"""

TIMED = (
    "import importlib, sys, time\n"
    "start = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(time.perf_counter() - start)\n"
)


def import_seconds(python: Path, module: str, path: str, runs: int) -> float:
    """Median seconds to import `module` in a fresh process (with `path` as PYTHONPATH)."""
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [str(python), "-c", TIMED, module],
            env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(done.stdout.strip()))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lambda-cold-") as scratch:
        root = Path(scratch)
        runtime_wheel, generator_wheel = build_wheels(root / "dist")
        runtime_python = runtime_only_venv(root / "runtime", runtime_wheel, extras="sqs")
        venv.EnvBuilder(with_pip=True, clear=True).create(root / "full")
        subprocess.run(
            [str(root / "full" / "bin" / "python"), "-m", "pip", "install", "-q",
             f"{runtime_wheel}[sqs]", str(generator_wheel)],
            check=True,
            timeout=900,
        )  # fmt: skip
        (root / "bare").mkdir()
        (root / "bare" / "bare_handler.py").write_text(BARE)
        # warm the bytecode caches of both, as a deployed bundle has them
        import_seconds(
            runtime_python, "shop.generated.sqs_lambda", str(REPO / "examples/shop/src"), 1
        )
        import_seconds(runtime_python, "bare_handler", str(root / "bare"), 1)
        generated = import_seconds(
            runtime_python, "shop.generated.sqs_lambda", str(REPO / "examples/shop/src"), args.runs
        )
        bare = import_seconds(runtime_python, "bare_handler", str(root / "bare"), args.runs)
        runtime_bytes = site_size(root / "runtime")
        full_bytes = site_size(root / "full")
    results = {
        "runs": args.runs,
        "generated_sqs_lambda_import_ms": round(generated * 1000, 1),
        "bare_boto3_pydantic_import_ms": round(bare * 1000, 1),
        "import_ratio": round(generated / bare, 2),
        "import_ratio_goal": 1.3,
        "runtime_only_site_packages_mb": round(runtime_bytes / 1e6, 1),
        "full_site_packages_mb": round(full_bytes / 1e6, 1),
        "size_ratio": round(runtime_bytes / full_bytes, 2),
    }
    print(f"import shop.generated.sqs_lambda  {results['generated_sqs_lambda_import_ms']:>7} ms")
    print(f"import boto3, pydantic (baseline) {results['bare_boto3_pydantic_import_ms']:>7} ms")
    print(f"ratio                             {results['import_ratio']:>7} (goal <= 1.3)")
    print(f"site-packages, runtime only       {results['runtime_only_site_packages_mb']:>7} MB")
    print(f"site-packages, with pikkugen      {results['full_site_packages_mb']:>7} MB")
    print(f"ratio                             {results['size_ratio']:>7}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
