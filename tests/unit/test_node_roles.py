"""process.roles and the quorum settings of each role: Kafka's rules and Kafka's messages."""

from __future__ import annotations

import pytest

from server.config import ConfigError, NodeConfig

VOTERS = "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
CONTROLLER = {
    "node.id": "1",
    "process.roles": "controller",
    "controller.quorum.voters": VOTERS,
    "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
}
BROKER = {
    "node.id": "4",
    "process.roles": "broker",
    "controller.quorum.bootstrap.servers": "127.0.0.1:9093,127.0.0.1:9095,127.0.0.1:9097",
    "listeners": "HTTP://127.0.0.1:9098",
}


def changed(base: dict[str, str], **changes: str | None) -> dict[str, str]:
    props = dict(base)
    for key, value in changes.items():
        key = key.replace("_", ".")
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    return props


def refused(props: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        NodeConfig.from_properties(props)
    return str(caught.value)


def test_the_combined_mode_stays_the_default() -> None:
    config = NodeConfig.from_properties(changed(CONTROLLER, process_roles=None))
    assert config.is_broker and config.is_controller
    assert config.raft_address == "127.0.0.1:9093"


def test_a_controller_only_node_is_a_voter_that_holds_no_partitions() -> None:
    config = NodeConfig.from_properties(dict(CONTROLLER))
    assert config.is_controller and not config.is_broker
    assert config.quorum_addresses == ["127.0.0.1:9093", "127.0.0.1:9095", "127.0.0.1:9097"]


def test_a_broker_only_node_has_no_raft_address_and_reaches_the_bootstrap_servers() -> None:
    config = NodeConfig.from_properties(dict(BROKER))
    assert config.is_broker and not config.is_controller
    assert config.raft_address == "" and config.voters == {}
    assert config.quorum_addresses == ["127.0.0.1:9093", "127.0.0.1:9095", "127.0.0.1:9097"]


def test_a_broker_only_node_may_name_the_voters_instead() -> None:
    props = changed(BROKER, controller_quorum_bootstrap_servers=None)
    props["controller.quorum.voters"] = VOTERS
    config = NodeConfig.from_properties(props)
    assert set(config.voters) == {1, 2, 3} and config.bootstrap_servers == ()


@pytest.mark.parametrize(
    "roles, message",
    [
        (
            "broker,zookeeper",
            "process.roles: Unknown process role 'zookeeper' (only 'broker' and 'controller' "
            "are allowed roles)",
        ),
        (
            "broker,broker",
            "process.roles: Duplicate role names found in `process.roles`: broker,broker",
        ),
        (" , ", "process.roles: name at least one role"),
    ],
)
def test_process_roles_are_broker_controller_or_both(roles: str, message: str) -> None:
    assert refused(changed(BROKER, process_roles=roles)).startswith(message)


def test_a_controller_must_be_one_of_the_voters() -> None:
    assert refused(changed(CONTROLLER, node_id="7")) == (
        "controller.quorum.voters: If process.roles contains the 'controller' role, the node "
        "id 7 must be included in the set of voters controller.quorum.voters={1, 2, 3}"
    )


def test_a_controller_needs_the_voters_or_bootstrap_servers_not_both() -> None:
    assert refused(changed(CONTROLLER, controller_quorum_voters=None)).startswith(
        "controller.quorum.voters: a controller needs controller.quorum.voters (the voters the "
        "cluster was formatted with"
    )
    props = changed(CONTROLLER)
    props["controller.quorum.bootstrap.servers"] = "127.0.0.1:9093"
    assert refused(props) == (
        "controller.quorum.bootstrap.servers: give it or controller.quorum.voters, not both"
    )


def test_a_controller_joining_a_running_quorum_takes_the_bootstrap_servers() -> None:
    # KIP-853: it follows the log as an observer until add-controller makes it a voter.
    props = changed(CONTROLLER, node_id="6", controller_quorum_voters=None)
    props["controller.quorum.bootstrap.servers"] = "127.0.0.1:9093,127.0.0.1:9095"
    props["listeners"] = "HTTP://127.0.0.1:9102,CONTROLLER://127.0.0.1:9103"
    config = NodeConfig.from_properties(props)
    assert config.is_controller and not config.is_broker and config.voters == {}
    assert config.raft_address == "127.0.0.1:9103"
    assert config.quorum_addresses == ["127.0.0.1:9093", "127.0.0.1:9095"]


def test_a_controller_needs_a_controller_listener() -> None:
    assert refused(changed(CONTROLLER, listeners="HTTP://127.0.0.1:9092")).startswith(
        "listeners: needs a CONTROLLER:// listener"
    )


def test_a_broker_only_node_must_not_be_a_voter() -> None:
    props = changed(BROKER, controller_quorum_bootstrap_servers=None, node_id="2")
    props["controller.quorum.voters"] = VOTERS
    assert refused(props) == (
        "controller.quorum.voters: If process.roles contains just the 'broker' role, the node "
        "id 2 must not be included in the set of voters controller.quorum.voters={1, 2, 3}"
    )


def test_a_broker_only_node_needs_a_way_to_the_voters() -> None:
    assert refused(changed(BROKER, controller_quorum_bootstrap_servers=None)) == (
        "controller.quorum.bootstrap.servers: If using process.roles, either "
        "controller.quorum.bootstrap.servers must contain the set of bootstrap controllers or "
        "controller.quorum.voters must contain a parseable set of controllers."
    )


def test_a_broker_only_node_takes_one_way_to_the_voters_not_two() -> None:
    props = changed(BROKER)
    props["controller.quorum.voters"] = VOTERS
    assert refused(props).startswith("controller.quorum.bootstrap.servers: give it or")


def test_a_broker_only_node_has_no_controller_listener() -> None:
    props = changed(BROKER, listeners="HTTP://127.0.0.1:9098,CONTROLLER://127.0.0.1:9099")
    assert refused(props).startswith(
        "listeners: controller.listener.names must not contain a value appearing in the "
        "'listeners' configuration when running KRaft with just the broker role"
    )


@pytest.mark.parametrize(
    "servers, problem",
    [
        ("127.0.0.1", "controller.quorum.bootstrap.servers: expected host:port"),
        ("127.0.0.1:9093,127.0.0.1:9093", "is listed twice"),
    ],
)
def test_bad_bootstrap_servers_are_refused(servers: str, problem: str) -> None:
    assert problem in refused(changed(BROKER, controller_quorum_bootstrap_servers=servers))


def test_a_raft_dial_override_needs_a_voter_id() -> None:
    props = changed(BROKER)
    props["peer.1.controller.dial"] = "127.0.0.1:19093"
    assert refused(props).startswith("peer.1.controller.dial: names no voter")
