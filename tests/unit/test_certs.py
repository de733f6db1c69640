"""The lab's certificates (scripts/certs.py) and the node's TLS contexts (server/tls.py).

Handshakes run in memory (``ssl.MemoryBIO``): the real OpenSSL, no sockets.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from scripts import certs
from server.config import ConfigError, NodeConfig
from server.tls import MINIMUM_VERSION, client_ssl_context, server_ssl_context

BASE = {
    "node.id": "1",
    "process.roles": "broker,controller",
    "controller.quorum.voters": "1@127.0.0.1:9093",
    "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
    "log.dirs": "/tmp/x/kraft-combined-logs",
}


def tls_config(
    keystore: Path, truststore: Path | None = None, key_password: str | None = None
) -> NodeConfig:
    props = {
        **BASE,
        "listener.security.protocol.map": "HTTP:SSL",
        "ssl.keystore.location": str(keystore),
    }
    if key_password is not None:
        props["ssl.key.password"] = key_password
    if truststore is not None:
        props["ssl.truststore.location"] = str(truststore)
    return NodeConfig.from_properties(props)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> ssl.SSLObject:
    """Runs a TLS handshake between the two contexts in memory; returns the client's end."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_end = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    server_end = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, end, out, peer_in in (
            ("client", client_end, c_out, s_in),
            ("server", server_end, s_out, c_in),
        ):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            return client_end
    raise AssertionError("handshake did not finish")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    ca = certs.ensure_ca(directory)
    certs.write_keystore(directory, ca, "node-1", hosts=["broker1.example", "10.0.0.7"])
    return directory


def san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


# -- scripts/certs.py --------------------------------------------------------------------------


def test_subject_alt_names_are_the_local_hosts_then_the_given_ones_each_once() -> None:
    names = certs.subject_alt_names(["localhost", "broker1.example", "10.0.0.7", " ", "::1"])
    assert names == [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.DNSName("localhost"),
        x509.DNSName("broker1.example"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.7")),
    ]


def test_keystore_is_private_and_holds_the_node_certificate_the_ca_then_the_key(
    lab: Path,
) -> None:
    keystore = lab / "node-1.keystore.pem"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert stat.S_IMODE((lab / "ca-key.pem").stat().st_mode) == 0o600
    data = keystore.read_bytes()
    chain = x509.load_pem_x509_certificates(data)
    ca = x509.load_pem_x509_certificate((lab / "ca.pem").read_bytes())
    assert [c.subject for c in chain] == [
        x509.Name.from_rfc4514_string("CN=node-1,O=kraft-streaming lab"),
        ca.subject,
    ]
    assert chain[0].issuer == ca.subject
    chain[0].verify_directly_issued_by(ca)
    assert data.index(b"-----BEGIN PRIVATE KEY-----") > data.rindex(b"-----END CERTIFICATE-----")
    assert x509.DNSName("broker1.example") in san(chain[0])
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True


def test_ensure_ca_reuses_the_ca_a_directory_holds(lab: Path) -> None:
    before = (lab / "ca.pem").read_bytes()
    ca = certs.ensure_ca(lab)
    assert certs.cert_pem(ca.cert) == before


def test_load_ca_refuses_a_key_that_is_not_the_certificates(tmp_path: Path, lab: Path) -> None:
    certs.write_ca(tmp_path, certs.make_ca())
    (tmp_path / "ca.pem").write_bytes((lab / "ca.pem").read_bytes())
    with pytest.raises(certs.CertificateError, match="is not the key of"):
        certs.load_ca(tmp_path)


# -- server/tls.py: handshakes -----------------------------------------------------------------


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost", "broker1.example"])
def test_a_client_trusting_the_ca_verifies_the_node_by_each_of_its_names(
    lab: Path, hostname: str
) -> None:
    config = tls_config(lab / "node-1.keystore.pem", lab / "ca.pem")
    server = server_ssl_context(config)
    client = client_ssl_context(config)
    assert server is not None and client is not None
    assert server.minimum_version == MINIMUM_VERSION == client.minimum_version
    end = handshake(server, client, hostname)
    assert end.version() in ("TLSv1.2", "TLSv1.3")
    peer = end.getpeercert()
    assert peer is not None
    assert peer["subject"] == (
        (("organizationName", "kraft-streaming lab"),),
        (("commonName", "node-1"),),
    )


def test_a_name_the_certificate_does_not_hold_fails_verification(lab: Path) -> None:
    config = tls_config(lab / "node-1.keystore.pem", lab / "ca.pem")
    server, client = server_ssl_context(config), client_ssl_context(config)
    assert server is not None and client is not None
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(server, client, "other.example")


def test_a_client_without_the_ca_fails_verification(lab: Path) -> None:
    server = server_ssl_context(tls_config(lab / "node-1.keystore.pem"))
    assert server is not None
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed certificate in"):
        handshake(server, ssl.create_default_context(), "127.0.0.1")


def test_an_encrypted_key_is_read_with_ssl_key_password(tmp_path: Path, lab: Path) -> None:
    ca = certs.load_ca(lab)
    keystore = certs.write_keystore(tmp_path, ca, "node-2", password="s3cret")
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in keystore.read_bytes()
    config = tls_config(keystore, lab / "ca.pem", key_password="s3cret")
    server, client = server_ssl_context(config), client_ssl_context(config)
    assert server is not None and client is not None
    handshake(server, client, "localhost")


def test_plaintext_listener_has_no_contexts() -> None:
    config = NodeConfig.from_properties(dict(BASE))
    assert server_ssl_context(config) is None and client_ssl_context(config) is None


# -- server/tls.py: startup errors name the setting --------------------------------------------


def test_startup_errors_name_the_setting(tmp_path: Path, lab: Path) -> None:
    ca = certs.load_ca(lab)
    good = lab / "node-1.keystore.pem"
    encrypted = certs.write_keystore(tmp_path, ca, "enc", password="right")
    only_cert = tmp_path / "only-cert.pem"
    only_cert.write_bytes((lab / "ca.pem").read_bytes())
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a pem file\n")
    other_key, other_cert = certs.make_node_cert(ca, "other")
    swapped = tmp_path / "swapped.pem"
    swapped.write_bytes(certs.cert_pem(other_cert) + certs.key_pem(certs.make_ca().key))
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2 * certs.NODE_VALID_DAYS)
    old_key, old_cert = certs.make_node_cert(ca, "old", now=old)
    expired = tmp_path / "expired.pem"
    expired.write_bytes(certs.keystore_pem(old_key, old_cert, [ca.cert]))
    cases: list[tuple[NodeConfig, str]] = [
        (
            tls_config(tmp_path / "missing.pem"),
            "ssl.keystore.location: .*missing.pem does not exist",
        ),
        (tls_config(garbage), "ssl.keystore.location: .* holds no PEM certificate"),
        (tls_config(only_cert), "ssl.keystore.location: .* holds no PEM private key"),
        (tls_config(encrypted), "ssl.key.password: the private key in .* is encrypted"),
        (
            tls_config(encrypted, key_password="wrong"),
            "ssl.key.password: it does not decrypt",
        ),
        (
            tls_config(good, key_password="x"),
            "ssl.key.password: given, but the private key .* is not encrypted",
        ),
        (tls_config(swapped), "ssl.keystore.location: the private key in .* is not the key of"),
        (tls_config(expired), "ssl.keystore.location: the certificate in .* is valid from"),
        (
            tls_config(good, tmp_path / "no-ca.pem"),
            "ssl.truststore.location: .*no-ca.pem does not exist",
        ),
        (tls_config(good, garbage), "ssl.truststore.location: .* holds no PEM CA certificate"),
    ]
    del other_key
    for config, message in cases:
        with pytest.raises(ConfigError, match=message):
            server_ssl_context(config)


def test_the_command_line_makes_a_ca_once_and_a_keystore_per_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certs.main(["--dir", str(tmp_path), "--node", "n1", "--host", "kafka.lan"]) == 0
    first_ca = (tmp_path / "ca.pem").read_bytes()
    assert certs.main(["--dir", str(tmp_path), "--node", "n2", "--password", "pw"]) == 0
    assert (tmp_path / "ca.pem").read_bytes() == first_ca
    assert capsys.readouterr().out.splitlines() == [
        str(tmp_path / "ca.pem"),
        str(tmp_path / "n1.keystore.pem"),
        str(tmp_path / "ca.pem"),
        str(tmp_path / "n2.keystore.pem"),
    ]
    n1 = x509.load_pem_x509_certificates((tmp_path / "n1.keystore.pem").read_bytes())[0]
    assert x509.DNSName("kafka.lan") in san(n1)
    config = tls_config(tmp_path / "n2.keystore.pem", tmp_path / "ca.pem", key_password="pw")
    assert server_ssl_context(config) is not None
