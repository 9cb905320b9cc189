"""The services processors use, built once per worker by `create_services` (named in
pyproject's [tool.pikkugen] services)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


class BounceError(Exception):
    """The mail server refused the address."""


@dataclass
class EmailService:
    sent: list[str] = field(default_factory=list)

    async def send(self, to: str, subject: str, body: str) -> str:
        if to.endswith("@bounce.invalid"):
            raise BounceError(f"mailbox {to} does not exist")
        message_id = hashlib.sha1(f"{to}|{subject}|{body}".encode()).hexdigest()[:12]
        self.sent.append(message_id)
        return message_id


@dataclass
class DataService:
    def load(self, dataset_id: str, size: int) -> list[int]:
        return list(range(size))


@dataclass
class Services:
    email: EmailService
    data: DataService


def create_services() -> Services:
    return Services(email=EmailService(), data=DataService())
