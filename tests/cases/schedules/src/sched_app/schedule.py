"""Schedules kept as module-level constants, followed by the scanner."""

from pikku_queue import Repeat as Every

HOURLY = Every(every=3_600_000)
WEEKDAY_MORNINGS = "*/15 8-10 * * mon-fri"
