"""A console served by a controller-only node: the controllers' registered URLs are cluster
origins too (server/http_cors.py), so a 307 from it to a broker, or from a broker back, keeps
the browser's calls allowed. No sockets."""

from __future__ import annotations

from types import SimpleNamespace

from kraft.records import RegisterBrokerRecord, RegisterControllerRecord
from kraft.state import MetadataState
from server.http_cors import ClusterOrigins


def test_registered_controllers_and_brokers_are_cluster_origins() -> None:
    state = MetadataState()
    state.apply_entry(
        1,
        [
            RegisterControllerRecord(1, "inc-1", "http://ctl-1.example:9092", "127.0.0.1:9093"),
            RegisterBrokerRecord(4, "inc-4", 1, "http://Broker-4.example:9098", "127.0.0.1:1"),
        ],
    )
    node = SimpleNamespace(
        quorum=SimpleNamespace(snapshot_state=lambda: state),
        config=SimpleNamespace(advertised_http_url="http://127.0.0.1:9096"),
    )
    origins = ClusterOrigins().current(node)  # type: ignore[arg-type]
    assert origins == {
        "http://ctl-1.example:9092",
        "http://broker-4.example:9098",
        "http://127.0.0.1:9096",
    }
