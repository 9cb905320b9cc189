from pikku_queue import queue_processor


@queue_processor("broken")
async def broken(data: int) -> int
    return data
