"""`redis_worker.py`: the runnable BullMQ worker of the generated package (runtime "redis").

A few lines calling the runtime's one runner (`pikku_queue.runner.main`) with the generated
package as its registry and Redis URLs only.
"""

from __future__ import annotations

from pikkugen.emit.base import EmitInput, header, py_literal, render


def emit(data: EmitInput) -> dict[str, str]:
    package = data.config.out_package
    text = render(
        "redis/redis_worker.py.j2",
        header=header(data.config.relative_paths()),
        package=package,
        prog=py_literal(f"python -m {package}.redis_worker"),
        registry=py_literal(package),
    )
    return {"redis_worker.py": text}
