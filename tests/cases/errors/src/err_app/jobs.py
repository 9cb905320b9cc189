import os

from pikku_queue import RetryOptions, queue_processor

from err_app.bad_types import Payload


@queue_processor("no-annotation")
async def no_annotation(data):
    return data


@queue_processor("not literal", concurrency=os.cpu_count())
async def not_literal(data: int) -> int:
    return data


@queue_processor("bad-retry", retry_options=RetryOptions(attempts=0, backoff="linear"))
async def bad_retry(data: int) -> int:
    return data


@queue_processor("dup")
async def first(data: int) -> int:
    return data


@queue_processor("dup")
async def second(data: int) -> int:
    return data


@queue_processor("self-dlq", dead_letter_queue="self-dlq")
async def self_dlq(data: int) -> int:
    return data


@queue_processor("unimportable-type")
async def unimportable(data: Payload) -> int:
    return 0
