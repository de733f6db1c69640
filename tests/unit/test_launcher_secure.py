"""The secure lab's pure rules (scripts/cluster_nodes.py): a secure node's properties, the
admin's client properties, and how a node is recognised as secure."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.security import ClientSecurity
from scripts import cluster_nodes as cn
from server.config import NodeConfig
from storage.properties import parse_properties


def test_a_secure_node_serves_https_with_its_keystore_sasl_and_the_standard_authorizer() -> None:
    nodes = cn.plan_nodes(Path("/c"), 3, 9092, secure=True)
    node = nodes[1]
    assert node.url == "https://127.0.0.1:9094"
    props = cn.node_properties(node, nodes)
    plain_nodes = cn.plan_nodes(Path("/c"), 3, 9092)
    plain = cn.node_properties(plain_nodes[1], plain_nodes)
    # The same settings and listeners (a KAFKA one too, KAFKA:SASL_SSL as HTTP), plus security.
    assert {k: v for k, v in props.items() if k in plain} == plain
    assert props["listeners"] == (
        "HTTP://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095,KAFKA://127.0.0.1:19094"
    )
    assert {k: v for k, v in props.items() if k not in plain} == {
        "listener.security.protocol.map": "HTTP:SASL_SSL,CONTROLLER:PLAINTEXT,KAFKA:SASL_SSL",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": "/c/certs/node-2.keystore.pem",
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": "/c/certs/ca.pem",
        "http.users.file": "/c/users",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
    }
    # The node reads them as meant: https advertised, SASL over TLS, ACLs on, admin super.
    config = NodeConfig.from_properties(
        parse_properties(cn.properties_text(props, node.node_id, len(nodes)))
    )
    assert config.security_protocol == "SASL_SSL" and config.tls and config.sasl
    assert config.kafka_security_protocol == "SASL_SSL" and config.kafka_tls and config.kafka_sasl
    assert config.advertised_http_url == node.url
    assert config.authorizer_enabled and config.super_users == frozenset({"User:admin"})
    assert config.ssl_keystore_location == node.keystore
    assert cn.is_secure(props)


def test_a_plain_node_stays_as_it_was() -> None:
    nodes = cn.plan_nodes(Path("/c"), 1, 9092)
    props = cn.node_properties(nodes[0], nodes)
    assert nodes[0].url == "http://127.0.0.1:9092"
    assert not any(
        k.startswith(("ssl.", "listener.security", "sasl.", "http.users")) for k in props
    )
    assert not cn.is_secure(props)


@pytest.mark.parametrize(
    ("protocol_map", "secure"),
    [
        ("HTTP:SASL_SSL,CONTROLLER:PLAINTEXT", True),
        ("CONTROLLER:PLAINTEXT, http:ssl", True),
        ("HTTP:SASL_PLAINTEXT", False),
        ("HTTP:PLAINTEXT", False),
        ("", False),
    ],
)
def test_a_node_is_secure_when_its_http_listener_is_tls(protocol_map: str, secure: bool) -> None:
    assert cn.is_secure({"listener.security.protocol.map": protocol_map}) is secure


def test_admin_properties_are_kafka_client_properties_of_the_admin_user() -> None:
    text = cn.admin_properties_text(Path("/c/certs/ca.pem"), "pa$$ word")
    security = ClientSecurity.from_properties(parse_properties(text))
    assert security.protocol == "SASL_SSL"
    assert security.truststore == Path("/c/certs/ca.pem")
    assert (security.username, security.password) == ("admin", "pa$$ word")


def test_existing_nodes_keep_the_security_they_were_written_with(tmp_path: Path) -> None:
    for secure in (False, True):
        directory = tmp_path / ("secure" if secure else "plain")
        nodes = cn.plan_nodes(directory, 2, 9092, secure=secure)
        for node in nodes:
            node.directory.mkdir(parents=True)
            node.properties.write_text(
                cn.properties_text(cn.node_properties(node, nodes), node.node_id, 2)
            )
        assert cn.existing_nodes(directory) == nodes
    mixed = tmp_path / "plain" / "node-2" / "node.properties"
    mixed.write_text((tmp_path / "secure" / "node-2" / "node.properties").read_text())
    with pytest.raises(cn.LauncherError, match="holds secure and plain nodes"):
        cn.existing_nodes(tmp_path / "plain")
