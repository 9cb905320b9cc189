import typing
from typing import Any, Optional

from pikku_queue import queue_processor

from types_app.models import Color, Mode, Node, Page, Point, Stamp


@queue_processor("enum")
async def paint(data: Color) -> Optional[Color]:
    return data


@queue_processor("typed-dict")
async def move(data: Point) -> dict[str, list[Point]]:
    return {"path": [data]}


@queue_processor("dataclass")
async def stamp(data: Stamp) -> tuple[int, str]:
    return (1, str(data.id))


@queue_processor("generic")
async def page(data: Page[Point]) -> Page[int]:
    return Page[int](items=[1])


@queue_processor("recursive")
async def walk(data: Node) -> set[str]:
    return {data.name}


@queue_processor("literal-alias")
async def mode(data: Mode) -> typing.Literal[1, 2]:
    return 1


@queue_processor("builtins")
async def builtins(data: dict[str, Any] | list[int] | None) -> bytes:
    return b""
