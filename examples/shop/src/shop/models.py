"""Payload and result types of the shop's queues."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Email(BaseModel):
    to: str
    subject: str
    body: str


class Sent(BaseModel):
    message_id: str
    status: Literal["sent", "failed"]


class ImageJob(BaseModel):
    image_id: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class ImageResult(BaseModel):
    image_id: str
    thumbnail: str


class DatasetJob(BaseModel):
    dataset_id: str
    size: int = Field(ge=0, le=10_000)


class DatasetResult(BaseModel):
    processed: int
    total: int


class Item(BaseModel):
    id: str
    data: dict[str, int]


class ItemResult(BaseModel):
    id: str
    status: Literal["success", "failed"]
    total: int | None = None


class Task(BaseModel):
    task: str
    payload: dict[str, str] = {}


class TaskResult(BaseModel):
    success: bool
    attempts: int
