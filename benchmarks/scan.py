"""Scanner benchmark: naive libcst baseline vs cold scan vs warm re-scan vs `scan --check`.

Builds (fixed seed) a corpus of ~200-line modules in a temporary folder, about 5% of them
declaring processors in every import style the scanner supports (re-exports through an
in-tree module, relative imports, `try/except ImportError`, `add_queue_processor` with a
function from a module that never mentions pikku_queue, ...), then prints, in one run:

- baseline: read + `libcst.parse_module` on every file, sequentially (what a naive scanner does);
- cold:     `scan()` with an empty cache;
- warm:     `scan()` again with the cache the cold scan filled;
- scan:     `pikkugen scan` as a whole process, warm (nothing changed), median of 5 (wall);
- check:    `pikkugen scan --check` as a whole process on the up-to-date tree (wall).

Targets: cold <= 0.25 x baseline, warm <= 0.10 x cold, whole-process warm scan <= 0.4 s for
1,500 modules, --check <= 0.5 s for 2,000 files. The last line is JSON.

    .venv/bin/python benchmarks/scan.py [--modules 2000] [--seed 7] [--keep DIR]
    .venv/bin/python benchmarks/scan.py --modules 1500      # the warm-scan target's size
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libcst
from pikkugen.scanner import ScanStats, scan

WORDS = [
    "order", "invoice", "user", "cart", "item", "price", "stock", "email", "image", "report",
    "batch", "token", "event", "record", "account", "payment", "refund", "coupon", "address",
]  # fmt: skip
MODELS = 12


def ident(rng: random.Random) -> str:
    return f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{rng.randrange(1000)}"


def filler(rng: random.Random, lines: int) -> list[str]:
    """Ordinary application code: constants, functions with control flow, small classes."""
    out: list[str] = []
    while len(out) < lines:
        kind = rng.randrange(4)
        name = ident(rng)
        if kind == 0:
            out += [f"{name.upper()} = {rng.randrange(10**6)}", ""]
        elif kind == 1:
            out += [
                f"def {name}(values: list[int], factor: float = {rng.random():.3f}) -> float:",
                f'    """Compute the {rng.choice(WORDS)} total."""',
                "    total = 0.0",
                "    for index, value in enumerate(values):",
                f"        if value % {rng.randrange(2, 9)} == 0:",
                "            total += value * factor",
                "        elif index > 3:",
                "            total -= math.sqrt(abs(value))",
                "        else:",
                f'            logging.getLogger(__name__).debug("skip %s", "{name}")',
                "    return round(total, 2)",
                "",
            ]
        elif kind == 2:
            cls = "".join(w.capitalize() for w in name.split("_")[:2]) + str(rng.randrange(99))
            out += [
                f"class {cls}:",
                "    def __init__(self, key: str, size: int = 0) -> None:",
                "        self.key = key",
                "        self.size = size",
                "        self.items: dict[str, int] = {}",
                "",
                "    def add(self, name: str, amount: int) -> None:",
                "        self.items[name] = self.items.get(name, 0) + amount",
                "        self.size += amount",
                "",
                "    def describe(self) -> str:",
                f'        return f"{cls}({{self.key}}, {{self.size}})"',
                "",
            ]
        else:
            out += [
                f"def {name}(text: str) -> dict[str, object]:",
                "    parts = re.split(r'[,;]', text)",
                "    data = {p.strip(): len(p) for p in parts if p}",
                f"    data['{rng.choice(WORDS)}'] = json.dumps(sorted(data))",
                "    return data",
                "",
            ]
    return out  # whole blocks: may run a few lines over


HEADER = ["import json", "import logging", "import math", "import re", ""]

# Each style: (import lines, decorator or None for the call form). {P}/{R}: payload/result.
STYLES: list[tuple[list[str], str | None]] = [
    (["import pikku_queue as pq"], "@pq.queue_processor"),
    (["import pikku_queue"], "@pikku_queue.queue_processor"),
    (["from pikku_queue import queue_processor as qp"], "@qp"),
    (["from pikku_queue.declarations import queue_processor"], "@queue_processor"),
    (
        [
            "try:",
            "    from pikku_queue import queue_processor",
            "except ImportError:  # pragma: no cover",
            "    queue_processor = None",
        ],
        "@queue_processor",
    ),
    (["from bench.queue import register"], "@register"),  # re-export, absolute
    (["from ...queue import register as enlist"], "@enlist"),  # re-export, relative
    (["from pikku_queue import *"], "@queue_processor"),
    (["from pikku_queue import add_queue_processor"], None),  # call form
]


def processor_module(rng: random.Random, index: int, package: str) -> tuple[str, str | None]:
    """A module declaring one processor; and, for the call form, its function's module."""
    imports, decorator = STYLES[index % len(STYLES)]
    model = index % MODELS
    lines = HEADER + imports + [f"from bench.models import Payload{model}, Result{model}", ""]
    lines += filler(rng, 90)
    options = (
        f"concurrency={rng.randrange(1, 20)}, timeout=TIMEOUT, "
        "retry_options={'attempts': 3, 'backoff': 'exponential', 'delay': 1000}"
    )
    helper = None
    if decorator is not None:
        lines += [
            f"TIMEOUT = {rng.randrange(1, 60)} * 1000",
            f"{decorator}('queue-{index}', {options})",
            f"async def handle_{index}(ctx, data: Payload{model}) -> Result{model}:",
            f"    return Result{model}(ok=True)",
            "",
        ]
    else:
        helper = "\n".join(
            [
                *HEADER,
                f"from bench.models import Payload{model}, Result{model}",
                *filler(rng, 190),
                f"def handle_{index}(data: Payload{model}) -> Result{model}:",
                f"    return Result{model}(ok=True)",
                "",
            ]
        )
        lines += [
            f"from .helper_{index} import handle_{index}",
            f"TIMEOUT = {rng.randrange(1, 60)} * 1000",
            f"add_queue_processor(name='queue-{index}', func=handle_{index}, {options})",
            "",
        ]
    lines += filler(rng, 200 - len(lines))
    return "\n".join(lines) + "\n", helper


def build_corpus(root: Path, modules: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    src = root / "src" / "bench"
    src.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.pikkugen]\npaths = ["src"]\nout = "src/bench/generated"\nruntimes = ["sqlite"]\n'
    )
    (src / "__init__.py").write_text("")
    (src / "queue.py").write_text("from pikku_queue import queue_processor as register\n")
    models = ["from pydantic import BaseModel", ""]
    for m in range(MODELS):
        models += [f"class Payload{m}(BaseModel):", "    key: str", "    size: int = 0", ""]
        models += [f"class Result{m}(BaseModel):", "    ok: bool", ""]
    (src / "models.py").write_text("\n".join(models))
    packages = max(1, modules // 100)
    declaring = 0
    written = 3
    for i in range(modules):
        package = src / f"pkg_{i % packages}" / "sub"
        if not package.exists():
            package.mkdir(parents=True)
            (package.parent / "__init__.py").write_text("")
            (package / "__init__.py").write_text("")
            written += 2
        if rng.random() < 0.05:
            text, helper = processor_module(rng, declaring, package.name)
            if helper is not None:
                (package / f"helper_{declaring}.py").write_text(helper)
                written += 1
            declaring += 1
        else:
            text = "\n".join(HEADER + filler(rng, 195)) + "\n"
        (package / f"mod_{i}.py").write_text(text)
        written += 1
    return {"files": written, "declaring": declaring}


def baseline(root: Path) -> float:
    files = sorted((root / "src").rglob("*.py"))
    start = time.perf_counter()
    for path in files:
        libcst.parse_module(path.read_bytes())
    return time.perf_counter() - start


def timed_scan(root: Path, cache: Path | None) -> tuple[float, ScanStats, int]:
    stats = ScanStats()
    start = time.perf_counter()
    result = scan([root / "src"], root=root, cache_dir=cache, stats=stats)
    elapsed = time.perf_counter() - start
    errors = [d for d in result.diagnostics if d.is_error]
    if errors:
        raise SystemExit(f"benchmark corpus has errors: {errors[:3]}")
    return elapsed, stats, len(result.processors)


def whole_process(root: Path, repeat: int = 5) -> tuple[float | None, float | None, str]:
    """Wall seconds of `pikkugen scan` (warm: the cache is filled, nothing changed) and of
    `pikkugen scan --check` on the up-to-date tree, each a whole process as a user or a
    pre-commit hook runs it (interpreter start and imports included); the median of `repeat`."""
    exe = shutil.which("pikkugen", path=str(Path(sys.executable).parent)) or shutil.which(
        "pikkugen"
    )
    if exe is None:
        return None, None, "pikkugen CLI not found"
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    write = subprocess.run([exe, "scan"], cwd=root, env=env, capture_output=True, text=True)
    if write.returncode not in (0, 1):
        return None, None, f"pikkugen scan failed ({write.returncode}): {write.stderr[-400:]}"

    def median_wall(args: list[str]) -> tuple[float, int]:
        times, code = [], 0
        for _ in range(repeat):
            start = time.perf_counter()
            code = subprocess.run([exe, *args], cwd=root, env=env, capture_output=True).returncode
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2], code

    scan_s, scan_code = median_wall(["scan"])
    check_s, check_code = median_wall(["scan", "--check"])
    return scan_s, check_s, f"scan exit {scan_code}, --check exit {check_code}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build the corpus here and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="pikkugen-bench-"))
    try:
        corpus = build_corpus(folder, args.modules, args.seed)
        print(f"corpus: {corpus['files']} files, {corpus['declaring']} declaring modules, {folder}")
        base = baseline(folder)
        print(f"baseline (libcst parse of every file, sequential): {base:8.3f} s")
        cache = folder / ".pikkugen_cache"
        cold, cold_stats, found = timed_scan(folder, cache)
        print(
            f"cold scan (empty cache):                           {cold:8.3f} s"
            f"  = {cold / base:.3f} x baseline (target <= 0.25); parsed {cold_stats.parsed}, "
            f"{cold_stats.stages} pre-filter stages, {found} processors"
        )
        warm, warm_stats, _ = timed_scan(folder, cache)
        print(
            f"warm re-scan (same cache):                         {warm:8.3f} s"
            f"  = {warm / cold:.3f} x cold (target <= 0.10); parsed {warm_stats.parsed}, "
            f"{warm_stats.cache_hits} cache hits"
        )
        scan_s, check_s, note = whole_process(folder)
        if scan_s is None or check_s is None:
            print(f"whole-process scan / scan --check: not measured ({note})")
        else:
            print(
                f"pikkugen scan, warm (whole process, median of 5):  {scan_s:8.3f} s"
                f"  wall (target <= 0.4 s for 1,500 modules)"
            )
            print(
                f"pikkugen scan --check, up to date (whole process): {check_s:8.3f} s"
                f"  wall ({note}; target <= 0.5 s for 2,000 files)"
            )
        figures = {
            "modules": args.modules,
            "files": corpus["files"],
            "declaring_modules": corpus["declaring"],
            "processors": found,
            "baseline_s": round(base, 3),
            "cold_s": round(cold, 3),
            "warm_s": round(warm, 3),
            "scan_process_s": None if scan_s is None else round(scan_s, 3),
            "check_s": None if check_s is None else round(check_s, 3),
            "cold_over_baseline": round(cold / base, 4),
            "warm_over_cold": round(warm / cold, 4),
            "parsed_cold": cold_stats.parsed,
            "parsed_warm": warm_stats.parsed,
            "cpus": os.cpu_count(),
        }
        print(json.dumps(figures, sort_keys=True))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
