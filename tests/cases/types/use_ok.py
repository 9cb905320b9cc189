from types_app.models import Color, Node, Page, Point
from types_gen.client import enqueue_enum, enqueue_generic, enqueue_recursive, queue_job


async def use() -> None:
    color = await (await enqueue_enum(Color.RED)).result()
    print(color)
    await enqueue_generic(Page[Point](items=[{"x": 1.0, "y": 2.0}]))
    await enqueue_recursive(Node(name="root"))
    await queue_job("literal-alias", "fast")
    await queue_job("builtins", None)
