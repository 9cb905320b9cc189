"""One queue with typed payload and result: the client must not import `Any` (ruff F401)."""

from pydantic import BaseModel

from pikku_queue import JobContext, queue_processor


class Sms(BaseModel):
    to: str
    text: str


class Receipt(BaseModel):
    message_id: str


@queue_processor("send-sms", concurrency=2)
async def send_sms(ctx: JobContext, data: Sms) -> Receipt:
    return Receipt(message_id=f"{ctx.job_id}:{data.to}")
