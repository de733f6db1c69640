"""The consumer's settings, read from Kafka's consumer properties, checked once at construction.

A setting we do not know is refused by name, and so is one of Kafka's that we cannot honour
(with the reason), so that nobody believes a setting took effect when it did not. Security
settings (``security.protocol``, ``ssl.*``, ``sasl.*``) go to :class:`ClientSecurity`.

``isolation.level``: a fetch only ever returns records below the high watermark (what every
in-sync replica has), and there are no transactions, so ``read_committed`` and
``read_uncommitted`` return the same records; both are accepted so Kafka configs work as is.

``heartbeat.interval.ms``: in Kafka 4's protocol the coordinator sets the interval; a member
heartbeats at the smaller of the coordinator's and this one (when given), so a test or a
latency-sensitive member may heartbeat more often, never less.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from client.security import ClientSecurity, SecurityConfigError

OFFSET_RESETS = ("earliest", "latest", "none")
ISOLATION_LEVELS = ("read_uncommitted", "read_committed")
ASSIGNORS = ("uniform", "range")

# Kafka's consumer settings we know of but cannot honour, with the reason.
_REFUSED: dict[str, str] = {
    "group.instance.id": "static membership is not supported",
    "key.deserializer": "keys are returned as bytes",
    "value.deserializer": "values are returned as bytes",
    "partition.assignment.strategy": (
        "the coordinator assigns partitions (Kafka 4's consumer protocol); "
        "use group.remote.assignor"
    ),
    "interceptor.classes": "there are no interceptors",
    "allow.auto.create.topics": "the nodes' auto.create.topics.enable decides",
}
_SECURITY_PREFIXES = ("ssl.", "sasl.")


class ConsumerConfigError(ValueError):
    """A consumer setting is wrong or not supported; the message names it."""


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


@dataclass(frozen=True)
class ConsumerConfig:
    bootstrap_servers: str
    group_id: str | None = None
    client_id: str = "kraft-consumer"
    auto_offset_reset: str = "latest"
    enable_auto_commit: bool = True
    auto_commit_interval_ms: int = 5000
    max_poll_records: int = 500
    max_poll_interval_ms: int = 300_000
    fetch_max_wait_ms: int = 500
    fetch_min_bytes: int = 1
    max_partition_fetch_bytes: int = 1024 * 1024
    session_timeout_ms: int | None = None  # None: the coordinator's default (45 s)
    heartbeat_interval_ms: int | None = None
    group_remote_assignor: str | None = None  # None: the coordinator's default (uniform)
    group_protocol: str = "consumer"
    isolation_level: str = "read_uncommitted"
    request_timeout_ms: int = 30_000
    retry_backoff_ms: int = 100
    security: ClientSecurity = ClientSecurity()

    @classmethod
    def from_properties(
        cls, props: Mapping[str, object], security: ClientSecurity | None = None
    ) -> ConsumerConfig:
        """The settings of a dict of Kafka consumer properties (values as strings or Python
        values); ``security`` overrides any security properties in ``props``. Raises
        ConsumerConfigError naming the first bad or unknown setting."""
        values = {str(k).strip(): _text(v) for k, v in props.items()}
        security_props = {
            k: v
            for k, v in values.items()
            if k == "security.protocol" or k.startswith(_SECURITY_PREFIXES)
        }
        if security is None:
            try:
                security = ClientSecurity.from_properties(security_props, "consumer config")
            except SecurityConfigError as exc:
                raise ConsumerConfigError(str(exc)) from None
        for name in values:
            if name in _REFUSED:
                raise ConsumerConfigError(f"{name} is not supported: {_REFUSED[name]}")
            if name not in _KNOWN and name not in security_props:
                raise ConsumerConfigError(f"{name} is not a known consumer config")

        def integer(name: str, default: int, minimum: int, maximum: int = (1 << 31) - 1) -> int:
            if name not in values:
                return default
            try:
                value = int(values[name])
            except ValueError:
                raise ConsumerConfigError(
                    f"Invalid value {values[name]} for configuration {name}: Not a number"
                ) from None
            if not minimum <= value <= maximum:
                raise ConsumerConfigError(
                    f"Invalid value {value} for configuration {name}: "
                    f"Value must be in [{minimum}, {maximum}]"
                )
            return value

        def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
            value = values.get(name, default).lower()
            if value not in allowed:
                raise ConsumerConfigError(
                    f"Invalid value {values[name]} for configuration {name}: "
                    f"String must be one of: {', '.join(allowed)}"
                )
            return value

        def boolean(name: str, default: bool) -> bool:
            if name not in values:
                return default
            value = values[name].lower()
            if value not in ("true", "false"):
                raise ConsumerConfigError(
                    f"Invalid value {values[name]} for configuration {name}: "
                    "Expected value to be either true or false"
                )
            return value == "true"

        bootstrap = values.get("bootstrap.servers", "")
        if not bootstrap:
            raise ConsumerConfigError("bootstrap.servers must name at least one node")
        group_id = values.get("group.id") or None
        if group_id is not None and len(group_id) > 255:
            raise ConsumerConfigError("group.id must be at most 255 characters")
        fetch_min_bytes = integer("fetch.min.bytes", 1, 1)
        if fetch_min_bytes != 1:
            raise ConsumerConfigError(
                "fetch.min.bytes other than 1 is not supported: a node answers a fetch as soon "
                "as one record is there"
            )
        protocol = choice("group.protocol", "consumer", ("consumer", "classic"))
        if protocol == "classic":
            raise ConsumerConfigError(
                "group.protocol=classic is not supported: groups use Kafka 4's consumer protocol"
            )
        session = integer("session.timeout.ms", 0, 1) if "session.timeout.ms" in values else None
        heartbeat = (
            integer("heartbeat.interval.ms", 0, 1) if "heartbeat.interval.ms" in values else None
        )
        assignor = (
            choice("group.remote.assignor", "uniform", ASSIGNORS)
            if values.get("group.remote.assignor")
            else None
        )
        auto_commit = boolean("enable.auto.commit", group_id is not None)
        if auto_commit and group_id is None:
            raise ConsumerConfigError(
                "enable.auto.commit cannot be true without a group.id: there is no group to "
                "commit to"
            )
        return cls(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=values.get("client.id") or "kraft-consumer",
            auto_offset_reset=choice("auto.offset.reset", "latest", OFFSET_RESETS),
            enable_auto_commit=auto_commit,
            auto_commit_interval_ms=integer("auto.commit.interval.ms", 5000, 0),
            max_poll_records=integer("max.poll.records", 500, 1),
            max_poll_interval_ms=integer("max.poll.interval.ms", 300_000, 1),
            fetch_max_wait_ms=integer("fetch.max.wait.ms", 500, 0, 60_000),
            fetch_min_bytes=fetch_min_bytes,
            max_partition_fetch_bytes=integer(
                "max.partition.fetch.bytes", 1024 * 1024, 1, 64 * 1024 * 1024
            ),
            session_timeout_ms=session,
            heartbeat_interval_ms=heartbeat,
            group_remote_assignor=assignor,
            group_protocol=protocol,
            isolation_level=choice("isolation.level", "read_uncommitted", ISOLATION_LEVELS),
            request_timeout_ms=integer("request.timeout.ms", 30_000, 1),
            retry_backoff_ms=integer("retry.backoff.ms", 100, 0),
            security=security,
        )


# Every setting from_properties reads (besides security ones).
_KNOWN = frozenset(
    {
        "bootstrap.servers",
        "group.id",
        "client.id",
        "auto.offset.reset",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "max.poll.records",
        "max.poll.interval.ms",
        "fetch.max.wait.ms",
        "fetch.min.bytes",
        "max.partition.fetch.bytes",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "group.remote.assignor",
        "group.protocol",
        "isolation.level",
        "request.timeout.ms",
        "retry.backoff.ms",
    }
)
