"""The old home of the generic pull loop, now `pikku_queue.pull`; kept so that a custom
backend written against it (`pikku_queue.worker.run_pull_worker`) still imports."""

from pikku_queue.pull import RELEASE_TIMEOUT_S as RELEASE_TIMEOUT_S
from pikku_queue.pull import default_worker_id as default_worker_id
from pikku_queue.pull import run_pull_worker as run_pull_worker
from pikku_queue.pull import stop_tasks as stop_tasks
