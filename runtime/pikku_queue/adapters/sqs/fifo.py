"""FIFO order for batch processors.

A batch processor runs a whole batch in one call, so on a FIFO queue a later message of a group
may finish while an earlier one of the same group fails. Settling that later message would let
it overtake the failed one. The rule, the same for the Lambda handler and the long-poll worker:
verdicts are applied in receive order; at the first message of a group that is not finished
(retried, or its settle failed) the group is held, and every later message of that group is
given back unsettled (visible again at once; SQS holds the group while the failed message waits
for its backoff, so they follow it, in order) and runs again: at-least-once. Other groups go on.
A message without a MessageGroupId counts as one group with every other such message, so the
whole batch stops at the first unfinished one, as for a single-job processor.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from pikku_queue.adapters.sqs.messages import InboundMessage
from pikku_queue.engine import Delivery, Outcome

logger = logging.getLogger("pikku_queue.sqs")

#: Applies one verdict; True when the message is finished (deleted, or for Lambda deletable).
Settle = Callable[[InboundMessage, Delivery, Outcome], Awaitable[bool]]
#: Hands a message back unsettled (ChangeMessageVisibility to 0).
GiveBack = Callable[[InboundMessage], Awaitable[None]]


class GroupHold:
    """The groups held in one received batch (the Lambda handler splits a batch into several
    processor calls, which share one hold)."""

    def __init__(self) -> None:
        self._held: set[str | None] = set()

    def held(self, message: InboundMessage) -> bool:
        return message.group_id in self._held

    def hold(self, message: InboundMessage) -> None:
        self._held.add(message.group_id)

    async def settle_in_order(
        self,
        verdicts: Iterable[tuple[InboundMessage, Delivery, Outcome]],
        settle: Settle,
        give_back: GiveBack,
    ) -> list[InboundMessage]:
        """Apply the verdicts under the FIFO rule; return the messages not finished."""
        unfinished: list[InboundMessage] = []
        for message, delivery, outcome in verdicts:
            if self.held(message):
                await give_back(message)
                unfinished.append(message)
            elif not await settle(message, delivery, outcome):
                self.hold(message)
                unfinished.append(message)
        return unfinished
