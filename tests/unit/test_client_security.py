"""A client's security settings from Kafka client properties (``--command-config``)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from client.client import parse_bootstrap
from client.security import ClientSecurity, SecurityConfigError

JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="alice" password="s3cr\\"et";'
)


def test_no_settings_is_plain_http_without_credentials() -> None:
    security = ClientSecurity.from_properties({})
    assert security.scheme == "http" and security.ssl_context() is None
    assert security.authorization() is None


def test_kafkas_sasl_ssl_properties_give_https_and_basic_credentials() -> None:
    security = ClientSecurity.from_properties(
        {
            "security.protocol": "SASL_SSL",
            "ssl.truststore.type": "PEM",
            "sasl.mechanism": "PLAIN",
            "sasl.jaas.config": JAAS,
        }
    )
    assert security.scheme == "https" and security.username == "alice"
    assert security.authorization() == "Basic " + base64.b64encode(b'alice:s3cr"et').decode()
    assert parse_bootstrap("127.0.0.1:9092", security.scheme) == ["https://127.0.0.1:9092"]


def test_librdkafkas_username_and_password_are_read_too() -> None:
    security = ClientSecurity.from_properties(
        {"security.protocol": "SASL_PLAINTEXT", "sasl.username": "bob", "sasl.password": "pw"}
    )
    assert (security.username, security.password, security.tls) == ("bob", "pw", False)


def test_credentials_are_not_sent_without_sasl() -> None:
    security = ClientSecurity.from_properties(
        {"security.protocol": "SSL", "sasl.jaas.config": JAAS}
    )
    assert security.authorization() is None


@pytest.mark.parametrize(
    ("props", "named"),
    [
        ({"security.protocol": "TLS"}, "security.protocol"),
        ({"security.protocol": "SASL_SSL"}, "sasl.jaas.config"),
        ({"ssl.truststore.type": "JKS"}, "ssl.truststore.type"),
        ({"ssl.keystore.location": "/x"}, "ssl.keystore.location"),
        ({"sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "a"}, "SCRAM-SHA-256"),
        ({"sasl.jaas.config": "com.example.Login required;"}, "sasl.jaas.config"),
    ],
)
def test_a_wrong_setting_is_named(props: dict[str, str], named: str) -> None:
    with pytest.raises(SecurityConfigError, match=named):
        ClientSecurity.from_properties(props)


def test_a_missing_truststore_is_named(tmp_path: Path) -> None:
    security = ClientSecurity.from_properties(
        {"security.protocol": "SSL", "ssl.truststore.location": str(tmp_path / "none.pem")}
    )
    with pytest.raises(SecurityConfigError, match="ssl.truststore.location"):
        security.ssl_context()
