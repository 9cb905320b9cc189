from typing_extensions import TypedDict


class Ping(TypedDict):
    n: int
