"""The producer's pure core: sizes as Kafka counts them, batching by bytes and linger, the
sticky partitioner, the retry backoff schedule, and the config's checks."""

from __future__ import annotations

import random
from typing import Any

import pytest

from client.accumulator import (
    CALLBACK,
    HEADERS,
    KEY,
    RECORD_BATCH_OVERHEAD,
    TIMESTAMP,
    VALUE,
    Accumulator,
    StickyPartitioner,
    backoff_ms,
    payload_size,
    record_size,
    varint_size,
)
from client.batches import NO_HEADERS, build
from client.producer_config import ConfigException, ProducerConfig
from client.record_values import as_bytes, parse_headers
from client.security import ClientSecurity
from storage.batch import NewRecord, build_batch, encode_varint

BS = {"bootstrap.servers": "127.0.0.1:9092"}


def _payload(record: NewRecord) -> int:
    return payload_size(
        None if record.key is None else len(record.key),
        None if record.value is None else len(record.value),
        record.headers,
    )


# -- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [0, 1, -1, 63, 64, -64, -65, 8191, 8192, 1 << 20, -(1 << 27), 1 << 40, -(1 << 62)]
)
def test_varint_size_is_the_length_of_the_zigzag_encoding(value: int) -> None:
    assert varint_size(value) == len(encode_varint(value))


@pytest.mark.parametrize(
    "records",
    [
        [NewRecord(None, b"x" * 100, 1_000)],
        [NewRecord(b"user1", b"login website", 1_000), NewRecord(None, None, 1_005)],
        [NewRecord(b"k", b"v" * 300, 1_000 + i * 70) for i in range(200)],
        [NewRecord(b"k", b"v", 5_000, (("trace", b"abc"), ("none", None), ("\u00e9", b"")))],
        [NewRecord(None, b"late", 10_000), NewRecord(None, b"early", 2_000)],
    ],
)
def test_batch_size_is_the_bytes_of_kafkas_v2_batch(records: list[NewRecord]) -> None:
    """Counted as the batch format counts it (storage/batch.py builds the real bytes)."""
    base = records[0].timestamp
    counted = RECORD_BATCH_OVERHEAD + sum(
        record_size(i, r.timestamp - base, _payload(r)) for i, r in enumerate(records)
    )
    assert counted == len(build_batch(records))


# -- batching by bytes and linger -------------------------------------------------------------


def _append(acc: Accumulator, partition: int, value_len: int, now_s: float) -> tuple[Any, bool]:
    _size, batch, news = acc.append(
        "t",
        partition,
        payload_size(None, value_len, ()),
        1_000,
        None,
        b"x" * value_len,
        NO_HEADERS,
        None,
        None,
        now_s,
    )
    return batch, news


def test_a_batch_counts_its_bytes_as_the_v2_format_has_them() -> None:
    records = [
        NewRecord(None if i % 3 else b"key-%d" % i, b"v" * (i * 37 % 300), 5_000 + i * i * 13)
        for i in range(150)
    ]
    acc = Accumulator(batch_size=1 << 20, linger_s=1.0)
    for record in records:
        acc.append(
            "t",
            0,
            _payload(record),
            record.timestamp,
            record.key,
            record.value,
            list(record.headers),
            None,
            None,
            0.0,
        )
    (batch,) = acc.queues[("t", 0)]
    assert batch.size == batch.wire_size == len(build_batch(records))
    built = build(batch.records, key=KEY, value=VALUE, headers=HEADERS, timestamp=TIMESTAMP)
    stored = build_batch(records)
    # All but the leader epoch (-1 from a producer; the leader writes its own).
    assert built[:12] + built[16:] == stored[:12] + stored[16:], "the storage format's bytes"


@pytest.mark.parametrize(
    ("count", "value_len", "step_ms"),
    [(300, 100, 0), (300, 100, 1), (120, 20, 300), (3000, 10, 0), (100, 8000, 5)],
)
def test_joined_batches_are_built_within_their_counted_bound(
    count: int, value_len: int, step_ms: int
) -> None:
    """Records joined behind another batch take longer offset and timestamp deltas: the
    request's counted bytes stay an upper bound of what is built (max.request.size holds)."""
    record = record_size(0, 0, payload_size(None, value_len, ()))
    acc = Accumulator(RECORD_BATCH_OVERHEAD + 50 * record, linger_s=1.0)
    for i in range(count):
        acc.append(
            "t",
            0,
            payload_size(None, value_len, ()),
            1_000 + i * step_ms,
            None,
            b"v" * value_len,
            NO_HEADERS,
            None,
            None,
            0.0,
        )
    assert len(acc.queues[("t", 0)]) > 1
    batch = acc.drain("t", 0, max_bytes=1 << 30, max_records=100_000)
    assert len(batch.records) == count
    built = build(batch.records, key=KEY, value=VALUE, headers=HEADERS, timestamp=TIMESTAMP)
    assert len(built) <= batch.wire_size
    # The bound is close: at most a few bytes a record.
    assert batch.wire_size - len(built) <= 4 * count
    # And a request limit holds for what is built.
    for _ in range(count):
        acc.append(
            "t",
            0,
            payload_size(None, value_len, ()),
            1_000,
            None,
            b"v" * value_len,
            NO_HEADERS,
            None,
            None,
            0.0,
        )
    limit = len(built) // 2
    limited = acc.drain("t", 0, max_bytes=limit, max_records=100_000)
    assert limited.wire_size <= limit


def test_a_batch_fills_up_to_batch_size_bytes_then_a_new_one_starts() -> None:
    record = record_size(0, 0, payload_size(None, 100, ()))  # 108 bytes for the first ones
    batch_size = RECORD_BATCH_OVERHEAD + 10 * record
    acc = Accumulator(batch_size, linger_s=1.0)
    batches = [_append(acc, 0, 100, 0.0)[0] for _ in range(25)]
    queue = acc.queues[("t", 0)]
    assert [len(b.records) for b in queue] == [10, 10, 5]
    assert all(b.size <= batch_size for b in queue)
    assert queue[0].full and queue[1].full and not queue[2].full
    assert batches[9] is queue[0] and batches[10] is queue[1]


def test_a_record_larger_than_batch_size_gets_a_batch_of_its_own() -> None:
    acc = Accumulator(batch_size=200, linger_s=1.0)
    _append(acc, 0, 10, 0.0)
    _append(acc, 0, 1000, 0.0)
    _append(acc, 0, 10, 0.0)
    assert [len(b.records) for b in acc.queues[("t", 0)]] == [1, 1, 1]


def test_a_partition_is_ready_when_full_or_after_linger_and_at_once_when_flushing() -> None:
    record = record_size(0, 0, payload_size(None, 100, ()))
    acc = Accumulator(RECORD_BATCH_OVERHEAD + 3 * record, linger_s=0.005)
    _append(acc, 0, 100, 10.0)
    ready, wait_s = acc.ready(10.001)
    assert ready == [] and wait_s == pytest.approx(0.004)
    assert acc.ready(10.005)[0] == [("t", 0)]
    for _ in range(2):
        _append(acc, 1, 100, 10.0)
    assert acc.ready(10.0)[0] == []
    _, news = _append(acc, 1, 100, 10.0)
    assert news, "a batch that fills wakes the sender"
    assert acc.ready(10.0)[0] == [("t", 1)]
    acc.flushing = True
    assert sorted(acc.ready(10.0)[0]) == [("t", 0), ("t", 1)]


def test_drain_takes_the_partitions_fresh_batches_up_to_the_request_limits() -> None:
    record = record_size(0, 0, payload_size(None, 100, ()))
    acc = Accumulator(RECORD_BATCH_OVERHEAD + 10 * record, linger_s=0.0)
    for _ in range(45):
        _append(acc, 0, 100, 0.0)
    first = acc.drain("t", 0, max_bytes=10_000, max_records=10_000)
    assert len(first.records) == 45
    for _ in range(45):
        _append(acc, 0, 100, 0.0)
    by_bytes = acc.drain("t", 0, max_bytes=RECORD_BATCH_OVERHEAD + 25 * record, max_records=100)
    assert len(by_bytes.records) == 20  # whole batches only: a third would pass the limit
    by_count = acc.drain("t", 0, max_bytes=1 << 20, max_records=15)
    assert len(by_count.records) == 10
    assert [len(b.records) for b in acc.queues[("t", 0)]] == [10, 5]


def test_a_retried_batch_goes_back_first_alone_and_in_sequence_order() -> None:
    acc = Accumulator(batch_size=1 << 14, linger_s=0.0)
    _append(acc, 0, 10, 0.0)
    sent_a = acc.drain("t", 0, 1 << 20, 100)
    _append(acc, 0, 10, 0.0)
    sent_b = acc.drain("t", 0, 1 << 20, 100)
    sent_a.base_sequence, sent_b.base_sequence = 0, 1
    sent_a.attempts = sent_b.attempts = 1
    _append(acc, 0, 10, 0.0)  # fresh, behind the retries
    acc.reenqueue(sent_b)
    acc.reenqueue(sent_a)
    queue = acc.queues[("t", 0)]
    assert list(queue)[:2] == [sent_a, sent_b]
    assert acc.drain("t", 0, 1 << 20, 100) is sent_a
    assert acc.drain("t", 0, 1 << 20, 100) is sent_b
    # A new record joins a fresh batch, never one already sent.
    _append(acc, 0, 10, 0.0)
    assert len(queue) == 1 and not queue[0].sent and len(queue[0].records) == 2


# -- the sticky partitioner -------------------------------------------------------------------


def test_keyless_records_stick_to_one_partition_until_batch_size_bytes_went_there() -> None:
    sticky = StickyPartitioner(batch_size=1000, adaptive=False, rng=random.Random(7))

    def candidates(_metadata: object) -> tuple[list[int], list[int]]:
        return [0, 1, 2, 3], [0, 0, 0, 0]

    first = sticky.partition("t", 4, candidates, None)
    for _ in range(9):
        sticky.update("t", first, 100, False, 4, candidates, None)
        assert sticky.partition("t", 4, candidates, None) == first
    # 1000 bytes, but the batch is not full: Kafka switches only when a new batch would start.
    sticky.update("t", first, 100, False, 4, candidates, None)
    assert sticky.partition("t", 4, candidates, None) == first
    sticky.update("t", first, 100, True, 4, candidates, None)
    chosen = [sticky.partition("t", 4, candidates, None)]
    # Twice batch.size switches regardless.
    for _ in range(40):
        current = sticky.partition("t", 4, candidates, None)
        sticky.update("t", current, 100, False, 4, candidates, None)
        chosen.append(sticky.partition("t", 4, candidates, None))
    assert len(set(chosen)) > 1


def test_the_sticky_partitioner_picks_only_partitions_with_a_leader() -> None:
    sticky = StickyPartitioner(batch_size=10, adaptive=True, rng=random.Random(1))
    seen = set()
    for _ in range(200):
        p = sticky.partition("t", 6, lambda _: ([1, 4], [0] * 6), None)
        seen.add(p)
        sticky.update("t", p, 100, True, 6, lambda _: ([1, 4], [0] * 6), None)
    assert seen == {1, 4}


def test_adaptive_partitioning_sends_fewer_records_to_a_partition_whose_queue_is_long() -> None:
    sticky = StickyPartitioner(batch_size=10, adaptive=True, rng=random.Random(3))
    counts = [0, 0]
    for _ in range(2000):
        p = sticky.partition("t", 2, lambda _: ([0, 1], [9, 0]), None)
        counts[p] += 1
        sticky.update("t", p, 100, True, 2, lambda _: ([0, 1], [9, 0]), None)
    # Weights 1 and 10.
    assert counts[0] < counts[1] / 5


# -- backoff ------------------------------------------------------------------------------------


def test_retry_backoff_doubles_from_retry_backoff_ms_with_jitter_up_to_the_max() -> None:
    rng = random.Random(11)
    for attempt, nominal in enumerate([100, 200, 400, 800]):
        waits = [backoff_ms(attempt, 100, 1000, rng) for _ in range(200)]
        assert nominal * 0.8 <= min(waits) and max(waits) <= nominal * 1.2
        assert max(waits) - min(waits) > nominal * 0.2, "jittered"
    assert all(backoff_ms(a, 100, 1000, rng) <= 1000 for a in range(4, 40))
    assert backoff_ms(9, 100, 1000, rng) == 1000
    assert backoff_ms(3, 0, 1000, rng) == 0


# -- config --------------------------------------------------------------------------------------


def test_kafka_producer_properties_are_read_with_kafkas_defaults() -> None:
    config = ProducerConfig.from_properties({**BS, "linger.ms": "7", "acks": "-1"})
    assert (config.linger_ms, config.acks, config.batch_size) == (7, "all", 16384)
    assert config.enable_idempotence and config.retries == 2**31 - 1
    assert (config.delivery_timeout_ms, config.request_timeout_ms) == (120_000, 30_000)
    assert (config.retry_backoff_ms, config.retry_backoff_max_ms) == (100, 1000)
    assert config.max_request_size == 1_048_576


def test_keywords_override_properties_and_security_properties_become_client_security() -> None:
    config = ProducerConfig.from_properties(
        {**BS, "security.protocol": "SASL_PLAINTEXT", "sasl.username": "u", "sasl.password": "p"},
        linger_ms=0,
    )
    assert config.linger_ms == 0
    assert config.security == ClientSecurity(protocol="SASL_PLAINTEXT", username="u", password="p")


@pytest.mark.parametrize(
    "props, message",
    [
        ({"lingr.ms": "5"}, "Unknown producer config: lingr.ms"),
        ({"linger.ms": "soon"}, "Invalid value soon for configuration linger.ms: Not a number"),
        ({"batch.size": "-1"}, "Value must be at least 0"),
        ({"acks": "2"}, "String must be one of: all, -1, 0, 1"),
        ({"enable.idempotence": "yes"}, "Expected value to be either true or false"),
        (
            {"enable.idempotence": "true", "acks": "1"},
            "Must set acks to all in order to use the idempotent producer.",
        ),
        (
            {"enable.idempotence": "true", "max.in.flight.requests.per.connection": "6"},
            "Must set max.in.flight.requests.per.connection to at most 5",
        ),
        ({"enable.idempotence": "true", "retries": "0"}, "Must set retries to non-zero"),
        (
            {"delivery.timeout.ms": "1000", "request.timeout.ms": "30000"},
            "delivery.timeout.ms should be equal to or larger than linger.ms + request.timeout.ms",
        ),
        (
            {"compression.type": "GZIP"},
            "Invalid value GZIP for configuration compression.type: String must be one of: "
            "none, gzip, snappy, lz4, zstd",
        ),
        ({"value.serializer": "com.example.Avro"}, "only StringSerializer and ByteArraySerializer"),
        ({"ssl.keystore.location": "/k"}, "ssl.keystore.location is not supported"),
    ],
)
def test_a_setting_the_producer_cannot_use_is_refused_by_name(
    props: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigException, match=message.replace(".", r"\.").replace("+", r"\+")):
        ProducerConfig.from_properties({**BS, **props})


def test_missing_bootstrap_servers_is_kafkas_message() -> None:
    with pytest.raises(ConfigException, match='Missing required configuration "bootstrap.servers"'):
        ProducerConfig.from_properties({"acks": "all"})


def test_idempotence_not_asked_for_is_turned_off_by_settings_it_cannot_keep() -> None:
    assert not ProducerConfig.from_properties({**BS, "acks": "1"}).enable_idempotence
    assert not ProducerConfig.from_properties({**BS, "retries": "0"}).enable_idempotence
    assert ProducerConfig.from_properties(BS).enable_idempotence


def test_a_run_appended_at_once_is_batched_as_record_by_record() -> None:
    payloads = [payload_size(None, n % 250, ()) for n in range(700)]
    one_by_one = Accumulator(batch_size=4000, linger_s=1.0)
    for index, payload in enumerate(payloads):
        one_by_one.append("t", 0, payload, 7_000, None, None, NO_HEADERS, None, index, 0.0)
    runs = Accumulator(batch_size=4000, linger_s=1.0)
    index = 0
    while index < len(payloads):
        index, _size, _batch, _news = runs.append_run(
            "t", 0, payloads, [None] * len(payloads), index, len(payloads), 7_000, None, 0.0
        )
    expected = [(b.size, len(b.records), b.full) for b in one_by_one.queues[("t", 0)]]
    assert [(b.size, len(b.records), b.full) for b in runs.queues[("t", 0)]] == expected
    assert [r[CALLBACK] for b in runs.queues[("t", 0)] for r in b.records] == list(range(700))


def test_runs_stamped_later_than_their_batch_count_the_bytes_they_are_built_into() -> None:
    """A run joining a batch started earlier has timestamp deltas (two bytes from 64 ms)."""
    values = [b"v" * (n % 120) for n in range(900)]
    payloads = [payload_size(None, len(v), ()) for v in values]
    acc = Accumulator(batch_size=1 << 20, linger_s=1.0)
    index = 0
    for run, step_ms in enumerate([0, 30, 100, 5000, 70_000, 9_000_000]):
        end = min(len(values), index + 150)
        while index < end:
            index, _size, _batch, _news = acc.append_run(
                "t", 0, payloads, list(values), index, end, 7_000 + step_ms + run, None, 0.0
            )
    (batch,) = acc.queues[("t", 0)]
    built = build(batch.records, key=KEY, value=VALUE, headers=HEADERS, timestamp=TIMESTAMP)
    assert batch.size == batch.wire_size == len(built)


# -- keys, values and headers as the batch carries them ------------------------------------------


def test_keys_and_values_become_their_bytes() -> None:
    assert as_bytes("h\u00e9", "value") == b"h\xc3\xa9"
    assert as_bytes(b"\xff\x00", "value") == b"\xff\x00"
    assert as_bytes(bytearray(b"ab"), "value") == b"ab"
    assert as_bytes(memoryview(b"cd"), "key") == b"cd"
    assert as_bytes(None, "key") is None
    with pytest.raises(TypeError, match="value must be bytes, str or None, not int"):
        as_bytes(5, "value")


def test_headers_keep_order_repeats_and_any_bytes() -> None:
    assert parse_headers([("a", "1"), ("a", b"2"), ("n", None), ("bin", b"\xff")]) == [
        ("a", b"1"),
        ("a", b"2"),
        ("n", None),
        ("bin", b"\xff"),
    ]
    assert parse_headers({"k": "v"}) == [("k", b"v")]
    with pytest.raises(TypeError, match="a header name must be a str"):
        parse_headers([(b"k", b"v")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="header 'k' must be bytes, str or None, not int"):
        parse_headers([("k", 5)])
    with pytest.raises(ValueError):
        parse_headers([("\ud800", b"v")])  # no UTF-8 form: refused at send, not at build


def test_a_split_keeps_order_bytes_counted_and_sequences_and_builds_within_its_counts() -> None:
    acc = Accumulator(batch_size=1 << 20, linger_s=1.0)
    for i in range(400):
        value = b"v" * (i % 300)
        key = None if i % 3 else b"k%d" % i
        acc.append(
            "t",
            0,
            payload_size(None if key is None else len(key), len(value), ()),
            1_000 + 7 * i,
            key,
            value,
            NO_HEADERS,
            None,
            i,
            0.0,
        )
    batch = acc.drain("t", 0, 1 << 30, 100_000)
    batch.base_sequence, batch.producer_id, batch.attempts = 2**31 - 100, 9, 1
    parts = acc.split(batch, now_s=5.0)
    assert len(parts) >= 2
    assert [r[CALLBACK] for p in parts for r in p.records] == list(range(400))
    assert sum(p.record_bytes for p in parts) == batch.record_bytes  # buffer.memory released
    counts = [len(p.records) for p in parts]
    assert [p.base_sequence for p in parts] == [
        (2**31 - 100 + sum(counts[:i])) % 2**31 for i in range(len(parts))
    ]
    assert parts[-1].base_sequence is not None and parts[-1].base_sequence < 400  # wrapped
    for part in parts:
        assert part.sent and part.producer_id == 9 and part.retry_at_s == 5.0
        built = build(part.records, key=KEY, value=VALUE, headers=HEADERS, timestamp=TIMESTAMP)
        assert len(built) == part.wire_size <= batch.wire_size // 2
    assert list(acc.queues[("t", 0)]) == parts
