"""The worker's options: their defaults and the help text every front end shows."""

from __future__ import annotations

from pikku_queue.adapters import DEFAULT_URL, URL_ENVIRONMENT_VARIABLE

DEFAULT_GRACE_S = 30.0
DEFAULT_LEASE_MS = 30_000
DEFAULT_METRICS_HOST = "127.0.0.1"

BACKEND_HELP = (
    f"Backend URL (default: set_default_backend, ${URL_ENVIRONMENT_VARIABLE}, the registry's "
    f"BACKEND_URL, then {DEFAULT_URL})."
)
