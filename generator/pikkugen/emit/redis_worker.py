"""`redis_worker.py`: the runnable BullMQ worker of the generated package (runtime "redis").

It only wires the registry to the Redis backend; everything it does lives in `pikku_queue`, so
the generated file stays small, readable and identical from one run to the next.
"""

from __future__ import annotations

from pikkugen.emit.base import EmitInput, header, py_literal, render


def emit(data: EmitInput) -> dict[str, str]:
    queues = tuple(sorted(p.name for p in data.scan.processors))
    text = render(
        "redis/redis_worker.py.j2",
        header=header(data.config.relative_paths()),
        package=data.config.out_package,
        prog=py_literal(f"python -m {data.config.out_package}.redis_worker"),
        queues=py_literal(queues),
    )
    return {"redis_worker.py": text}
