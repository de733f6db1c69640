"""Certificates for the secure lab and the TLS tests: a CA of our own and node certificates it
signs, written as PEM files (Kafka's ``ssl.keystore.type=PEM``).

What it writes into a directory::

    ca.pem                  the CA's certificate: clients and nodes trust it
                            (ssl.truststore.location, curl --cacert)
    ca-key.pem              the CA's private key, mode 0600 (to sign more node certificates)
    <name>.keystore.pem     a node's keystore, mode 0600: its certificate, then the CA's
                            (the chain), then its private key (encrypted if a password is
                            given: ssl.key.password)

Node certificates name 127.0.0.1, ::1 and localhost (plus any host given) as subject
alternative names, so a client checking the host name accepts a node on this machine. Keys
are ECDSA P-256: as strong as RSA 3072 and made in a millisecond.

``python -m scripts.certs --dir D --node node-1 --node node-2 [--host H] [--password P]``
makes the CA if ``D/ca.pem`` is missing, else reuses it, and a keystore per ``--node``.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Hosts every node certificate names: the lab and the tests dial 127.0.0.1, people type
# localhost, and ::1 is where localhost may resolve first.
LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")
# Long enough that a lab made today still works next year; short enough to be a lab's.
CA_VALID_DAYS = 3650
NODE_VALID_DAYS = 825  # the longest a public CA may issue (CA/Browser Forum); habits matter
# Clocks of a laptop and a container differ a little: a certificate valid from "now" would be
# refused for a few seconds by a peer whose clock is behind.
BACKDATE = datetime.timedelta(hours=1)

CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca-key.pem"
KEYSTORE_SUFFIX = ".keystore.pem"


class CertificateError(Exception):
    """A CA or keystore file cannot be used; the message names the file."""


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def subject_alt_names(hosts: Iterable[str] = ()) -> list[x509.GeneralName]:
    """The SAN entries of a node certificate: :data:`LOCAL_HOSTS` then ``hosts``, each once;
    an address becomes an IP entry, anything else a DNS name."""
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in (*LOCAL_HOSTS, *hosts):
        host = host.strip()
        if not host or host.lower() in seen:
            continue
        seen.add(host.lower())
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kraft-streaming lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(
    common_name: str = "kraft-streaming lab CA", now: datetime.datetime | None = None
) -> CertificateAuthority:
    """A new CA: a key and its self-signed certificate, allowed to sign certificates only."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(key, cert)


def make_node_cert(
    ca: CertificateAuthority,
    common_name: str,
    hosts: Iterable[str] = (),
    now: datetime.datetime | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A node's new key and its certificate signed by ``ca``, for TLS servers and clients
    (a node dials its peers with it too), naming :func:`subject_alt_names` of ``hosts``."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=NODE_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(subject_alt_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return key, cert


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey, password: str | None = None) -> bytes:
    """The key as PKCS#8 PEM, encrypted with ``password`` if given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password.encode())
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def keystore_pem(
    key: ec.EllipticCurvePrivateKey,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    password: str | None = None,
) -> bytes:
    """A PEM keystore as Kafka's ``ssl.keystore.type=PEM`` reads it: the certificate, the
    chain up to the CA, then the private key."""
    return b"".join(cert_pem(c) for c in (cert, *chain)) + key_pem(key, password)


def write_private(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` readable by its owner only (0600 from the first byte)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)  # O_CREAT leaves the mode of a file that was there already
    os.replace(tmp, path)


def write_ca(directory: Path, ca: CertificateAuthority) -> Path:
    """Writes ``ca.pem`` and ``ca-key.pem`` (0600); returns the path of ``ca.pem``."""
    directory.mkdir(parents=True, exist_ok=True)
    write_private(directory / CA_KEY_NAME, key_pem(ca.key))
    path = directory / CA_CERT_NAME
    path.write_bytes(cert_pem(ca.cert))
    return path


def load_ca(directory: Path) -> CertificateAuthority:
    """The CA ``write_ca`` wrote in ``directory``."""
    cert_path, key_path = directory / CA_CERT_NAME, directory / CA_KEY_NAME
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as e:
        raise CertificateError(f"cannot read {e.filename}: {e.strerror}") from None
    except (ValueError, TypeError) as e:
        raise CertificateError(f"{cert_path} or {key_path} is not a usable CA: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{key_path}: expected an EC key, as this script makes")
    if cert.public_key() != key.public_key():
        raise CertificateError(f"{key_path} is not the key of {cert_path}")
    return CertificateAuthority(key, cert)


def ensure_ca(directory: Path) -> CertificateAuthority:
    """The CA of ``directory``: loaded if ``ca.pem`` is there, else made and written."""
    if (directory / CA_CERT_NAME).exists():
        return load_ca(directory)
    ca = make_ca()
    write_ca(directory, ca)
    return ca


def write_keystore(
    directory: Path,
    ca: CertificateAuthority,
    name: str,
    hosts: Iterable[str] = (),
    password: str | None = None,
) -> Path:
    """Makes a certificate for node ``name`` and writes ``<name>.keystore.pem`` (0600)."""
    key, cert = make_node_cert(ca, name, hosts)
    path = directory / f"{name}{KEYSTORE_SUFFIX}"
    write_private(path, keystore_pem(key, cert, [ca.cert], password))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.certs",
        description="Make a CA (or reuse DIR's) and a PEM keystore per node, signed by it.",
        allow_abbrev=False,
    )
    parser.add_argument("--dir", type=Path, required=True, help="where the files go")
    parser.add_argument(
        "--node", action="append", default=[], metavar="NAME", help="a keystore for NAME"
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="HOST",
        help=f"a name or address the certificates name besides {', '.join(LOCAL_HOSTS)}",
    )
    parser.add_argument("--password", help="encrypt the keys with it (ssl.key.password)")
    args = parser.parse_args(argv)
    try:
        ca = ensure_ca(args.dir)
        print(args.dir / CA_CERT_NAME)
        for name in args.node:
            print(write_keystore(args.dir, ca, name, args.host, args.password))
    except CertificateError as e:
        print(f"certs: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"certs: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
