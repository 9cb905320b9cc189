from typing import Literal

from pydantic import BaseModel


class Email(BaseModel):
    to: str
    subject: str
    body: str


class Sent(BaseModel):
    message_id: str
    status: Literal["sent", "failed"]
