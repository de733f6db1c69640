"""TLS for the HTTP and KAFKA listeners and for the node's own calls to other nodes.

With ``listener.security.protocol.map=HTTP:SSL`` (or ``HTTP:SASL_SSL``) the node serves https
only, with the certificate chain and private key of ``ssl.keystore.location`` (one PEM file, as
Kafka's ``ssl.keystore.type=PEM``; ``ssl.key.password`` decrypts an encrypted key). Its calls
to other nodes (registration, heartbeats, replica fetches, forwarded admin requests, the
redirects clients follow) go to their advertised https URLs and check each peer's certificate
and host name against ``ssl.truststore.location`` (a PEM file of CA certificates; without it,
the system's CAs).

``KAFKA:SSL`` or ``KAFKA:SASL_SSL`` serves Kafka's protocol over TLS with the same keystore.

The contexts are built once at start. A file that is missing, unreadable, or does not hold
what it should is a :class:`~server.config.ConfigError` naming the setting, before the node
opens a port: a node that would start and then fail every handshake is worse than none.
"""

from __future__ import annotations

import datetime
import re
import ssl
from pathlib import Path

from server.config import ConfigError, NodeConfig

# TLS 1.0 and 1.1 are deprecated (RFC 8996); Kafka's default ssl.enabled.protocols is
# TLSv1.2,TLSv1.3 too.
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2

_KEY_BLOCK = re.compile(
    rb"-----BEGIN ((?:ENCRYPTED |RSA |EC )?PRIVATE KEY)-----.+?-----END \1-----", re.DOTALL
)


def server_ssl_context(config: NodeConfig) -> ssl.SSLContext | None:
    """The HTTP listener's context (TLS 1.2 or newer, the keystore's chain and key), or None
    when the HTTP listener is not TLS. Raises ConfigError naming the setting at fault. The
    keystore is checked here too when only the KAFKA listener is TLS: the node calls this
    before it opens a port."""
    if config.kafka_tls and not config.tls:
        kafka_ssl_context(config)
    if not config.tls:
        return None
    # The node's calls to its peers use the truststore (Node.start builds that context once
    # the quorum is up): checked here too, so a bad one stops the node before it opens a port.
    client_ssl_context(config)
    return _listener_context(config, f"HTTP:{config.security_protocol}")


def kafka_ssl_context(config: NodeConfig) -> ssl.SSLContext | None:
    """The KAFKA listener's context (the same keystore as HTTP's; no client certificates
    asked for: the client is ANONYMOUS, or who SASL says), or None when it is not TLS."""
    if not config.kafka_tls:
        return None
    return _listener_context(config, f"KAFKA:{config.kafka_security_protocol}")


def _listener_context(config: NodeConfig, listener: str) -> ssl.SSLContext:
    path = config.ssl_keystore_location
    if path is None:  # config.py requires it with TLS; kept for a config built by hand
        raise ConfigError(f"ssl.keystore.location: required with {listener}")
    check_keystore(path, config.ssl_key_password)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    password = config.ssl_key_password
    try:
        context.load_cert_chain(
            str(path), str(path), password=None if password is None else password.encode()
        )
    except ssl.SSLError as e:  # check_keystore read it already: rare, but say which file
        raise ConfigError(f"ssl.keystore.location: TLS cannot use {path}: {e}") from None
    return context


def client_ssl_context(config: NodeConfig) -> ssl.SSLContext | None:
    """The context of this node's calls to other nodes (they serve TLS when it does: one
    listener protocol per cluster), checking their certificates against the truststore and
    their host names; None when the HTTP listener is not TLS."""
    if not config.tls:
        return None
    path = config.ssl_truststore_location
    try:
        context = ssl.create_default_context(cafile=None if path is None else str(path))
    except FileNotFoundError:
        raise ConfigError(f"ssl.truststore.location: {path} does not exist") from None
    except ssl.SSLError:  # an OSError too: first
        raise ConfigError(
            f"ssl.truststore.location: {path} holds no PEM CA certificate "
            "(-----BEGIN CERTIFICATE----- blocks)"
        ) from None
    except OSError as e:
        raise ConfigError(f"ssl.truststore.location: cannot read {path}: {e.strerror}") from None
    context.minimum_version = MINIMUM_VERSION
    return context


def check_keystore(path: Path, password: str | None) -> None:
    """Checks that ``path`` holds a PEM certificate chain and the private key of its first
    certificate, decryptable with ``password``; raises ConfigError naming the setting and
    saying what is wrong (rather than OpenSSL's terse reason, or its password prompt)."""
    # Imported here, on the TLS path only: cryptography's certificate modules are 15 ms and
    # 1.6 MiB of every node that has no keystore to check (most of them).
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    setting = "ssl.keystore.location"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{setting}: {path} does not exist") from None
    except OSError as e:
        raise ConfigError(f"{setting}: cannot read {path}: {e.strerror}") from None
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(
            f"{setting}: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----); a PEM "
            "keystore holds the node's certificate chain, then its private key"
        ) from None
    blocks = _KEY_BLOCK.findall(data)
    match = _KEY_BLOCK.search(data)
    if match is None:
        raise ConfigError(
            f"{setting}: {path} holds no PEM private key (-----BEGIN PRIVATE KEY-----) after "
            "its certificates"
        )
    if len(blocks) > 1:
        raise ConfigError(f"{setting}: {path} holds {len(blocks)} private keys; keep one")
    try:
        key = serialization.load_pem_private_key(
            match.group(0), password=None if password is None else password.encode()
        )
    except TypeError:
        if password is None:
            raise ConfigError(
                f"ssl.key.password: the private key in {path} is encrypted; give its password"
            ) from None
        raise ConfigError(
            f"ssl.key.password: given, but the private key in {path} is not encrypted; "
            "remove the setting"
        ) from None
    except ValueError:
        if password is not None:
            raise ConfigError(
                f"ssl.key.password: it does not decrypt the private key in {path}"
            ) from None
        raise ConfigError(f"{setting}: the private key in {path} cannot be read") from None
    now = datetime.datetime.now(datetime.UTC)
    if not chain[0].not_valid_before_utc <= now <= chain[0].not_valid_after_utc:
        raise ConfigError(
            f"{setting}: the certificate in {path} is valid from "
            f"{chain[0].not_valid_before_utc:%Y-%m-%d %H:%M} to "
            f"{chain[0].not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now; make a new one"
        )
    if chain[0].public_key() != key.public_key():
        raise ConfigError(
            f"{setting}: the private key in {path} is not the key of its first certificate "
            f"({chain[0].subject.rfc4514_string()}); the node's own certificate comes first"
        )
