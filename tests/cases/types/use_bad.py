from types_gen.client import queue_job


async def use() -> None:
    await queue_job("literal-alias", "medium")  # mypy-error
    await queue_job("typed-dict", {"x": 1.0})  # mypy-error
