import pikku_queue as pq
from pikku_queue import queue_processor as qp

from ..tasks import register, task
from .types import Ping


@qp("via-alias")
async def via_alias(ctx: pq.JobContext, data: Ping) -> Ping:
    return data


@pq.queue_processor("via-module-alias")
async def via_module_alias(data: str) -> bool:
    return True


@task("via-reexport")
async def via_reexport(ctx: pq.JobContext, data: list[Ping]) -> None:
    return None


def plain(data: int) -> int:
    return data


register(name="via-call-reexport", func=plain)


def queue_processor(name: str) -> object:
    """A local function that merely shares the name: not a processor."""
    return name


@queue_processor("not-a-queue")
def ignored(data: int) -> int:
    return data
