"""Same tree, same bytes out: across runs and across PYTHONHASHSEED values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scanner_helpers import Tree

SCRIPT = """
import sys
from pathlib import Path
from pikkugen.scanner import scan
root = Path(sys.argv[1])
print(scan([root], root=root, jobs=1).model_dump_json())
"""


def test_output_is_identical_for_any_hash_seed(tree: Tree) -> None:
    tree.write(
        {
            "app/__init__.py": "",
            "app/queue.py": "from pikku_queue import queue_processor as reg, RetryOptions\n",
            "app/b.py": (
                "from .queue import reg, RetryOptions\nfrom typing import Any\n"
                "@reg('b', events={'failed', 'completed', 'stalled'}, retry_options=RetryOptions(attempts=2))\n"
                "def b(data: dict[str, Any]) -> set[int]: ...\n"
                "@reg('dup')\ndef c(data: int) -> int: ...\n"
            ),
            "app/a.py": (
                "import pikku_queue as pq\n@pq.queue_processor('a', timeout=X)\ndef a(data: int) -> int: ...\n"
                "@pq.queue_processor('dup', concurrency=0)\ndef d(data: int) -> int: ...\n"
            ),
        }
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tree.root)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert '"name":"b"' in outputs.pop()
