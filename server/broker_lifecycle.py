"""The broker side of the controller's sessions: register, then heartbeat for ever.

Runs on every node, the controller's own included (its calls stay in the process). Until the
broker is first unfenced it asks again 10 ms after each answer, as Kafka's broker does while
STARTING (backing off after failures), so a cold start waits on no heartbeat interval. When the
controller says the registration is unknown (a new controller, or this broker was fenced and
re-registered elsewhere), the broker registers again. A directory formatted for another
cluster stops the node at once; a registration refused because a live broker has this
``node.id`` is retried for a few sessions (the refused one may be this node's own previous
process, killed a moment ago), then stops the node too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from client.protocol import (
    DUPLICATE_BROKER_REGISTRATION,
    INCONSISTENT_CLUSTER_ID,
    STALE_BROKER_EPOCH,
    ApiError,
)
from server import limits

log = logging.getLogger(__name__)

Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class BrokerLifecycle:
    def __init__(
        self,
        call_controller: Call,
        registration: dict[str, Any],
        applied_index: Callable[[], int],
        on_unfenced: Callable[[], None],
        on_fatal: Callable[[str], None],
    ) -> None:
        self._call = call_controller
        self._registration = registration
        self._applied_index = applied_index
        self._on_unfenced = on_unfenced
        self._on_fatal = on_fatal
        self.broker_epoch: int | None = None
        self.fenced = True
        self.unfenced_once = False  # Kafka's STARTING state ends here

    async def run(self) -> None:
        broker_id = self._registration["broker_id"]
        last_problem = ""
        duplicate_since: float | None = None
        pause_s = limits.BROKER_STARTING_POLL_S
        while True:
            answered = False
            try:
                if self.broker_epoch is None:
                    answer = await self._call("/v1/internal/brokers", self._registration)
                    self.broker_epoch = int(answer["broker_epoch"])
                    log.info("registered as broker %d, epoch %d", broker_id, self.broker_epoch)
                answer = await self._call(
                    f"/v1/internal/brokers/{broker_id}/heartbeat",
                    {
                        "broker_epoch": self.broker_epoch,
                        "incarnation_id": self._registration["incarnation_id"],
                        "applied_index": self._applied_index(),
                    },
                )
                was_fenced, self.fenced = self.fenced, bool(answer["fenced"])
                if was_fenced and not self.fenced:
                    self.unfenced_once = True
                    self._on_unfenced()
                answered = True
                last_problem = ""
                duplicate_since = None
            except ApiError as e:
                now = time.monotonic()
                if e.kind is DUPLICATE_BROKER_REGISTRATION:
                    duplicate_since = duplicate_since or now
                    if now - duplicate_since > limits.DUPLICATE_REGISTRATION_GIVE_UP_S:
                        self._on_fatal(e.message)
                        return
                if e.kind is INCONSISTENT_CLUSTER_ID:
                    self._on_fatal(e.message)
                    return
                if e.kind is STALE_BROKER_EPOCH:
                    self.broker_epoch = None
                    self.fenced = True
                elif e.message != last_problem:
                    log.warning("controller not reachable yet: %s", e.message)
                    last_problem = e.message
            pause_s = next_pause_s(pause_s, answered=answered, started=self.unfenced_once)
            await asyncio.sleep(pause_s)


def next_pause_s(pause_s: float, *, answered: bool, started: bool) -> float:
    """The pause before the next registration or heartbeat: the heartbeat interval once the
    broker was unfenced; before that (starting), BROKER_STARTING_POLL_S after an answer and
    twice the last pause after a failure, at most the heartbeat interval."""
    if started:
        return limits.BROKER_HEARTBEAT_INTERVAL_S
    if answered:
        return limits.BROKER_STARTING_POLL_S
    return min(2 * pause_s, limits.BROKER_HEARTBEAT_INTERVAL_S)
