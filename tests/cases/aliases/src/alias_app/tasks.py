"""The project's own name for the decorator: a re-export under another name."""

from pikku_queue import queue_processor as task
from pikku_queue import add_queue_processor as register

__all__ = ["register", "task"]
