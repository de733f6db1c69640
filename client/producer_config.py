"""The producer's settings: Kafka's producer config names, defaults and checks.

:meth:`ProducerConfig.from_properties` reads a dict of Kafka producer properties (strings, as
in a ``producer.properties`` file, or Python values) and refuses, by name and with Kafka's
ConfigException wording, an unknown property, a value of the wrong type or range, and the
combinations Kafka refuses (an explicit ``enable.idempotence=true`` with ``acks`` other than
``all``, ``retries=0`` or more than 5 requests in flight). As in Kafka since 3.2, idempotence
that was *not* asked for explicitly is turned off quietly by such settings instead.

``compression.type`` is one of Kafka's names (none, gzip, snappy, lz4, zstd; case matters, as
Kafka's ``ValidString`` checks it), with Kafka's levels ``compression.gzip.level`` (-1 or
1..9), ``compression.lz4.level`` (1..17) and ``compression.zstd.level`` (-131072..22) and
their defaults; the ranges and codec ids are storage/compression.py's, the code that also
writes the batches (client/batches.py).

Pure: no I/O (the security properties are checked by ClientSecurity, which reads no file
either).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from client.client import parse_bootstrap
from client.security import ClientSecurity, SecurityConfigError
from storage import compression

JAVA_INT_MAX = 2**31 - 1
JAVA_LONG_MAX = 2**63 - 1

# Kafka's serializers that match what the producer does anyway (str -> UTF-8, bytes as they
# are): accepted so a Java config file can be used unchanged. Any other class is refused.
_SERIALIZERS = frozenset(
    {
        "org.apache.kafka.common.serialization.StringSerializer",
        "org.apache.kafka.common.serialization.ByteArraySerializer",
    }
)


# Kafka's CompressionType names, in its order (the order its message lists them in).
COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")
assert set(COMPRESSION_TYPES) == set(compression.CODEC_IDS)


class ConfigException(ValueError):
    """A producer setting that cannot be used (Kafka's ConfigException)."""


@dataclass(frozen=True)
class ProducerConfig:
    """Kafka's producer settings that this producer honours (names: the field's, with '.')."""

    bootstrap_servers: str
    client_id: str = ""
    acks: str = "all"  # "all", "1" or "0"
    linger_ms: int = 5  # Kafka 4's default
    batch_size: int = 16384  # bytes, as Kafka counts a record in the v2 batch format
    buffer_memory: int = 32 * 1024 * 1024
    max_block_ms: int = 60_000
    enable_idempotence: bool = True
    retries: int = JAVA_INT_MAX
    retry_backoff_ms: int = 100
    retry_backoff_max_ms: int = 1000
    delivery_timeout_ms: int = 120_000
    request_timeout_ms: int = 30_000
    max_request_size: int = 1024 * 1024
    # Kafka's default is 5 requests per broker connection, each carrying many partitions;
    # here a request carries one partition, and one in flight per partition lets its ready
    # batches gather into the next request: measured on 3 nodes, acks=all, 100-byte records,
    # 96,500 records/s with 1 against 66,700 with 2 and 36,500 with 5 (small requests, each
    # costing the leader and both followers an append, an fsync and a fetch round).
    max_in_flight_requests_per_connection: int = 1
    metadata_max_age_ms: int = 300_000
    partitioner_ignore_keys: bool = False
    partitioner_adaptive_partitioning_enable: bool = True
    compression_type: str = "none"
    compression_gzip_level: int = compression.GZIP_LEVEL_DEFAULT
    compression_lz4_level: int = compression.LZ4_LEVEL_DEFAULT
    compression_zstd_level: int = compression.ZSTD_LEVEL_DEFAULT
    security: ClientSecurity = field(default_factory=ClientSecurity)

    @classmethod
    def from_properties(cls, props: Mapping[str, Any], **overrides: Any) -> ProducerConfig:
        """The config of Kafka producer properties (``{"linger.ms": "5", "acks": "all"}``),
        then ``overrides`` by field name (``linger_ms=5``); raises ConfigException."""
        values: dict[str, Any] = {}
        security_props: dict[str, str] = {}
        for name, raw in props.items():
            if name.startswith(("ssl.", "sasl.")) or name == "security.protocol":
                security_props[name] = str(raw)
                continue
            if name in ("key.serializer", "value.serializer"):
                if str(raw) not in _SERIALIZERS:
                    raise ConfigException(
                        f"Invalid value {raw} for configuration {name}: only StringSerializer "
                        "and ByteArraySerializer are supported (values are str or bytes)"
                    )
                continue
            parse = _PARSERS.get(name)
            if parse is None:
                raise ConfigException(f"Unknown producer config: {name}")
            values[name.replace(".", "_")] = parse(name, raw)
        explicit_idempotence = "enable.idempotence" in props or "enable_idempotence" in overrides
        for name, value in overrides.items():
            if name not in _FIELDS:
                raise ConfigException(f"Unknown producer config: {name}")
            values[name] = value
        if security_props and "security" not in overrides:
            try:
                values["security"] = ClientSecurity.from_properties(
                    security_props, "producer config"
                )
            except SecurityConfigError as exc:
                raise ConfigException(str(exc)) from None
        if "bootstrap_servers" not in values:
            raise ConfigException(
                'Missing required configuration "bootstrap.servers" which has no default value.'
            )
        config = cls(**values)
        return config._checked(explicit_idempotence)

    @property
    def codec(self) -> int:
        """The codec id of ``compression.type`` (storage/compression.py; 0: none)."""
        return compression.CODEC_IDS[self.compression_type]

    @property
    def compression_level(self) -> int | None:
        """The level of ``compression.type``'s codec (None: snappy and none have none)."""
        return {
            compression.GZIP: self.compression_gzip_level,
            compression.LZ4: self.compression_lz4_level,
            compression.ZSTD: self.compression_zstd_level,
        }.get(self.codec)

    def _checked(self, explicit_idempotence: bool) -> ProducerConfig:
        try:
            parse_bootstrap(self.bootstrap_servers)
        except ValueError as exc:
            raise ConfigException(
                f"Invalid url in bootstrap.servers: {self.bootstrap_servers} ({exc})"
            ) from None
        if self.acks not in ("all", "1", "0"):
            raise ConfigException(
                f"Invalid value {self.acks} for configuration acks: "
                "String must be one of: all, -1, 0, 1"
            )
        # Checked here too: a field given by name (an override) skips the property parsers.
        _compression_type("compression.type", self.compression_type)
        _gzip_level("compression.gzip.level", self.compression_gzip_level)
        for name, level, (low, high) in (
            ("compression.lz4.level", self.compression_lz4_level, _LZ4_RANGE),
            ("compression.zstd.level", self.compression_zstd_level, _ZSTD_RANGE),
        ):
            _int(low, high, "INT")(name, level)
        config = self
        conflicts = []
        if self.acks != "all":
            conflicts.append(
                "Must set acks to all in order to use the idempotent producer. "
                "Otherwise we cannot guarantee idempotence."
            )
        if self.retries == 0:
            conflicts.append("Must set retries to non-zero when using the idempotent producer.")
        if self.max_in_flight_requests_per_connection > 5:
            conflicts.append(
                "Must set max.in.flight.requests.per.connection to at most 5 when using the "
                "idempotent producer."
            )
        if self.enable_idempotence and conflicts:
            if explicit_idempotence:
                raise ConfigException(conflicts[0])
            config = replace(config, enable_idempotence=False)
        if self.delivery_timeout_ms < self.linger_ms + self.request_timeout_ms:
            raise ConfigException(
                "delivery.timeout.ms should be equal to or larger than linger.ms + "
                "request.timeout.ms"
            )
        if self.retry_backoff_max_ms < self.retry_backoff_ms:
            # Kafka takes the larger as the cap rather than refusing.
            config = replace(config, retry_backoff_max_ms=self.retry_backoff_ms)
        return config


def _int(low: int, high: int, kind: str | None = None) -> Any:
    # Kafka's type in its "Not a number" message: LONG for a range beyond an int, unless said.
    kind = kind or ("INT" if high == JAVA_INT_MAX else "LONG")

    def parse(name: str, raw: Any) -> int:
        if isinstance(raw, bool):
            raise ConfigException(f"Invalid value {raw} for configuration {name}: Not a number")
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ConfigException(
                f"Invalid value {raw} for configuration {name}: Not a number of type {kind}"
            ) from None
        if value < low:
            raise ConfigException(
                f"Invalid value {value} for configuration {name}: Value must be at least {low}"
            )
        if value > high:
            raise ConfigException(
                f"Invalid value {value} for configuration {name}: Value must be no more than {high}"
            )
        return value

    return parse


def _bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in ("true", "false"):
        raise ConfigException(
            f"Invalid value {raw} for configuration {name}: Expected value to be either true "
            "or false"
        )
    return text == "true"


def _acks(name: str, raw: Any) -> str:
    text = str(raw).strip().lower()
    if text == "-1":
        return "all"
    if text not in ("all", "0", "1"):
        raise ConfigException(
            f"Invalid value {raw} for configuration {name}: String must be one of: all, -1, 0, 1"
        )
    return text


def _string(name: str, raw: Any) -> str:
    return str(raw).strip()


def _compression_type(name: str, raw: Any) -> str:
    # Kafka's ValidString: trimmed (as every STRING config is), then compared as it is.
    text = str(raw).strip()
    if text not in COMPRESSION_TYPES:
        raise ConfigException(
            f"Invalid value {raw} for configuration {name}: String must be one of: "
            + ", ".join(COMPRESSION_TYPES)
        )
    return text


def _gzip_level(name: str, raw: Any) -> int:
    # Kafka's CompressionType.GZIP.levelValidator: 1..9, or -1 (zlib's default, 6).
    level: int = _int(-(2**31), JAVA_INT_MAX)(name, raw)
    if compression.check_level(compression.GZIP, level) is not None:
        raise ConfigException(
            f"Invalid value {level} for configuration {name}: Value must be between "
            f"{compression.GZIP_LEVEL_MIN} and {compression.GZIP_LEVEL_MAX} or equal to "
            f"{compression.GZIP_LEVEL_DEFAULT}"
        )
    return level


_LZ4_RANGE = (compression.LZ4_LEVEL_MIN, compression.LZ4_LEVEL_MAX)
_ZSTD_RANGE = (compression.ZSTD_LEVEL_MIN, compression.ZSTD_LEVEL_MAX)


_PARSERS: dict[str, Any] = {
    "bootstrap.servers": _string,
    "client.id": _string,
    "acks": _acks,
    "linger.ms": _int(0, JAVA_LONG_MAX),
    "batch.size": _int(0, JAVA_INT_MAX),
    "buffer.memory": _int(0, JAVA_LONG_MAX),
    "max.block.ms": _int(0, JAVA_LONG_MAX),
    "enable.idempotence": _bool,
    "retries": _int(0, JAVA_INT_MAX),
    "retry.backoff.ms": _int(0, JAVA_LONG_MAX),
    "retry.backoff.max.ms": _int(0, JAVA_LONG_MAX),
    "delivery.timeout.ms": _int(0, JAVA_INT_MAX),
    "request.timeout.ms": _int(0, JAVA_INT_MAX),
    "max.request.size": _int(0, JAVA_INT_MAX),
    "max.in.flight.requests.per.connection": _int(1, JAVA_INT_MAX),
    "metadata.max.age.ms": _int(0, JAVA_LONG_MAX),
    "partitioner.ignore.keys": _bool,
    "partitioner.adaptive.partitioning.enable": _bool,
    "compression.type": _compression_type,
    "compression.gzip.level": _gzip_level,
    "compression.lz4.level": _int(*_LZ4_RANGE, "INT"),
    "compression.zstd.level": _int(*_ZSTD_RANGE, "INT"),
}
_FIELDS = frozenset(f.name for f in fields(ProducerConfig))
assert {name.replace(".", "_") for name in _PARSERS} <= _FIELDS

# The Kafka property names this producer takes (for tools that list them).
PROPERTY_NAMES = tuple(sorted([*_PARSERS, "key.serializer", "value.serializer"]))
