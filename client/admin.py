"""The admin client: topics, configs, cluster, offsets, ACLs and consumer groups, with retries.

Theory of operation:

- :class:`AsyncAdmin` wraps one :class:`client.client.KraftClient` (one aiohttp session). Every
  node answers every admin request: a node that is not the partition's leader or the group's
  coordinator answers 307 and the client follows it; a node that cannot be reached is skipped
  for the next bootstrap address.
- A call that fails with a *retriable* error (no leader yet, the group's coordinator moving or
  loading, not enough replicas, a busy node) or gets no HTTP answer at all (every bootstrap node
  down, the coordinator killed mid-call) is tried again after a backoff that doubles from
  ``retry.backoff.ms`` to ``retry.backoff.max.ms`` (or the server's ``Retry-After``, capped),
  until ``default.api.timeout.ms`` (Kafka's name; 60 s) has passed since the call began. Then
  the last error is raised as is. A non-retriable error (unknown topic, bad config, a group
  that is not empty) is raised at once.
- Every admin call here is safe to send twice (a read, a set to a value, a delete whose second
  try finds nothing) except ``create_topic`` and ``create_acls``: a create whose answer was lost
  may report TOPIC_ALREADY_EXISTS when tried again, as Kafka's admin client does.
- :class:`Admin` is the synchronous twin for scripts: the same methods, run on a
  :class:`client.sync.LoopThread`.

Consumer-group calls follow docs/groups.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

from client import limits
from client.client import KraftClient, TransportError
from client.protocol import ERROR_KINDS, UNKNOWN_SERVER_ERROR, ApiError, ErrorKind
from client.security import ClientSecurity
from client.sync import LoopThread

T = TypeVar("T")

# Kafka's admin defaults (AdminClientConfig): the whole of one call, retries included, and the
# backoff between tries, growing exponentially up to its cap.
DEFAULT_API_TIMEOUT_MS = 60_000
RETRY_BACKOFF_MS = 100
RETRY_BACKOFF_MAX_MS = 1_000

# Kafka's sentinel timestamps for ListOffsets (ListOffsetsRequest.LATEST/EARLIEST_TIMESTAMP).
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2


@dataclass(frozen=True)
class TopicPartition:
    topic: str
    partition: int

    def __str__(self) -> str:
        # Kafka's TopicPartition.toString, which its tools print in messages.
        return f"{self.topic}-{self.partition}"


def _entry_error(name: str, message: str) -> ApiError:
    """The ApiError of one entry of a batch answer, which carries a name and no code."""
    for kind in ERROR_KINDS.values():
        if kind.name == name:
            return ApiError(kind, message)
    return ApiError(ErrorKind(UNKNOWN_SERVER_ERROR.code, name), message)


def _group_path(group: str, *rest: str) -> str:
    # The contract: a group id is percent-quoted whole, so '/' or '?' stay inside the name.
    return "/".join(["/v1/groups", quote(group, safe=""), *rest])


def offset_spec_timestamp(spec: str | int) -> int:
    """Kafka's OffsetSpec as a ListOffsets timestamp: ``earliest`` (-2), ``latest`` (-1), or a
    timestamp in ms (>= 0); raises ValueError for anything else."""
    if isinstance(spec, str):
        word = spec.strip().lower()
        if word == "earliest":
            return EARLIEST_TIMESTAMP
        if word == "latest":
            return LATEST_TIMESTAMP
        try:
            spec = int(word)
        except ValueError:
            raise ValueError(
                f"offset spec must be earliest, latest or a timestamp in ms, not {spec!r}"
            ) from None
    if spec < EARLIEST_TIMESTAMP:
        raise ValueError(f"offset spec must be -2, -1 or a timestamp >= 0, not {spec}")
    return spec


# Kafka's admin client properties a --command-config file may set, and the AsyncAdmin
# argument each becomes.
ADMIN_PROPERTIES = {
    "default.api.timeout.ms": "default_api_timeout_ms",
    "request.timeout.ms": "request_timeout_ms",
    "retry.backoff.ms": "retry_backoff_ms",
    "retry.backoff.max.ms": "retry_backoff_max_ms",
}


def admin_options(props: dict[str, str]) -> dict[str, int]:
    """AsyncAdmin's keyword arguments from Kafka's admin properties (others are ignored, as
    Kafka ignores unknown ones); ValueError naming a setting that is not a number."""
    out: dict[str, int] = {}
    for name, argument in ADMIN_PROPERTIES.items():
        if name in props:
            text = props[name].strip()
            if not text.isascii() or not text.isdigit():
                raise ValueError(f"Invalid value {text} for configuration {name}: Not a number")
            out[argument] = int(text)
    return out


def backoff_s(attempt: int, error: BaseException, backoff_ms: int, backoff_max_ms: int) -> float:
    """How long to wait before try ``attempt + 1``: exponential from ``backoff_ms`` to
    ``backoff_max_ms``, or the server's Retry-After when it sent one (capped)."""
    if isinstance(error, ApiError):
        retry_after = error.extra.get("retry_after_s")
        if isinstance(retry_after, (int, float)) and retry_after >= 0:
            return float(min(retry_after, limits.RETRY_AFTER_MAX_S))
    return float(min(backoff_ms * (2 ** min(attempt, 16)), backoff_max_ms)) / 1000


def is_retriable(error: BaseException) -> bool:
    """A retriable ApiError, or no HTTP answer at all (the node may be back or replaced)."""
    if isinstance(error, TransportError):
        return True
    return isinstance(error, ApiError) and error.retriable


class AsyncAdmin:
    """Kafka's Admin client over the HTTP API, for asyncio code (``async with``)."""

    def __init__(
        self,
        bootstrap: str | list[str],
        *,
        security: ClientSecurity | None = None,
        default_api_timeout_ms: int = DEFAULT_API_TIMEOUT_MS,
        request_timeout_ms: int = int(limits.REQUEST_TIMEOUT_S * 1000),
        retry_backoff_ms: int = RETRY_BACKOFF_MS,
        retry_backoff_max_ms: int = RETRY_BACKOFF_MAX_MS,
    ) -> None:
        if default_api_timeout_ms <= 0 or request_timeout_ms <= 0:
            raise ValueError("default.api.timeout.ms and request.timeout.ms must be positive")
        if retry_backoff_ms < 0 or retry_backoff_max_ms < retry_backoff_ms:
            raise ValueError("retry.backoff.ms must be >= 0 and <= retry.backoff.max.ms")
        self._client = KraftClient(
            bootstrap, timeout_s=request_timeout_ms / 1000, security=security
        )
        self._deadline_s = default_api_timeout_ms / 1000
        self._backoff_ms = retry_backoff_ms
        self._backoff_max_ms = retry_backoff_max_ms
        self._opened = False

    async def __aenter__(self) -> AsyncAdmin:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        if not self._opened:
            await self._client.__aenter__()
            self._opened = True

    async def close(self) -> None:
        if self._opened:
            await self._client.close()
            self._opened = False

    @property
    def client(self) -> KraftClient:
        """The underlying HTTP client (for calls this class does not wrap)."""
        return self._client

    async def _retrying(self, call: Callable[[KraftClient], Awaitable[T]]) -> T:
        """``call`` tried until it succeeds, fails for good, or the api timeout has passed."""
        if not self._opened:
            raise RuntimeError("AsyncAdmin is not open: use it with 'async with'")
        deadline = time.monotonic() + self._deadline_s
        attempt = 0
        while True:
            try:
                return await call(self._client)
            except (ApiError, TransportError) as exc:
                if not is_retriable(exc):
                    raise
                pause = backoff_s(attempt, exc, self._backoff_ms, self._backoff_max_ms)
                if time.monotonic() + pause >= deadline:
                    raise
                attempt += 1
                await asyncio.sleep(pause)

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        async def call(c: KraftClient) -> dict[str, Any]:
            return await c._dict("GET", path, params=params)

        return await self._retrying(call)

    # -- cluster and topics --------------------------------------------------------------------

    async def describe_cluster(self) -> dict[str, Any]:
        """``{"cluster_id", "controller_id", "brokers": [{"id", "url", "fenced", "alive"}]}``."""
        return await self._retrying(lambda c: c.cluster())

    async def unregister_broker(self, broker_id: int) -> None:
        """Kafka's unregisterBroker: removes broker ``broker_id``'s registration.
        BROKER_ID_NOT_REGISTERED when no broker has that id (also when a lost answer made
        this call try again after it had succeeded); INVALID_REQUEST while a partition lists
        the broker among its replicas (move them first). A broker process still running
        registers again on its next heartbeat: stop it first."""

        async def call(c: KraftClient) -> None:
            await c._request("DELETE", f"/v1/brokers/{int(broker_id)}")

        await self._retrying(call)

    async def list_topics(self, *, include_internal: bool = True) -> list[str]:
        """Topic names, sorted; ``__consumer_offsets`` left out unless ``include_internal``."""
        topics = await self._retrying(lambda c: c.list_topics())
        names = sorted(str(t.get("name")) for t in topics)
        if not include_internal:
            names = [n for n in names if not n.startswith("__")]
        return names

    async def describe_topic(self, topic: str) -> dict[str, Any]:
        """The topic's id, non-default configs and partitions (leader, replicas, isr, offsets);
        UNKNOWN_TOPIC_OR_PARTITION when it does not exist."""
        return await self._retrying(lambda c: c.describe_topic(topic))

    async def describe_topics(self, topics: list[str]) -> dict[str, dict[str, Any]]:
        """Descriptions of several topics by name, fetched concurrently; the first failure
        (an unknown topic, say) is raised."""
        found = await asyncio.gather(*(self.describe_topic(t) for t in topics))
        return dict(zip(topics, found, strict=True))

    async def create_topic(
        self,
        topic: str,
        partitions: int | None = None,
        replication_factor: int | None = None,
        configs: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Creates a topic (None: the cluster's default for that setting)."""
        return await self._retrying(
            lambda c: c.create_topic(topic, partitions, replication_factor, configs)
        )

    async def delete_topic(self, topic: str) -> None:
        await self._retrying(lambda c: c.delete_topic(topic))

    async def create_partitions(self, topic: str, total_count: int) -> dict[str, Any]:
        """Grows ``topic`` to ``total_count`` partitions (Kafka's createPartitions)."""
        return await self._retrying(lambda c: c.add_partitions(topic, total_count))

    # -- partition reassignments (Kafka's KIP-455) -----------------------------------------------

    async def alter_partition_reassignments(
        self, moves: Mapping[tuple[str, int], Sequence[int] | None]
    ) -> dict[tuple[str, int], ApiError | None]:
        """Kafka's alterPartitionReassignments: each ``(topic, partition)`` moves to its new
        replica list (the first is the preferred leader), or None cancels its move. The whole
        request is checked first: a bad entry (unknown topic or partition, an empty list, a
        repeated or unregistered broker) raises its ApiError and nothing changes. Otherwise
        each partition maps to None (done) or its own error (NO_REASSIGNMENT_IN_PROGRESS: a
        cancel of a partition that is not moving; a cancel tried again after a lost answer
        reports it too)."""
        if not moves:
            raise ValueError("no partitions to reassign")
        body = {
            "partitions": [
                {
                    "topic": topic,
                    "partition": partition,
                    "replicas": None if replicas is None else [int(r) for r in replicas],
                }
                for (topic, partition), replicas in moves.items()
            ]
        }

        async def call(c: KraftClient) -> dict[str, Any]:
            return await c._dict("POST", "/v1/reassignments", json=body)

        answer = await self._retrying(call)
        out: dict[tuple[str, int], ApiError | None] = {key: None for key in moves}
        for item in answer.get("partitions") or []:
            if not isinstance(item, dict) or not isinstance(item.get("error"), str):
                continue
            key = (str(item.get("topic")), int(item.get("partition", -1)))
            out[key] = _entry_error(item["error"], str(item.get("message", "")))
        return out

    async def list_partition_reassignments(self, topic: str | None = None) -> list[dict[str, Any]]:
        """Kafka's listPartitionReassignments: the partitions that are moving (of ``topic``
        only, if given), sorted by topic and partition: ``[{"topic", "partition",
        "replicas", "adding_replicas", "removing_replicas"}]`` where ``replicas`` is the
        merged list (the target, then the replicas being removed)."""
        body = await self._get("/v1/reassignments", {"topic": topic} if topic else None)
        found = body.get("reassignments", [])
        return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []

    # -- configs --------------------------------------------------------------------------------

    async def describe_topic_configs(self, topic: str) -> dict[str, Any]:
        """``{"configs": every effective config, "overrides": the topic's own}``."""
        return await self._get("/v1/topics/" + quote(topic, safe="") + "/configs")

    async def describe_topic_config_entries(self, topic: str) -> list[dict[str, Any]]:
        """Every config of the topic with Kafka's source and synonyms: ``[{"name", "value",
        "source", "sensitive", "read_only", "synonyms": [{"name", "value", "source"}]}]``."""
        body = await self._get("/v1/topics/" + quote(topic, safe="") + "/configs/entries")
        configs = body.get("configs", [])
        return [c for c in configs if isinstance(c, dict)] if isinstance(configs, list) else []

    async def incremental_alter_topic_configs(
        self, topic: str, set_configs: dict[str, str], delete_configs: list[str] | tuple[str, ...]
    ) -> dict[str, Any]:
        """Kafka's incrementalAlterConfigs on a topic: SET each of ``set_configs``, DELETE each
        of ``delete_configs`` (back to the default), in one metadata write; returns the
        topic's overrides afterwards."""
        body: dict[str, str | None] = dict(set_configs)
        body.update({name: None for name in delete_configs})
        if not body:
            raise ValueError("nothing to alter: give configs to set or to delete")

        async def call(c: KraftClient) -> dict[str, Any]:
            return await c._dict(
                "PUT", "/v1/topics/" + quote(topic, safe="") + "/configs", json={"configs": body}
            )

        return await self._retrying(call)

    async def describe_broker_configs(self, broker_id: int) -> list[dict[str, Any]]:
        """Every config of a broker (asked of that broker) with Kafka's source and synonyms,
        shaped as :meth:`describe_topic_config_entries`'s."""
        body = await self._get(f"/v1/brokers/{int(broker_id)}/configs")
        configs = body.get("configs", [])
        return [c for c in configs if isinstance(c, dict)] if isinstance(configs, list) else []

    async def incremental_alter_broker_configs(
        self,
        broker_id: int,
        set_configs: dict[str, str],
        delete_configs: list[str] | tuple[str, ...],
    ) -> dict[str, Any]:
        """Kafka's incrementalAlterConfigs on a broker's dynamic configs (only the two
        replication throttle rates are alterable): SET each of ``set_configs``, DELETE each of
        ``delete_configs``, in one metadata write; returns the broker's dynamic configs
        afterwards (``{"configs": {name: value}}``)."""
        body: dict[str, str | None] = dict(set_configs)
        body.update({name: None for name in delete_configs})
        if not body:
            raise ValueError("nothing to alter: give configs to set or to delete")

        async def call(c: KraftClient) -> dict[str, Any]:
            return await c._dict(
                "PUT", f"/v1/brokers/{int(broker_id)}/configs", json={"configs": body}
            )

        return await self._retrying(call)

    # -- offsets --------------------------------------------------------------------------------

    async def list_offsets(self, topic: str, partition: int, spec: str | int) -> int | None:
        """Kafka's listOffsets for one partition: the earliest offset, the latest (the high
        watermark), or the first offset whose timestamp is at or after ``spec`` ms (None when
        there is none)."""
        timestamp = offset_spec_timestamp(spec)
        body = await self._retrying(lambda c: c.offsets(topic, partition, timestamp))
        offset = body.get("offset")
        return offset if isinstance(offset, int) else None

    async def list_offsets_many(
        self, partitions: list[TopicPartition], spec: str | int
    ) -> dict[TopicPartition, int | None]:
        """:meth:`list_offsets` for several partitions, concurrently."""
        found = await asyncio.gather(
            *(self.list_offsets(tp.topic, tp.partition, spec) for tp in partitions)
        )
        return dict(zip(partitions, found, strict=True))

    # -- ACLs -----------------------------------------------------------------------------------

    async def describe_acls(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return await self._retrying(lambda c: c.describe_acls(filters))

    async def create_acls(self, acls: list[dict[str, Any]]) -> dict[str, Any]:
        return await self._retrying(lambda c: c.create_acls(acls))

    async def delete_acls(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return await self._retrying(lambda c: c.delete_acls(filters))

    # -- consumer groups ------------------------------------------------------------------------

    async def list_groups(self) -> list[dict[str, Any]]:
        """Every group of the cluster, sorted by name: ``[{"group", "state", "type",
        "members", "lag", "topics"}]`` (``lag``: summed over the committed offsets, None when
        unknown; ``topics``: ``[{"topic", "lag"}]``)."""
        body = await self._get("/v1/groups")
        groups = body.get("groups", [])
        return [g for g in groups if isinstance(g, dict)] if isinstance(groups, list) else []

    async def describe_group(self, group: str) -> dict[str, Any]:
        """State, members and offsets of one group (the contract's ``GET /v1/groups/{g}``);
        GROUP_ID_NOT_FOUND for a group that does not exist."""
        return await self._get(_group_path(group))

    async def list_group_offsets(
        self, group: str, topic: str | None = None
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets (the next offset to read), by partition."""
        body = await self._get(_group_path(group, "offsets"), {"topic": topic})
        out: dict[TopicPartition, int] = {}
        for item in body.get("offsets") or []:
            if isinstance(item, dict) and isinstance(item.get("offset"), int):
                out[TopicPartition(str(item["topic"]), int(item["partition"]))] = item["offset"]
        return out

    async def alter_group_offsets(
        self, group: str, offsets: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """Commits ``offsets`` for the group without a member (Kafka's
        alterConsumerGroupOffsets): the group must have no members (else UNKNOWN_MEMBER_ID);
        all or nothing. Returns what was stored."""
        if not offsets:
            return {}
        body = {
            "offsets": [
                {"topic": tp.topic, "partition": tp.partition, "offset": offset}
                for tp, offset in sorted(
                    offsets.items(), key=lambda e: (e[0].topic, e[0].partition)
                )
            ]
        }

        async def call(c: KraftClient) -> dict[str, Any]:
            return await c._dict("POST", _group_path(group, "offsets"), json=body)

        answer = await self._retrying(call)
        stored: dict[TopicPartition, int] = {}
        for item in answer.get("offsets") or []:
            if isinstance(item, dict) and isinstance(item.get("offset"), int):
                stored[TopicPartition(str(item["topic"]), int(item["partition"]))] = item["offset"]
        return stored

    async def delete_group(self, group: str) -> None:
        """Deletes a group and its offsets: NON_EMPTY_GROUP while it has members,
        GROUP_ID_NOT_FOUND when there is no such group."""

        async def call(c: KraftClient) -> None:
            await c._request("DELETE", _group_path(group))

        await self._retrying(call)


class Admin:
    """The synchronous :class:`AsyncAdmin`, for scripts: same methods, blocking."""

    def __init__(self, bootstrap: str | list[str], **kwargs: Any) -> None:
        # Built first: a bad argument raises before a thread is started.
        self._admin = AsyncAdmin(bootstrap, **kwargs)
        self._thread = LoopThread("kraft-admin")
        try:
            self._thread.run(self._admin.open())
        except BaseException:
            self._thread.stop()
            raise

    def __enter__(self) -> Admin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the session and stops the loop thread; calls after it raise RuntimeError."""
        try:
            self._thread.run(self._admin.close())
        except RuntimeError:
            return  # closed already
        self._thread.stop()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._thread.run(coro)

    def describe_cluster(self) -> dict[str, Any]:
        return self._run(self._admin.describe_cluster())

    def unregister_broker(self, broker_id: int) -> None:
        self._run(self._admin.unregister_broker(broker_id))

    def list_topics(self, *, include_internal: bool = True) -> list[str]:
        return self._run(self._admin.list_topics(include_internal=include_internal))

    def describe_topic(self, topic: str) -> dict[str, Any]:
        return self._run(self._admin.describe_topic(topic))

    def describe_topics(self, topics: list[str]) -> dict[str, dict[str, Any]]:
        return self._run(self._admin.describe_topics(topics))

    def create_topic(
        self,
        topic: str,
        partitions: int | None = None,
        replication_factor: int | None = None,
        configs: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return self._run(self._admin.create_topic(topic, partitions, replication_factor, configs))

    def delete_topic(self, topic: str) -> None:
        self._run(self._admin.delete_topic(topic))

    def create_partitions(self, topic: str, total_count: int) -> dict[str, Any]:
        return self._run(self._admin.create_partitions(topic, total_count))

    def alter_partition_reassignments(
        self, moves: Mapping[tuple[str, int], Sequence[int] | None]
    ) -> dict[tuple[str, int], ApiError | None]:
        return self._run(self._admin.alter_partition_reassignments(moves))

    def list_partition_reassignments(self, topic: str | None = None) -> list[dict[str, Any]]:
        return self._run(self._admin.list_partition_reassignments(topic))

    def describe_topic_configs(self, topic: str) -> dict[str, Any]:
        return self._run(self._admin.describe_topic_configs(topic))

    def incremental_alter_topic_configs(
        self, topic: str, set_configs: dict[str, str], delete_configs: list[str] | tuple[str, ...]
    ) -> dict[str, Any]:
        return self._run(
            self._admin.incremental_alter_topic_configs(topic, set_configs, delete_configs)
        )

    def describe_topic_config_entries(self, topic: str) -> list[dict[str, Any]]:
        return self._run(self._admin.describe_topic_config_entries(topic))

    def describe_broker_configs(self, broker_id: int) -> list[dict[str, Any]]:
        return self._run(self._admin.describe_broker_configs(broker_id))

    def incremental_alter_broker_configs(
        self,
        broker_id: int,
        set_configs: dict[str, str],
        delete_configs: list[str] | tuple[str, ...],
    ) -> dict[str, Any]:
        return self._run(
            self._admin.incremental_alter_broker_configs(broker_id, set_configs, delete_configs)
        )

    def list_offsets(self, topic: str, partition: int, spec: str | int) -> int | None:
        return self._run(self._admin.list_offsets(topic, partition, spec))

    def list_offsets_many(
        self, partitions: list[TopicPartition], spec: str | int
    ) -> dict[TopicPartition, int | None]:
        return self._run(self._admin.list_offsets_many(partitions, spec))

    def describe_acls(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return self._run(self._admin.describe_acls(filters))

    def create_acls(self, acls: list[dict[str, Any]]) -> dict[str, Any]:
        return self._run(self._admin.create_acls(acls))

    def delete_acls(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return self._run(self._admin.delete_acls(filters))

    def list_groups(self) -> list[dict[str, Any]]:
        return self._run(self._admin.list_groups())

    def describe_group(self, group: str) -> dict[str, Any]:
        return self._run(self._admin.describe_group(group))

    def list_group_offsets(self, group: str, topic: str | None = None) -> dict[TopicPartition, int]:
        return self._run(self._admin.list_group_offsets(group, topic))

    def alter_group_offsets(
        self, group: str, offsets: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        return self._run(self._admin.alter_group_offsets(group, offsets))

    def delete_group(self, group: str) -> None:
        self._run(self._admin.delete_group(group))
