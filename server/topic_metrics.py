"""Per-topic traffic counters of one node: bytes and records in (appended by this node as
leader, for producers and the group coordinator) and out (answered to fetching clients).

Plain integers, added to once per request and partition (a batch, never a record), and read
by ``server/metrics.py`` when /metrics is scraped: the produce path pays two additions, not a
Prometheus child's lock. Replication traffic (a follower's appends, a leader's answers to its
followers) is not counted here.

No Prometheus here: :class:`~server.partition.Partition` holds its topic's
:class:`TopicTraffic`, and the partition core must stay importable without the exporter.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

from storage.log import AppendInfo


class TopicTraffic:
    """One topic's counters since the node started."""

    __slots__ = ("bytes_in", "bytes_out", "records_in", "records_out")

    def __init__(self) -> None:
        self.bytes_in = 0
        self.records_in = 0
        self.bytes_out = 0
        self.records_out = 0

    def appended(self, infos: Iterable[AppendInfo]) -> None:
        """A leader append's batches; a duplicate (a retried batch, 0 bytes) adds nothing."""
        for info in infos:
            if info.size_bytes > 0:
                self.bytes_in += info.size_bytes
                self.records_in += info.last_offset - info.first_offset + 1

    def sent(self, records: int, size_bytes: int) -> None:
        """An answer to a fetching client: its records and the bytes of its body."""
        self.records_out += records
        self.bytes_out += size_bytes

    def copy(self) -> TopicTraffic:
        """The counts as they are now (for a scrape made off the event loop)."""
        copied = TopicTraffic()
        copied.bytes_in, copied.records_in = self.bytes_in, self.records_in
        copied.bytes_out, copied.records_out = self.bytes_out, self.records_out
        return copied


class TrafficTable:
    """Every topic's :class:`TopicTraffic`, made on first use and kept while the topic exists
    (:meth:`keep_only`, at each scrape, drops deleted topics' counters)."""

    def __init__(self) -> None:
        self.topics: dict[str, TopicTraffic] = {}

    def keep_only(self, existing: Container[str]) -> None:
        """Forgets the counters of topics not in ``existing`` (the metadata's topics): a
        deleted topic's series must not stay in every scrape until the node restarts. A topic
        made again under the name starts from 0, a counter reset to Prometheus."""
        gone = [name for name in self.topics if name not in existing]
        for name in gone:
            del self.topics[name]

    def topic(self, name: str) -> TopicTraffic:
        traffic = self.topics.get(name)
        if traffic is None:
            traffic = self.topics[name] = TopicTraffic()
        return traffic
