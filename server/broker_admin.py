"""The controller's decision on removing a broker (Kafka's UnregisterBroker), as a pure
function from the metadata state to records, like the plans of ``server/controller.py``.

Kafka lets a broker that still holds replicas be unregistered: its partitions then name a
broker that no longer exists until someone moves them. Here a partition's replicas are always
registered brokers (the state machine's rule), so the plan refuses while any partition lists
the broker, and says which ones and how to move them (``kraft-reassign-partitions``). Once it
holds nothing, the record removes it from the cluster's brokers, so placement and
``GET /v1/cluster`` forget it. A broker process still running registers again on its next
heartbeat (the controller answers STALE_BROKER_EPOCH, as Kafka does for an unknown broker):
stop a broker before unregistering it.
"""

from __future__ import annotations

from client.protocol import BROKER_ID_NOT_REGISTERED, INVALID_REQUEST, ApiError
from kraft.records import MetadataRecord, UnregisterBrokerRecord
from kraft.state import MetadataState

# Partitions named in a refusal: enough to recognise the topics, short enough for one line.
NAMED_PARTITIONS_MAX = 5


def plan_unregister_broker(state: MetadataState, broker_id: int) -> list[MetadataRecord]:
    """The record that removes broker ``broker_id``'s registration.

    Raises ApiError BROKER_ID_NOT_REGISTERED (404) when no broker has that id, INVALID_REQUEST
    (400) while a partition lists it among its replicas, naming how many and the first few.
    """
    broker = state.brokers.get(broker_id)
    if broker is None:
        why = (
            f"; node {broker_id} is a controller, which holds no partitions"
            if broker_id in state.controllers
            else ""
        )
        raise ApiError(
            BROKER_ID_NOT_REGISTERED, f"Broker ID {broker_id} is not currently registered{why}"
        )
    held = state.partitions_listing(broker_id)  # the state's own check when it applies
    if held:
        shown = ", ".join(f"{t}-{p}" for t, p in held[:NAMED_PARTITIONS_MAX])
        more = ", ..." if len(held) > NAMED_PARTITIONS_MAX else ""
        count = f"{len(held)} partition{'s' * (len(held) != 1)}"
        raise ApiError(
            INVALID_REQUEST,
            f"broker {broker_id} still holds replicas of {count} ({shown}{more}): move them "
            "first with kraft-reassign-partitions (--generate with the remaining brokers, "
            "then --execute)",
        )
    return [UnregisterBrokerRecord(broker_id, broker.epoch)]
