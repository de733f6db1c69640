"""The container entrypoint's pure part: KRAFT_* variables to node settings, checked by the
node's own validation, and the node.properties text they become."""

from __future__ import annotations

import pytest

from scripts.container_entrypoint import (
    EntrypointError,
    properties_text,
    read_given_secret,
    setting_name,
    settings_from_env,
    variable_name,
)
from storage.properties import parse_properties

NODE = {
    "KRAFT_NODE_ID": "1",
    "KRAFT_LISTENERS": "HTTP://0.0.0.0:9092,CONTROLLER://node1:9093",
    "KRAFT_ADVERTISED_LISTENERS": "HTTP://127.0.0.1:9092",
    "KRAFT_CONTROLLER_QUORUM_VOTERS": "1@node1:9093,2@node2:9093,3@node3:9093",
}


def test_a_variable_names_its_setting_upper_cased_with_dots_as_underscores() -> None:
    assert variable_name("controller.quorum.voters") == "KRAFT_CONTROLLER_QUORUM_VOTERS"
    assert setting_name("KRAFT_NODE_ID") == "node.id"
    assert setting_name("KRAFT_CONTROLLER_QUORUM_VOTERS") == "controller.quorum.voters"
    assert setting_name("KRAFT_PEER_2_HTTP_DIAL") == "peer.2.http.dial"


def test_only_kraft_variables_become_settings() -> None:
    env = {
        **NODE,
        "PATH": "/usr/bin",
        "CLUSTER_ID": "x",
        "KRAFTY": "1",
        "KRAFT_PEER_2_HTTP_DIAL": "node2:9092",
    }
    assert settings_from_env(env) == {
        "advertised.listeners": "HTTP://127.0.0.1:9092",
        "controller.quorum.voters": "1@node1:9093,2@node2:9093,3@node3:9093",
        "listeners": "HTTP://0.0.0.0:9092,CONTROLLER://node1:9093",
        "node.id": "1",
        "peer.2.http.dial": "node2:9092",
    }


def test_an_unknown_setting_is_refused_naming_the_variable() -> None:
    with pytest.raises(EntrypointError) as refused:
        settings_from_env({**NODE, "KRAFT_LOG_RETENTION_HOURZ": "1"})
    assert str(refused.value) == (
        "KRAFT_LOG_RETENTION_HOURZ (log.retention.hourz): unknown setting (check its spelling)"
    )


def test_a_bad_value_is_refused_naming_the_variable_and_the_nodes_reason() -> None:
    with pytest.raises(EntrypointError) as refused:
        settings_from_env({**NODE, "KRAFT_MIN_INSYNC_REPLICAS": "two"})
    assert str(refused.value) == (
        "KRAFT_MIN_INSYNC_REPLICAS (min.insync.replicas): expected an integer, got 'two'"
    )


@pytest.mark.parametrize("name", ["KRAFT_node_id", "KRAFT_", "KRAFT_NODE__ID", "KRAFT_NODE_ID_"])
def test_a_variable_that_cannot_name_a_setting_is_refused_by_name(name: str) -> None:
    with pytest.raises(EntrypointError, match=f"^{name}: not a setting variable"):
        settings_from_env({**NODE, name: "1"})


def test_a_missing_required_setting_is_the_nodes_message() -> None:
    env = {k: v for k, v in NODE.items() if k != "KRAFT_CONTROLLER_QUORUM_VOTERS"}
    with pytest.raises(EntrypointError) as refused:
        settings_from_env(env)
    # The node's own message, under the variable's name (a controller may also join with
    # controller.quorum.bootstrap.servers, so the message names both).
    assert str(refused.value).startswith(
        "KRAFT_CONTROLLER_QUORUM_VOTERS (controller.quorum.voters): a controller needs "
        "controller.quorum.voters"
    )


def test_properties_read_back_as_the_settings_plain_where_they_can_be() -> None:
    props = {
        "node.id": "1",
        "listeners": "HTTP://0.0.0.0:9092,CONTROLLER://node1:9093",
        "log.dirs": r"C:\odd\dir",
        "super.users": " User:lead",
    }
    text = properties_text(props)
    assert parse_properties(text) == props
    assert (
        "node.id=1\n" in text and "listeners=HTTP://0.0.0.0:9092,CONTROLLER://node1:9093\n" in text
    )


def test_the_secret_comes_from_one_variable_and_is_long_enough() -> None:
    assert read_given_secret({"CLUSTER_SECRET": "0123456789abcdef"}) == b"0123456789abcdef"
    with pytest.raises(EntrypointError, match="CLUSTER_SECRET holds 5 bytes"):
        read_given_secret({"CLUSTER_SECRET": "short"})
    with pytest.raises(EntrypointError, match="CLUSTER_SECRET .or CLUSTER_SECRET_FILE. is not set"):
        read_given_secret({})
    with pytest.raises(EntrypointError, match="both set"):
        read_given_secret({"CLUSTER_SECRET": "0123456789abcdef", "CLUSTER_SECRET_FILE": "/x"})
