"""Queue names that are valid but hard to turn into Python names."""

from pikku_queue import queue_processor


@queue_processor("class")
async def a(data: int) -> int:
    return data


@queue_processor("2fa")
async def b(data: int) -> int:
    return data


@queue_processor("email-queue")
async def c(data: str) -> str:
    return data


@queue_processor("email_queue")
async def d(data: str) -> str:
    return data


@queue_processor("Email.Queue")
async def e(data: str) -> str:
    return data


@queue_processor("a")
async def f(data: bytes) -> None:
    return None


@queue_processor("a-sync")
async def g(data: float) -> None:
    return None


@queue_processor("queue_job")
async def h(data: bool) -> bool:
    return data


@queue_processor("None")
async def i(data: None) -> None:
    return data


@queue_processor("...")
async def j(data: int) -> int:
    return data


@queue_processor("__init__")
async def k(data: int) -> int:
    return data


@queue_processor("xxx", dead_letter_queue="_")
async def m(data: int) -> int:
    return data
