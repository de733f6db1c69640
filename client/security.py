"""A client's security settings, read from Kafka's client properties (``--command-config``).

Kafka users keep a ``client.properties`` beside their tools; the same file works here::

    security.protocol=SASL_SSL                      # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    ssl.truststore.type=PEM
    ssl.truststore.location=/path/ca.pem            # the CA that signed the nodes' certificates
    ssl.endpoint.identification.algorithm=https     # empty: do not check the host name
    sasl.mechanism=PLAIN
    sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\
        username="alice" password="alice-secret";

librdkafka's ``sasl.username`` and ``sasl.password`` are read too. SASL here is HTTP basic
authentication (over TLS with SASL_SSL), checked by the node against its users file.
Settings a client does not need (``acks``, ``client.id``...) are left to the tool that reads
the file; a setting named ``ssl.*`` or ``sasl.*`` that we do not support is refused by name.
"""

from __future__ import annotations

import base64
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from storage.properties import PropertiesError, parse_properties

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SUPPORTED = {
    "security.protocol",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.endpoint.identification.algorithm",
    "sasl.mechanism",
    "sasl.jaas.config",
    "sasl.username",
    "sasl.password",
}
_JAAS = re.compile(
    r"^\s*org\.apache\.kafka\.common\.security\.plain\.PlainLoginModule\s+required\s+(?P<opts>.*?);?\s*$",
    re.DOTALL,
)
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')


class SecurityConfigError(ValueError):
    """A client security setting is wrong; the message names it."""


@dataclass(frozen=True)
class ClientSecurity:
    protocol: str = "PLAINTEXT"
    truststore: Path | None = None  # PEM CA file; None: the system's CAs
    check_hostname: bool = True
    username: str | None = None
    password: str | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The context for https connections, or None for plain http."""
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(
                cafile=None if self.truststore is None else str(self.truststore)
            )
        except (OSError, ssl.SSLError) as e:
            raise SecurityConfigError(
                f"ssl.truststore.location: cannot load {self.truststore}: {e}"
            ) from None
        context.check_hostname = self.check_hostname
        return context

    def authorization(self) -> str | None:
        """The ``Authorization`` header value, or None without SASL."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    @classmethod
    def from_properties(
        cls, props: dict[str, str], source: str = "client config"
    ) -> ClientSecurity:
        for name in props:
            if (name.startswith(("ssl.", "sasl.")) or name == "security.protocol") and (
                name not in _SUPPORTED
            ):
                raise SecurityConfigError(f"{source}: {name} is not supported")
        protocol = props.get("security.protocol", "PLAINTEXT").strip().upper()
        if protocol not in PROTOCOLS:
            raise SecurityConfigError(
                f"{source}: security.protocol must be one of {', '.join(PROTOCOLS)}, "
                f"got {props['security.protocol']!r}"
            )
        store_type = props.get("ssl.truststore.type", "PEM").strip().upper()
        if store_type != "PEM":
            raise SecurityConfigError(
                f"{source}: ssl.truststore.type: only PEM is supported, got {store_type!r}"
            )
        truststore = props.get("ssl.truststore.location", "").strip() or None
        algorithm = props.get("ssl.endpoint.identification.algorithm", "https").strip().lower()
        if algorithm not in ("https", ""):
            raise SecurityConfigError(
                f"{source}: ssl.endpoint.identification.algorithm must be https or empty"
            )
        username, password = _credentials(props, source)
        sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
        if sasl and username is None:
            raise SecurityConfigError(
                f"{source}: security.protocol={protocol} needs sasl.jaas.config (PlainLoginModule "
                "with username and password) or sasl.username and sasl.password"
            )
        mechanism = props.get("sasl.mechanism", "PLAIN").strip().upper()
        if mechanism != "PLAIN":
            raise SecurityConfigError(
                f"{source}: sasl.mechanism {mechanism} is not supported: the nodes take PLAIN "
                "credentials (HTTP basic), and keep only salted hashes of the passwords"
            )
        return cls(
            protocol=protocol,
            truststore=None if truststore is None else Path(truststore),
            check_hostname=algorithm == "https",
            username=username if sasl else None,
            password=password if sasl else None,
        )

    @classmethod
    def load(cls, path: Path) -> ClientSecurity:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SecurityConfigError(f"cannot read {path}: {e.strerror}") from None
        try:
            props = parse_properties(text, source=str(path))
        except PropertiesError as e:
            raise SecurityConfigError(str(e)) from None
        return cls.from_properties(props, str(path))


def _credentials(props: dict[str, str], source: str) -> tuple[str | None, str | None]:
    jaas = props.get("sasl.jaas.config", "").strip()
    if jaas:
        match = _JAAS.match(jaas)
        if match is None:
            raise SecurityConfigError(
                f"{source}: sasl.jaas.config must be org.apache.kafka.common.security.plain."
                'PlainLoginModule required username="..." password="...";'
            )
        options = {k: v.replace('\\"', '"') for k, v in _JAAS_OPTION.findall(match["opts"])}
        if "username" not in options or "password" not in options:
            raise SecurityConfigError(
                f'{source}: sasl.jaas.config needs username="..." and password="..."'
            )
        return options["username"], options["password"]
    username = props.get("sasl.username")
    if username is None:
        return None, None
    return username.strip(), props.get("sasl.password", "")
