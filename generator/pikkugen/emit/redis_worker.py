"""`redis_worker.py`: the runnable BullMQ worker of the generated package (runtime "redis").

It only wires the registry to the Redis backend; everything it does lives in `pikku_queue`, so
the generated file stays small, readable and identical from one run to the next.
"""

from __future__ import annotations

from pikkugen.emit.base import EmitInput, header, py_literal, render
from pikkugen.emit.layout import fit

_QUEUES = "QUEUES: tuple[str, ...] = "


def emit(data: EmitInput) -> dict[str, str]:
    queues = tuple(sorted(p.name for p in data.scan.processors))
    text = render(
        "redis/redis_worker.py.j2",
        header=header(data.config.relative_paths()),
        package=data.config.out_package,
        prog=py_literal(f"python -m {data.config.out_package}.redis_worker"),
        # ruff breaks a too long one-tuple; longer tuples are exploded by py_literal already
        queues=fit(py_literal(queues), indent=0, before=len(_QUEUES), after=0)
        if len(queues) == 1
        else py_literal(queues),
    )
    return {"redis_worker.py": text}
