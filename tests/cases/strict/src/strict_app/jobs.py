from pikku_queue import queue_processor


@queue_processor("fine")
async def fine(data: int) -> int:
    return data


@queue_processor("Priority_Queue", priority=5)
async def prioritised(data: int) -> int:
    return data
