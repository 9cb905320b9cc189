"""The public names of pikku_queue are a contract (DESIGN.md): pin them."""

import pikku_queue


def test_declaration_api_names_are_exported() -> None:
    for name in [
        "queue_processor",
        "add_queue_processor",
        "JobContext",
        "RetryOptions",
        "BatchOptions",
        "Repeat",
        "NonRetryableError",
    ]:
        assert name in pikku_queue.__all__
        assert hasattr(pikku_queue, name)
