from pydantic import BaseModel


class Signup(BaseModel):
    user_id: str
    tenant: str
    tags: list[str] = []
