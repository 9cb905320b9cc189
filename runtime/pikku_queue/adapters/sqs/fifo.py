"""FIFO order for batch processors on SQS, keyed by MessageGroupId.

The rule is the push core's (`pikku_queue.push.GroupHold`), one home for the Lambda handler
and the long-poll worker: verdicts are applied in receive order; at the first message of a
group that is not finished (retried, or its settle failed) the group is held, and every later
message of that group is given back unsettled (visible again at once; SQS holds the group
while the failed message waits for its backoff, so they follow it, in order). A message
without a MessageGroupId counts as one group with every other such message.
"""

from __future__ import annotations

from pikku_queue.adapters.sqs.messages import InboundMessage
from pikku_queue.push import GroupHold as _GroupHold


def _group_id(message: InboundMessage) -> str | None:
    return message.group_id


class GroupHold(_GroupHold[InboundMessage]):
    """The groups held in one received batch of an SQS queue."""

    def __init__(self) -> None:
        super().__init__(_group_id)
