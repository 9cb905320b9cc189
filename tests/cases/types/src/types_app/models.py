import datetime
import enum
import uuid
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel
from typing_extensions import TypedDict

T = TypeVar("T")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(TypedDict):
    x: float
    y: float


@dataclass
class Stamp:
    at: datetime.datetime
    id: uuid.UUID


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = None


class Node(BaseModel):
    name: str
    children: list["Node"] = []


Mode = Literal["fast", "slow"]
