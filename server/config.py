"""A node's configuration: a Kafka-style properties file, validated at start.

Every mistake is reported as :class:`ConfigError` with a plain message that names the setting,
before the node touches its log directory or opens a port.

Recognised settings (Kafka's names where Kafka has one)::

    node.id                      this node's id (required)
    process.roles                broker,controller (default: combined), controller (a voter
                                 that holds no partitions) or broker (no Raft port: it follows
                                 the metadata log as an observer)
    controller.quorum.voters     1@127.0.0.1:9093,2@127.0.0.1:9095,... (a controller's must
                                 name node.id; a broker's must not)
    controller.quorum.bootstrap.servers  127.0.0.1:9093,127.0.0.1:9095,... a broker-only
                                 node's way to the voters, in place of controller.quorum.voters;
                                 also a controller's that joins a running quorum (it follows
                                 the log until kraft-metadata-quorum add-controller adds it)
    listeners                    HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093 (a
                                 broker-only node has no CONTROLLER listener), and optionally
                                 KAFKA://127.0.0.1:19092: Kafka's binary protocol for Kafka's
                                 own clients (a node with a broker role only)
    advertised.listeners         HTTP://host:port (default: the HTTP listener), and
                                 KAFKA://host:port (default: the KAFKA listener): what Kafka's
                                 clients are told to dial (Metadata)
    broker.rack                  the broker's rack (any text; default none): rack-aware
                                 placement spreads a partition's replicas over racks
    log.dirs / log.dir           the log directory (default /tmp/kraft-combined-logs; one only)
    num.partitions               topic default (1)
    default.replication.factor   topic default (1)
    min.insync.replicas          topic default (1)
    log.segment.bytes, log.roll.ms, log.roll.hours, log.retention.ms, log.retention.minutes,
    log.retention.hours, log.retention.bytes, log.index.interval.bytes, message.max.bytes,
    log.flush.interval.messages, log.flush.interval.ms, log.cleanup.policy,
    log.cleaner.min.cleanable.ratio, log.cleaner.delete.retention.ms,
    log.cleaner.min.compaction.lag.ms, log.cleaner.max.compaction.lag.ms
                                 topic defaults, as in Kafka
    log.cleaner.enable           run the log cleaner, which compacts cleanup.policy=compact logs
                                 (true)
    log.cleaner.threads          cleaner threads (1)
    log.cleaner.io.max.bytes.per.second   the cleaner's read plus write rate limit (a double;
                                 Kafka's Double.MAX_VALUE: none)
    log.cleaner.dedupe.buffer.size        the cleaners' offset maps' memory, over all threads
                                 (134217728)
    log.cleaner.io.buffer.size   the cleaners' read and write buffers, over all threads (524288)
    log.cleaner.backoff.ms       how long a cleaner sleeps when no log is cleanable (15000)
    log.retention.check.interval.ms   how often old segments are deleted (Kafka: 300000)
    replica.lag.time.max.ms      a follower not caught up for this long leaves the ISR (10000)
    auto.leader.rebalance.enable            move leadership back to preferred replicas (true)
    leader.imbalance.check.interval.seconds how often the controller checks (300)
    leader.imbalance.per.broker.percentage  a broker's share of its preferred partitions led
                                            elsewhere above which they move back (10)
    http.max.request.bytes       JSON request body limit (8 MiB; never below one record's limit)
    socket.request.max.bytes     the largest request body of any kind (100 MiB, Kafka's default);
                                 http.max.request.bytes and max.message.bytes stay below it
    queued.max.request.bytes     request body bytes held at once over all requests (200 MiB)
    max.connections              open client connections; more are answered 503 and closed (1000)
    max.connections.per.ip       open KAFKA-listener connections from one address; more are
                                 closed at once (200)
    connections.max.idle.ms      a connection with no request for this long is closed (600000)
    http.request.read.timeout.ms a request's headers, and each part of its body, must arrive
                                 within this (30000); else 408 and the connection closes
    listener.security.protocol.map  HTTP:PLAINTEXT (default), HTTP:SSL, HTTP:SASL_PLAINTEXT or
                                 HTTP:SASL_SSL, as Kafka's (SASL here is HTTP basic against
                                 http.users.file); CONTROLLER: must stay PLAINTEXT; KAFKA:
                                 PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL (Kafka's
                                 SaslHandshake/SaslAuthenticate against http.users.file)
    sasl.enabled.mechanisms      the KAFKA listener's SASL mechanisms: PLAIN, SCRAM-SHA-256
                                 (default: both; Kafka's default GSSAPI is not built)
    connection.failed.authentication.delay.ms  a failed KAFKA-listener authentication is
                                 answered, and the connection closed, this much later (100)
    ssl.keystore.type / ssl.keystore.location / ssl.key.password
                                 PEM only: one file with the certificate chain and private key
    ssl.truststore.type / ssl.truststore.location
                                 PEM CA file the node checks its peers' certificates against
    http.users.file              users and salted password hashes (kraft-users), for SASL
    authorizer.class.name        org.apache.kafka.metadata.authorizer.StandardAuthorizer turns
                                 ACLs on (default: empty, everything allowed)
    super.users                  User:admin;User:ops - principals every ACL check allows
    allow.everyone.if.no.acl.found  allow a resource that has no ACL at all (false)
    auto.create.topics.enable    produce to, or subscribe to, an unknown topic creates it (true)
    offsets.topic.num.partitions          partitions of __consumer_offsets (50)
    offsets.topic.replication.factor      its replication factor (3; lowered to the number of
                                          brokers, as Kafka's dev setups set it to 1)
    offsets.topic.segment.bytes           its segment.bytes (104857600)
    group.consumer.session.timeout.ms     a member without heartbeat this long is removed (45000)
    group.consumer.min.session.timeout.ms / group.consumer.max.session.timeout.ms
                                          the range a member may ask for (6000 / 300000)
    group.consumer.heartbeat.interval.ms  how often members heartbeat (5000)
    group.consumer.assignors              uniform,range (the first is the default)
    group.initial.rebalance.delay.ms      a new classic group waits this long for more members
                                          before its first rebalance (3000)
    group.min.session.timeout.ms / group.max.session.timeout.ms
                                          the range a classic member may ask for (6000 /
                                          1800000)
    group.max.size                        members of a classic group (1000, at most 1000;
                                          Kafka: unbounded)
    offset.metadata.max.bytes             the largest metadata string of a commit (4096)
    log.level                    the node log's level: ERROR, WARN (or WARNING), INFO (default),
                                 DEBUG, any case; kraft-server-start --log-level overrides it
    peer.<id>.controller.dial    host:port to dial for peer <id>'s Raft link (fault injection)
    peer.<id>.http.dial          host:port to dial for peer <id>'s HTTP (fault injection)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kraft.limits import CONFIG_VALUE_LENGTH_MAX
from server import limits, logs
from server.topic_configs import TOPIC_CONFIGS, conflict_problem, effective_configs
from storage.clean_map import ENTRY_OVERHEAD_BYTES
from storage.properties import PropertiesError, parse_properties

DEFAULT_LOG_DIR = "/tmp/kraft-combined-logs"

# Broker-level defaults that become topic configs: broker name -> (topic name, factor to ms).
_TOPIC_DEFAULTS: dict[str, tuple[str, int]] = {
    "log.segment.bytes": ("segment.bytes", 1),
    "log.roll.ms": ("segment.ms", 1),
    "log.roll.hours": ("segment.ms", 3_600_000),
    "log.retention.ms": ("retention.ms", 1),
    "log.retention.minutes": ("retention.ms", 60_000),
    "log.retention.hours": ("retention.ms", 3_600_000),
    "log.retention.bytes": ("retention.bytes", 1),
    "log.index.interval.bytes": ("index.interval.bytes", 1),
    "message.max.bytes": ("max.message.bytes", 1),
    "min.insync.replicas": ("min.insync.replicas", 1),
    "log.flush.interval.messages": ("flush.messages", 1),
    "log.flush.interval.ms": ("flush.ms", 1),
    "log.cleaner.delete.retention.ms": ("delete.retention.ms", 1),
    "log.cleaner.min.compaction.lag.ms": ("min.compaction.lag.ms", 1),
    "log.cleaner.max.compaction.lag.ms": ("max.compaction.lag.ms", 1),
}
# Broker-level defaults of topic configs that are not integers: broker name -> topic name
# (checked and stored as the topic config is).
_TEXT_TOPIC_DEFAULTS: dict[str, str] = {
    "log.cleanup.policy": "cleanup.policy",
    "log.cleaner.min.cleanable.ratio": "min.cleanable.dirty.ratio",
}

# The log cleaner's own settings, Kafka's defaults (CleanerConfig).
CLEANER_THREADS = 1
CLEANER_IO_BYTES_PER_SECOND_MAX = sys.float_info.max  # Java's Double.MAX_VALUE: no throttle
CLEANER_DEDUPE_BUFFER_BYTES = 128 * 1024 * 1024
CLEANER_IO_BUFFER_BYTES = 512 * 1024
CLEANER_BACKOFF_MS = 15_000
# Kafka's segment.bytes of __consumer_offsets (offsets.topic.segment.bytes): 100 MiB, smaller
# than a topic's 1 GiB so that the cleaner, which never touches the active segment, gets to
# committed offsets sooner.
OFFSETS_TOPIC_SEGMENT_BYTES = 100 * 1024 * 1024
# The classic group protocol's settings, Kafka's defaults (GroupCoordinatorConfig): a new
# group waits this long for more members before its first rebalance; the session timeouts a
# JoinGroup may ask for.
CLASSIC_INITIAL_REBALANCE_DELAY_MS = 3000
CLASSIC_MIN_SESSION_TIMEOUT_MS = 6000
CLASSIC_MAX_SESSION_TIMEOUT_MS = 1_800_000
_INT_MAX = 2**31 - 1  # Kafka's INT settings
_LONG_MAX = 2**63 - 1
# A decimal as Java's Double.parseDouble reads one, in ASCII (Python's float() also takes
# "nan", "inf", "1_0" and other scripts' digits).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")

_KNOWN = {
    "node.id",
    "broker.rack",
    "broker.id",
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "log.dirs",
    "log.dir",
    "num.partitions",
    "default.replication.factor",
    "log.retention.check.interval.ms",
    "replica.lag.time.max.ms",
    "http.max.request.bytes",
    "socket.request.max.bytes",
    "queued.max.request.bytes",
    "max.connections",
    "max.connections.per.ip",
    "connections.max.idle.ms",
    "http.request.read.timeout.ms",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "http.users.file",
    "sasl.enabled.mechanisms",
    "connection.failed.authentication.delay.ms",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
    "auto.create.topics.enable",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    "offsets.topic.segment.bytes",
    "group.consumer.session.timeout.ms",
    "group.consumer.min.session.timeout.ms",
    "group.consumer.max.session.timeout.ms",
    "group.consumer.heartbeat.interval.ms",
    "group.consumer.assignors",
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "offset.metadata.max.bytes",
    "log.level",
    "log.cleaner.enable",
    "log.cleaner.threads",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.size",
    "log.cleaner.backoff.ms",
    *_TOPIC_DEFAULTS,
    *_TEXT_TOPIC_DEFAULTS,
}
_PEER_DIAL = re.compile(r"^peer\.(\d+)\.(controller|http)\.dial$")
_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")


STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
BROKER_ROLE = "broker"
CONTROLLER_ROLE = "controller"
COMBINED_ROLES = frozenset({BROKER_ROLE, CONTROLLER_ROLE})
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# The SASL mechanisms the KAFKA listener has (server/kafka/sasl.py); Kafka's others are
# refused by name.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256")
_SASL_NOT_BUILT = ("GSSAPI", "SCRAM-SHA-512", "OAUTHBEARER")


class ConfigError(ValueError):
    """A configuration mistake; the message names the setting."""


def _host_port(setting: str, text: str) -> tuple[str, int]:
    match = _HOST_PORT.match(text.strip())
    if not match or not 0 < int(match["port"]) < 65536:
        raise ConfigError(f"{setting}: expected host:port, got {text!r}")
    return match["host"], int(match["port"])


def _int(
    props: dict[str, str], name: str, default: int, minimum: int, maximum: int | None = None
) -> int:
    raw = props.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}: must be at most {maximum}, got {value}")
    return value


def _double(props: dict[str, str], name: str, default: float) -> float:
    """A positive decimal (Java's double); refuses NaN, infinities and zero or less."""
    raw = props.get(name)
    if raw is None:
        return default
    text = raw.strip()
    value = float(text) if _DECIMAL.fullmatch(text) else None
    if value is None or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{name}: expected a number, got {raw!r}")
    if value <= 0:
        raise ConfigError(f"{name}: must be above 0, got {raw!r}")
    return value


def _bool(props: dict[str, str], name: str, default: bool) -> bool:
    raw = props.get(name)
    if raw is None:
        return default
    # Stricter than Kafka, which reads anything but "true" as false: a typo must not turn a
    # feature off silently.
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise ConfigError(f"{name}: expected true or false, got {raw!r}")
    return value == "true"


def _listeners(setting: str, text: str) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, address = item.partition("://")
        if not sep:
            raise ConfigError(f"{setting}: expected NAME://host:port, got {item!r}")
        name = name.upper()
        if name in out:
            raise ConfigError(f"{setting}: listener {name} is given twice")
        out[name] = _host_port(setting, address)
    return out


@dataclass(frozen=True)
class NodeConfig:
    node_id: int
    voters: dict[int, tuple[str, int]]
    http_host: str
    http_port: int
    raft_host: str
    raft_port: int
    advertised_http_url: str
    log_dir: Path
    num_partitions: int = 1
    default_replication_factor: int = 1
    # Broker-wide defaults of topic configs, by the topic config's name ("retention.ms", ...).
    topic_defaults: dict[str, str] = field(default_factory=dict)
    retention_check_interval_ms: int = limits.RETENTION_CHECK_INTERVAL_MS
    max_request_bytes: int = limits.HTTP_REQUEST_BYTES_MAX
    replica_lag_time_max_ms: int = limits.REPLICA_LAG_TIME_MAX_MS
    raft_dial: dict[int, tuple[str, int]] = field(default_factory=dict)
    http_dial: dict[int, tuple[str, int]] = field(default_factory=dict)
    auto_leader_rebalance_enable: bool = True
    leader_imbalance_check_interval_s: int = limits.LEADER_IMBALANCE_CHECK_INTERVAL_S
    leader_imbalance_per_broker_percentage: int = limits.LEADER_IMBALANCE_PER_BROKER_PERCENTAGE
    socket_request_max_bytes: int = limits.SOCKET_REQUEST_MAX_BYTES
    queued_max_request_bytes: int = limits.QUEUED_MAX_REQUEST_BYTES
    max_connections: int = limits.MAX_CONNECTIONS
    max_connections_per_ip: int = limits.MAX_CONNECTIONS_PER_IP
    connections_max_idle_ms: int = limits.CONNECTIONS_MAX_IDLE_MS
    request_read_timeout_ms: int = limits.REQUEST_READ_TIMEOUT_MS
    # The HTTP listener's security protocol, as Kafka's listener.security.protocol.map names it.
    security_protocol: str = "PLAINTEXT"
    ssl_keystore_location: Path | None = None  # PEM: certificate chain and private key
    ssl_key_password: str | None = None
    ssl_truststore_location: Path | None = None  # PEM CA certificates
    users_file: Path | None = None
    # The KAFKA listener's security protocol (listener.security.protocol.map's KAFKA entry),
    # its SASL mechanisms, and the delay before a failed authentication's answer and close.
    kafka_security_protocol: str = "PLAINTEXT"
    sasl_enabled_mechanisms: tuple[str, ...] = SASL_MECHANISMS
    failed_authentication_delay_ms: int = limits.FAILED_AUTHENTICATION_DELAY_MS
    authorizer_enabled: bool = False
    super_users: frozenset[str] = frozenset()
    allow_everyone_if_no_acl_found: bool = False
    auto_create_topics_enable: bool = True
    groups: GroupSettings = field(default_factory=lambda: GroupSettings())
    cleaner: CleanerSettings = field(default_factory=lambda: CleanerSettings())
    log_level: int = logs.DEFAULT_LEVEL  # a logging level (logging.INFO...)
    # process.roles: {"broker"}, {"controller"} or both (the combined mode, the default).
    roles: frozenset[str] = COMBINED_ROLES
    # controller.quorum.bootstrap.servers of a broker-only node: the voters' Raft addresses
    # when controller.quorum.voters is not given (then `voters` is empty).
    bootstrap_servers: tuple[tuple[str, int], ...] = ()
    rack: str | None = None  # broker.rack (None: no rack)
    # The KAFKA listener (Kafka's binary protocol): where it binds, and the host:port Kafka's
    # clients are told (advertised.listeners); port 0 and None: the node has none.
    kafka_host: str = ""
    kafka_port: int = 0
    advertised_kafka_address: str | None = None

    @property
    def has_kafka_listener(self) -> bool:
        """Whether the node serves Kafka's protocol (a KAFKA:// listener)."""
        return self.advertised_kafka_address is not None

    @property
    def listeners(self) -> str:
        """``listeners`` as Kafka describes it (DescribeConfigs, a broker's configs): every
        listener the node opens, NAME://host:port, comma-separated."""
        items = [f"HTTP://{self.http_host}:{self.http_port}"]
        if self.is_controller:
            items.append(f"CONTROLLER://{self.raft_address}")
        if self.has_kafka_listener:
            items.append(f"KAFKA://{self.kafka_host}:{self.kafka_port}")
        return ",".join(items)

    @property
    def advertised_listeners(self) -> str:
        """``advertised.listeners`` as Kafka describes it: what clients are told to dial, the
        HTTP listener's address and the KAFKA one's when the node has it."""
        items = ["HTTP://" + self.advertised_http_url.split("://", 1)[-1]]
        if self.advertised_kafka_address is not None:
            items.append(f"KAFKA://{self.advertised_kafka_address}")
        return ",".join(items)

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def kafka_tls(self) -> bool:
        """Whether the KAFKA listener speaks TLS (KAFKA:SSL or KAFKA:SASL_SSL)."""
        return self.has_kafka_listener and self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_sasl(self) -> bool:
        """Whether the KAFKA listener authenticates with SASL (SASL_PLAINTEXT or SASL_SSL)."""
        return self.has_kafka_listener and self.kafka_security_protocol in (
            "SASL_PLAINTEXT",
            "SASL_SSL",
        )

    @property
    def raft_address(self) -> str:
        """This node's Raft address (its CONTROLLER listener); "" on a broker-only node,
        which has none."""
        return f"{self.raft_host}:{self.raft_port}" if self.is_controller else ""

    @property
    def is_broker(self) -> bool:
        """The node holds partitions: process.roles has broker."""
        return BROKER_ROLE in self.roles

    @property
    def is_controller(self) -> bool:
        """The node is a voter of the metadata quorum: process.roles has controller."""
        return CONTROLLER_ROLE in self.roles

    @property
    def quorum_addresses(self) -> list[str]:
        """The voters' Raft addresses (host:port): controller.quorum.voters' in id order,
        else controller.quorum.bootstrap.servers' as given."""
        if self.voters:
            return [f"{h}:{p}" for _, (h, p) in sorted(self.voters.items())]
        return [f"{h}:{p}" for h, p in self.bootstrap_servers]

    @classmethod
    def load(cls, path: Path, overrides: dict[str, str] | None = None) -> NodeConfig:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read the properties file {path}: {e.strerror}") from None
        try:
            props = parse_properties(text, source=str(path))
        except PropertiesError as e:
            raise ConfigError(str(e)) from None
        props.update(overrides or {})
        return cls.from_properties(props)

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> NodeConfig:
        unknown = sorted(k for k in props if k not in _KNOWN and not _PEER_DIAL.match(k))
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown setting (check its spelling)")

        if "node.id" not in props and "broker.id" not in props:
            raise ConfigError("node.id: required, and missing")
        node_id = _int(props, "node.id" if "node.id" in props else "broker.id", 0, 0)

        roles = _roles(props)
        controller_role = CONTROLLER_ROLE in roles

        listeners = _listeners("listeners", props.get("listeners", ""))
        for required in ("HTTP", "CONTROLLER") if controller_role else ("HTTP",):
            if required not in listeners:
                raise ConfigError(
                    f"listeners: needs a {required}:// listener, e.g. "
                    + (
                        "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
                        if controller_role
                        else "HTTP://127.0.0.1:9092"
                    )
                )
        if not controller_role and "CONTROLLER" in listeners:
            # Kafka's words; here a broker-only node has no Raft port at all.
            raise ConfigError(
                "listeners: controller.listener.names must not contain a value appearing in "
                "the 'listeners' configuration when running KRaft with just the broker role "
                "(remove the CONTROLLER:// listener: a broker-only node has no Raft port and "
                "follows the metadata log through controller.quorum.bootstrap.servers)"
            )
        http_host, http_port = listeners["HTTP"]
        raft_host, raft_port = listeners.get("CONTROLLER", ("", 0))
        if raft_host in ("0.0.0.0", "::", "[::]"):
            raise ConfigError(
                "listeners: the CONTROLLER listener must name an address, not 0.0.0.0: its "
                "Raft protocol exchanges pickles and is only protected by the cluster secret"
            )
        advertised = _listeners("advertised.listeners", props.get("advertised.listeners", ""))
        adv_host, adv_port = advertised.get("HTTP", (http_host, http_port))
        security = _security(props)
        if adv_host in ("0.0.0.0", "::", "[::]"):
            raise ConfigError(
                "advertised.listeners: clients cannot dial 0.0.0.0; name the host they use"
            )
        kafka = _kafka_listener(listeners, advertised, roles)
        if not kafka:
            security["kafka_protocol"] = "PLAINTEXT"  # a map entry for a listener not opened

        voters, bootstrap = _quorum(props, node_id, roles)
        if controller_role and voters and voters[node_id] != (raft_host, raft_port):
            raise ConfigError(
                f"controller.quorum.voters: names {voters[node_id][0]}:{voters[node_id][1]} for "
                f"node {node_id}, but listeners has CONTROLLER://{raft_host}:{raft_port}"
            )

        dirs = [
            d.strip()
            for d in props.get("log.dirs", props.get("log.dir", DEFAULT_LOG_DIR)).split(",")
        ]
        dirs = [d for d in dirs if d]
        if len(dirs) != 1:
            raise ConfigError(f"log.dirs: exactly one directory is supported, got {len(dirs)}")

        topic_defaults = _topic_defaults(props)

        raft_dial: dict[int, tuple[str, int]] = {}
        http_dial: dict[int, tuple[str, int]] = {}
        for key, text in props.items():
            match = _PEER_DIAL.match(key)
            if match:
                target = raft_dial if match[2] == "controller" else http_dial
                target[int(match[1])] = _host_port(key, text)
        if not set(raft_dial) <= set(voters):
            # A dial override is by voter id: a broker that knows the voters only by their
            # bootstrap addresses cannot tell which one it is for.
            raise ConfigError(
                f"peer.{min(set(raft_dial) - set(voters))}.controller.dial: names no voter of "
                "controller.quorum.voters"
            )

        percentage = _int(
            props,
            "leader.imbalance.per.broker.percentage",
            limits.LEADER_IMBALANCE_PER_BROKER_PERCENTAGE,
            0,
        )
        if percentage > 100:
            raise ConfigError(
                f"leader.imbalance.per.broker.percentage: must be at most 100, got {percentage}"
            )

        socket_max = _int(props, "socket.request.max.bytes", limits.SOCKET_REQUEST_MAX_BYTES, 1024)
        max_request = _int(props, "http.max.request.bytes", limits.HTTP_REQUEST_BYTES_MAX, 1024)
        if max_request > socket_max:
            raise ConfigError(
                f"http.max.request.bytes: {max_request} is above socket.request.max.bytes "
                f"({socket_max}), the node-wide request limit"
            )
        max_message = int(topic_defaults.get("max.message.bytes", "0"))
        if max_message > socket_max:
            raise ConfigError(
                f"message.max.bytes: {max_message} is above socket.request.max.bytes "
                f"({socket_max}): no request could carry such a batch"
            )

        return cls(
            node_id=node_id,
            voters=voters,
            http_host=http_host,
            http_port=http_port,
            raft_host=raft_host,
            raft_port=raft_port,
            advertised_http_url=f"{'https' if security['tls'] else 'http'}://{adv_host}:{adv_port}",
            log_dir=Path(dirs[0]),
            num_partitions=_int(props, "num.partitions", 1, 1),
            default_replication_factor=_int(props, "default.replication.factor", 1, 1),
            topic_defaults=topic_defaults,
            retention_check_interval_ms=_int(
                props, "log.retention.check.interval.ms", limits.RETENTION_CHECK_INTERVAL_MS, 100
            ),
            max_request_bytes=max_request,
            replica_lag_time_max_ms=_int(
                props, "replica.lag.time.max.ms", limits.REPLICA_LAG_TIME_MAX_MS, 100
            ),
            raft_dial=raft_dial,
            http_dial=http_dial,
            auto_leader_rebalance_enable=_bool(props, "auto.leader.rebalance.enable", True),
            leader_imbalance_check_interval_s=_int(
                props,
                "leader.imbalance.check.interval.seconds",
                limits.LEADER_IMBALANCE_CHECK_INTERVAL_S,
                1,
            ),
            leader_imbalance_per_broker_percentage=percentage,
            socket_request_max_bytes=socket_max,
            queued_max_request_bytes=_int(
                props,
                "queued.max.request.bytes",
                max(limits.QUEUED_MAX_REQUEST_BYTES, socket_max),
                socket_max,
            ),
            max_connections=_int(props, "max.connections", limits.MAX_CONNECTIONS, 1),
            max_connections_per_ip=_int(
                props, "max.connections.per.ip", limits.MAX_CONNECTIONS_PER_IP, 1
            ),
            connections_max_idle_ms=_int(
                props, "connections.max.idle.ms", limits.CONNECTIONS_MAX_IDLE_MS, 1000
            ),
            request_read_timeout_ms=_int(
                props, "http.request.read.timeout.ms", limits.REQUEST_READ_TIMEOUT_MS, 100
            ),
            security_protocol=security["protocol"],
            ssl_keystore_location=security["keystore"],
            ssl_key_password=props.get("ssl.key.password") or None,
            ssl_truststore_location=security["truststore"],
            users_file=security["users"],
            kafka_security_protocol=security["kafka_protocol"],
            sasl_enabled_mechanisms=security["mechanisms"],
            failed_authentication_delay_ms=_int(
                props,
                "connection.failed.authentication.delay.ms",
                limits.FAILED_AUTHENTICATION_DELAY_MS,
                0,
                limits.FAILED_AUTHENTICATION_DELAY_MS_MAX,
            ),
            authorizer_enabled=security["authorizer"],
            super_users=security["super_users"],
            allow_everyone_if_no_acl_found=_bool(props, "allow.everyone.if.no.acl.found", False),
            auto_create_topics_enable=_bool(props, "auto.create.topics.enable", True),
            groups=_group_settings(props),
            cleaner=_cleaner_settings(props),
            log_level=_log_level(props),
            roles=roles,
            bootstrap_servers=bootstrap,
            rack=_rack(props),
            **kafka,
        )


_NONROUTABLE = ("0.0.0.0", "::", "[::]")


def _kafka_listener(
    listeners: dict[str, tuple[str, int]],
    advertised: dict[str, tuple[str, int]],
    roles: frozenset[str],
) -> dict[str, Any]:
    """The KAFKA listener's fields of NodeConfig, checked with Kafka's messages: optional;
    advertised only if it listens; never 0.0.0.0 as advertised; a port of its own; a node
    with the broker role only (a controller-only node holds no partitions to serve)."""
    if "KAFKA" not in listeners:
        if "KAFKA" in advertised:
            raise ConfigError(
                "advertised.listeners: advertised.listeners listener names must be equal to or "
                f"a subset of the ones defined in listeners. Found {','.join(advertised)}. The "
                "valid options based on the current configuration are "
                f"{','.join(listeners)}"
            )
        return {}
    if BROKER_ROLE not in roles:
        raise ConfigError(
            "listeners: The listeners config must only contain KRaft controller listeners from "
            "controller.listener.names when process.roles=controller (a controller-only node "
            "holds no partitions: give KAFKA:// listeners to the brokers)"
        )
    host, port = listeners["KAFKA"]
    others = {name: address for name, address in listeners.items() if name != "KAFKA"}
    if any(p == port for _, p in others.values()):
        shown = ",".join(f"{name}://{h}:{p}" for name, (h, p) in listeners.items())
        raise ConfigError(
            f"listeners: Each listener must have a different port, listeners: {shown}"
        )
    adv_host, adv_port = advertised.get("KAFKA", (host, port))
    if adv_host in _NONROUTABLE:
        raise ConfigError(
            "advertised.listeners: advertised.listeners cannot use the nonroutable "
            "meta-address 0.0.0.0. Use a routable IP address. (the KAFKA listener binds "
            f"{host}: name the host clients dial in advertised.listeners, e.g. "
            f"KAFKA://my-host:{port})"
        )
    return {
        "kafka_host": host,
        "kafka_port": port,
        "advertised_kafka_address": f"{adv_host}:{adv_port}",
    }


def _rack(props: dict[str, str]) -> str | None:
    """Kafka's broker.rack: any text, or none. An empty value is none (a properties file's
    ``broker.rack=`` leaves it unset)."""
    rack = props.get("broker.rack", "").strip()
    if not rack:
        return None
    # The registration record holds it as a config value, with that value's limit.
    if len(rack) > CONFIG_VALUE_LENGTH_MAX or not rack.isprintable():
        raise ConfigError(
            f"broker.rack: must be printable text of at most {CONFIG_VALUE_LENGTH_MAX} characters"
        )
    return rack


def _roles(props: dict[str, str]) -> frozenset[str]:
    """process.roles: broker, controller or both (default), with Kafka's messages."""
    raw = props.get("process.roles", "broker,controller")
    names = [r.strip() for r in raw.split(",") if r.strip()]
    if not names:
        raise ConfigError(
            "process.roles: name at least one role: broker, controller or broker,controller"
        )
    for name in names:
        if name not in (BROKER_ROLE, CONTROLLER_ROLE):
            raise ConfigError(
                f"process.roles: Unknown process role '{name}' (only 'broker' and "
                "'controller' are allowed roles)"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"process.roles: Duplicate role names found in `process.roles`: {raw}")
    return frozenset(names)


def _quorum(
    props: dict[str, str], node_id: int, roles: frozenset[str]
) -> tuple[dict[int, tuple[str, int]], tuple[tuple[str, int], ...]]:
    """controller.quorum.voters and controller.quorum.bootstrap.servers, checked against the
    roles with Kafka's messages: a controller is one of the voters; a broker-only node is not,
    and reaches them through either setting (one of the two)."""
    voters_text = props.get("controller.quorum.voters", "").strip()
    bootstrap_text = props.get("controller.quorum.bootstrap.servers", "").strip()
    voters: dict[int, tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in voters_text.split(","))):
        vid, sep, address = item.partition("@")
        if not sep or not vid.isdigit():
            raise ConfigError(f"controller.quorum.voters: expected id@host:port, got {item!r}")
        if int(vid) in voters:
            raise ConfigError(f"controller.quorum.voters: node id {vid} is listed twice")
        voters[int(vid)] = _host_port("controller.quorum.voters", address)
    addresses = [f"{h}:{p}" for h, p in voters.values()]
    if len(set(addresses)) != len(addresses):
        raise ConfigError("controller.quorum.voters: two voters share one address")
    bootstrap: list[tuple[str, int]] = []
    for item in filter(None, (part.strip() for part in bootstrap_text.split(","))):
        server = _host_port("controller.quorum.bootstrap.servers", item)
        if server in bootstrap:
            raise ConfigError(f"controller.quorum.bootstrap.servers: {item} is listed twice")
        bootstrap.append(server)
    voter_ids = "{" + ", ".join(str(v) for v in sorted(voters)) + "}"
    if CONTROLLER_ROLE in roles:
        if not voters and not bootstrap:
            raise ConfigError(
                "controller.quorum.voters: a controller needs controller.quorum.voters (the "
                "voters the cluster was formatted with, e.g. "
                "controller.quorum.voters=1@127.0.0.1:9093) or "
                "controller.quorum.bootstrap.servers (a controller joining a running quorum: "
                "it follows the log as an observer until kraft-metadata-quorum add-controller "
                "makes it a voter)"
            )
        if voters and bootstrap:
            raise ConfigError(
                "controller.quorum.bootstrap.servers: give it or controller.quorum.voters, not both"
            )
        if bootstrap:
            # KIP-853: a controller that joins a running quorum knows only where the voters
            # are; its log tells it the voter set, itself included once it is added.
            return {}, tuple(bootstrap)
        if node_id not in voters:
            raise ConfigError(
                "controller.quorum.voters: If process.roles contains the 'controller' role, the "
                f"node id {node_id} must be included in the set of voters "
                f"controller.quorum.voters={voter_ids}"
            )
        return voters, ()
    if not voters and not bootstrap:
        raise ConfigError(
            "controller.quorum.bootstrap.servers: If using process.roles, either "
            "controller.quorum.bootstrap.servers must contain the set of bootstrap controllers "
            "or controller.quorum.voters must contain a parseable set of controllers."
        )
    if voters and bootstrap:
        raise ConfigError(
            "controller.quorum.bootstrap.servers: give it or controller.quorum.voters, not both"
        )
    if node_id in voters:
        raise ConfigError(
            "controller.quorum.voters: If process.roles contains just the 'broker' role, the "
            f"node id {node_id} must not be included in the set of voters "
            f"controller.quorum.voters={voter_ids}"
        )
    return voters, tuple(bootstrap)


def _topic_defaults(props: dict[str, str]) -> dict[str, str]:
    """The node's defaults of topic configs, by topic config name, each checked as the topic
    config is, and together as Kafka checks a broker's log config (the compaction lags)."""
    topic_defaults: dict[str, str] = {}
    for broker_name, (topic_name, factor) in _TOPIC_DEFAULTS.items():
        if broker_name in props:
            value = _int(props, broker_name, 0, -1)
            text = str(value * factor if value >= 0 else value)
            problem = TOPIC_CONFIGS[topic_name].check(text)
            if problem:
                raise ConfigError(f"{broker_name}: {problem}")
            topic_defaults[topic_name] = text
    for broker_name, topic_name in _TEXT_TOPIC_DEFAULTS.items():
        if broker_name in props:
            definition = TOPIC_CONFIGS[topic_name]
            text = props[broker_name].strip()
            problem = definition.check(text)
            if problem:
                raise ConfigError(f"{broker_name}: {problem}")
            topic_defaults[topic_name] = definition.normal(text)
    problem = conflict_problem(effective_configs(topic_defaults, {}))
    if problem:
        raise ConfigError(
            f"log.cleaner.min.compaction.lag.ms: {problem} (the topic defaults "
            "log.cleaner.min.compaction.lag.ms and log.cleaner.max.compaction.lag.ms give)"
        )
    return topic_defaults


@dataclass(frozen=True)
class CleanerSettings:
    """The log cleaner's settings (Kafka's names and defaults), which the cleaner reads at
    start. Sizes are over all threads, as in Kafka: each thread takes its share."""

    enable: bool = True  # log.cleaner.enable
    threads: int = CLEANER_THREADS  # log.cleaner.threads; 0 runs none, as false does
    io_max_bytes_per_second: float = CLEANER_IO_BYTES_PER_SECOND_MAX
    dedupe_buffer_size: int = CLEANER_DEDUPE_BUFFER_BYTES  # bytes of offset maps
    io_buffer_size: int = CLEANER_IO_BUFFER_BYTES  # bytes of read and write buffers
    backoff_ms: int = CLEANER_BACKOFF_MS

    @property
    def runs(self) -> bool:
        """Whether any cleaner thread runs."""
        return self.enable and self.threads > 0

    @property
    def throttled(self) -> bool:
        """Whether io_max_bytes_per_second limits the cleaner (Kafka's default does not)."""
        return self.io_max_bytes_per_second < CLEANER_IO_BYTES_PER_SECOND_MAX


def _cleaner_settings(props: dict[str, str]) -> CleanerSettings:
    threads = _int(props, "log.cleaner.threads", CLEANER_THREADS, 0, _INT_MAX)
    dedupe = _int(
        props, "log.cleaner.dedupe.buffer.size", CLEANER_DEDUPE_BUFFER_BYTES, 0, _LONG_MAX
    )
    settings = CleanerSettings(
        enable=_bool(props, "log.cleaner.enable", True),
        threads=threads,
        io_max_bytes_per_second=_double(
            props, "log.cleaner.io.max.bytes.per.second", CLEANER_IO_BYTES_PER_SECOND_MAX
        ),
        dedupe_buffer_size=dedupe,
        io_buffer_size=_int(
            props, "log.cleaner.io.buffer.size", CLEANER_IO_BUFFER_BYTES, 0, _INT_MAX
        ),
        backoff_ms=_int(props, "log.cleaner.backoff.ms", CLEANER_BACKOFF_MS, 0, _LONG_MAX),
    )
    # Kafka's cleaner thread refuses to start with a map too small for one record; each
    # thread's map is its share of the buffer, and ours counts an entry as its key's bytes
    # plus ENTRY_OVERHEAD_BYTES (storage/clean_map.py), so a share must pass that.
    if settings.runs and dedupe // threads <= ENTRY_OVERHEAD_BYTES:
        raise ConfigError(
            f"log.cleaner.dedupe.buffer.size: {dedupe} bytes over {threads} thread(s) leave each "
            f"at most {ENTRY_OVERHEAD_BYTES}: offset map is too small to fit in even a single "
            "message, so log cleaning will never make progress. You can increase "
            "log.cleaner.dedupe.buffer.size or decrease log.cleaner.threads"
        )
    return settings


def _log_level(props: dict[str, str]) -> int:
    raw = props.get("log.level")
    if raw is None:
        return logs.DEFAULT_LEVEL
    try:
        return logs.parse_level(raw)
    except ValueError as e:
        raise ConfigError(f"log.level: {e}") from None


ASSIGNORS = ("uniform", "range")


@dataclass(frozen=True)
class GroupSettings:
    """The group coordinator's settings (Kafka's names and defaults, but the consumer
    protocol's session range and group.max.size)."""

    offsets_topic_partitions: int = limits.OFFSETS_TOPIC_PARTITIONS
    offsets_topic_replication_factor: int = limits.OFFSETS_TOPIC_REPLICATION_FACTOR
    offsets_topic_segment_bytes: int = OFFSETS_TOPIC_SEGMENT_BYTES
    session_timeout_ms: int = limits.GROUP_SESSION_TIMEOUT_MS
    min_session_timeout_ms: int = limits.GROUP_MIN_SESSION_TIMEOUT_MS
    max_session_timeout_ms: int = limits.GROUP_MAX_SESSION_TIMEOUT_MS
    heartbeat_interval_ms: int = limits.GROUP_HEARTBEAT_INTERVAL_MS
    assignors: tuple[str, ...] = ASSIGNORS
    offset_metadata_max_bytes: int = limits.OFFSET_METADATA_BYTES_MAX
    # The classic protocol's (JoinGroup, SyncGroup: Kafka's group.* settings, its defaults).
    initial_rebalance_delay_ms: int = CLASSIC_INITIAL_REBALANCE_DELAY_MS
    classic_min_session_timeout_ms: int = CLASSIC_MIN_SESSION_TIMEOUT_MS
    classic_max_session_timeout_ms: int = CLASSIC_MAX_SESSION_TIMEOUT_MS
    max_size: int = limits.GROUP_MEMBERS_MAX  # group.max.size (Kafka: Int.MaxValue)


def _classic_group_settings(props: dict[str, str]) -> dict[str, int]:
    """The classic protocol's group.* settings, as GroupSettings' fields."""
    minimum = _int(props, "group.min.session.timeout.ms", CLASSIC_MIN_SESSION_TIMEOUT_MS, 1)
    return {
        "initial_rebalance_delay_ms": _int(
            props, "group.initial.rebalance.delay.ms", CLASSIC_INITIAL_REBALANCE_DELAY_MS, 0
        ),
        "classic_min_session_timeout_ms": minimum,
        "classic_max_session_timeout_ms": _int(
            props, "group.max.session.timeout.ms", CLASSIC_MAX_SESSION_TIMEOUT_MS, minimum
        ),
        # Kafka's is unbounded (Int.MaxValue); ours stays within the coordinator's limit.
        "max_size": _int(
            props, "group.max.size", limits.GROUP_MEMBERS_MAX, 1, limits.GROUP_MEMBERS_MAX
        ),
    }


def _group_settings(props: dict[str, str]) -> GroupSettings:
    minimum = _int(
        props, "group.consumer.min.session.timeout.ms", limits.GROUP_MIN_SESSION_TIMEOUT_MS, 1000
    )
    maximum = _int(
        props, "group.consumer.max.session.timeout.ms", limits.GROUP_MAX_SESSION_TIMEOUT_MS, minimum
    )
    session = _int(props, "group.consumer.session.timeout.ms", limits.GROUP_SESSION_TIMEOUT_MS, 1)
    if not minimum <= session <= maximum:
        raise ConfigError(
            f"group.consumer.session.timeout.ms: {session} is outside "
            f"group.consumer.min.session.timeout.ms..group.consumer.max.session.timeout.ms "
            f"({minimum}..{maximum})"
        )
    heartbeat = _int(
        props, "group.consumer.heartbeat.interval.ms", limits.GROUP_HEARTBEAT_INTERVAL_MS, 100
    )
    if heartbeat >= minimum:
        raise ConfigError(
            f"group.consumer.heartbeat.interval.ms: {heartbeat} must be below "
            f"group.consumer.min.session.timeout.ms ({minimum})"
        )
    names = [
        n.strip() for n in props.get("group.consumer.assignors", ",".join(ASSIGNORS)).split(",")
    ]
    names = [n for n in names if n]
    for name in names:
        if name not in ASSIGNORS:
            raise ConfigError(
                f"group.consumer.assignors: unknown assignor {name!r} "
                f"(known: {', '.join(ASSIGNORS)})"
            )
    if not names:
        raise ConfigError("group.consumer.assignors: name at least one assignor")
    return GroupSettings(
        offsets_topic_partitions=_int(
            props, "offsets.topic.num.partitions", limits.OFFSETS_TOPIC_PARTITIONS, 1
        ),
        offsets_topic_replication_factor=_int(
            props, "offsets.topic.replication.factor", limits.OFFSETS_TOPIC_REPLICATION_FACTOR, 1
        ),
        offsets_topic_segment_bytes=_offsets_segment_bytes(props),
        session_timeout_ms=session,
        min_session_timeout_ms=minimum,
        max_session_timeout_ms=maximum,
        heartbeat_interval_ms=heartbeat,
        assignors=tuple(dict.fromkeys(names)),
        offset_metadata_max_bytes=_int(
            props, "offset.metadata.max.bytes", limits.OFFSET_METADATA_BYTES_MAX, 0
        ),
        **_classic_group_settings(props),
    )


def _offsets_segment_bytes(props: dict[str, str]) -> int:
    """offsets.topic.segment.bytes, in segment.bytes' range (the topic is made with it)."""
    value = _int(props, "offsets.topic.segment.bytes", OFFSETS_TOPIC_SEGMENT_BYTES, 1)
    problem = TOPIC_CONFIGS["segment.bytes"].check(str(value))
    if problem:
        raise ConfigError(
            f"offsets.topic.segment.bytes: {problem} (it is the topic's segment.bytes)"
        )
    return value


def _security(props: dict[str, str]) -> dict[str, Any]:
    """The HTTP and KAFKA listeners' security settings, checked together (Kafka's names)."""
    protocol = "PLAINTEXT"
    kafka_protocol = "PLAINTEXT"
    for item in filter(
        None, (p.strip() for p in props.get("listener.security.protocol.map", "").split(","))
    ):
        name, sep, value = item.partition(":")
        name, value = name.strip().upper(), value.strip().upper()
        if not sep or value not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"listener.security.protocol.map: expected NAME:PROTOCOL with PROTOCOL one of "
                f"{', '.join(SECURITY_PROTOCOLS)}, got {item!r}"
            )
        if name == "HTTP":
            protocol = value
        elif name == "CONTROLLER" and value != "PLAINTEXT":
            raise ConfigError(
                "listener.security.protocol.map: the CONTROLLER listener speaks pysyncobj's "
                "protocol, protected by the cluster secret; it must stay PLAINTEXT"
            )
        elif name == "KAFKA":
            kafka_protocol = value
    for name in ("ssl.keystore.type", "ssl.truststore.type"):
        if props.get(name, "PEM").strip().upper() != "PEM":
            raise ConfigError(f"{name}: only PEM is supported, got {props[name]!r}")
    keystore = _path(props, "ssl.keystore.location")
    truststore = _path(props, "ssl.truststore.location")
    tls = protocol in ("SSL", "SASL_SSL")
    users = _path(props, "http.users.file")
    # One keystore and one users file serve both listeners.
    for listener, value in (("HTTP", protocol), ("KAFKA", kafka_protocol)):
        if value in ("SSL", "SASL_SSL") and keystore is None:
            raise ConfigError(
                f"ssl.keystore.location: required with {listener}:{value} (a PEM file holding "
                "the node's certificate chain and private key)"
            )
        if value in ("SASL_PLAINTEXT", "SASL_SSL") and users is None:
            raise ConfigError(
                f"http.users.file: required with {listener}:{value} (make one with kraft-users)"
            )
    authorizer = props.get("authorizer.class.name", "").strip()
    if authorizer not in ("", STANDARD_AUTHORIZER):
        raise ConfigError(
            f"authorizer.class.name: only {STANDARD_AUTHORIZER} is supported, got {authorizer!r}"
        )
    super_users: set[str] = set()
    for item in filter(None, (p.strip() for p in props.get("super.users", "").split(";"))):
        kind, sep, name = item.partition(":")
        if kind != "User" or not sep or not name:
            raise ConfigError(f"super.users: expected User:name;User:name..., got {item!r}")
        super_users.add(item)
    return {
        "protocol": protocol,
        "kafka_protocol": kafka_protocol,
        "mechanisms": _sasl_mechanisms(props),
        "tls": tls,
        "keystore": keystore,
        "truststore": truststore,
        "users": users,
        "authorizer": bool(authorizer),
        "super_users": frozenset(super_users),
    }


def _sasl_mechanisms(props: dict[str, str]) -> tuple[str, ...]:
    """sasl.enabled.mechanisms: PLAIN and/or SCRAM-SHA-256, in the order given (the order
    SaslHandshake's answer lists them)."""
    raw = props.get("sasl.enabled.mechanisms")
    if raw is None:
        return SASL_MECHANISMS
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        if name in _SASL_NOT_BUILT:
            raise ConfigError(
                f"sasl.enabled.mechanisms: {name} is not built; the KAFKA listener has "
                f"{', '.join(SASL_MECHANISMS)}"
            )
        if name not in SASL_MECHANISMS:
            raise ConfigError(
                f"sasl.enabled.mechanisms: unknown mechanism {name!r} (known: "
                f"{', '.join(SASL_MECHANISMS)}; mechanism names are upper case)"
            )
    if not names:
        raise ConfigError(
            f"sasl.enabled.mechanisms: name at least one of {', '.join(SASL_MECHANISMS)}"
        )
    return tuple(dict.fromkeys(names))


def _path(props: dict[str, str], name: str) -> Path | None:
    raw = props.get(name, "").strip()
    return Path(raw) if raw else None
