from pydantic import BaseModel


class Report(BaseModel):
    account: str
    month: int
