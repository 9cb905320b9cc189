"""Wrong uses: mypy --strict must flag every line marked `# mypy-error`."""

from basic_app.models import Email, Sent
from basic_gen.client import enqueue_email_queue, queue_job


async def wrong() -> None:
    await enqueue_email_queue({"to": "a"})  # mypy-error
    await queue_job("no-such-queue", {})  # mypy-error
    await queue_job("email-queue", {"to": "a"})  # mypy-error
    handle = await enqueue_email_queue(Email(to="a", subject="b", body="c"))
    wrong_type: int = await handle.result()  # mypy-error
    await enqueue_email_queue(Email(to="a", subject="b", body="c"), priority="high")  # mypy-error
    await queue_job("cleanup-task", {}, repeat={"crontab": "0 2 * * *"})  # mypy-error
    mail = Email(to="a", subject="b", body="c")
    await enqueue_email_queue(mail, repeat={"every": "1m"})  # mypy-error
    print(wrong_type, Sent)
