"""The cleaner's batch filter (storage.clean_filter): Kafka's record and batch retention rules,
and the bytes of a rebuilt or emptied batch, field by field as Kafka's builder writes them."""

from __future__ import annotations

import struct

import crc32c as _crc32c

from storage.batch import (
    CONTROL_MASK,
    BatchHeader,
    NewRecord,
    build_batch,
    check_batch,
    decode_batch,
    read_header,
)
from storage.clean_filter import DELETE_HORIZON_MASK, FilterResult, filter_batch

T = 1_700_000_000_000
NOW = T + 60_000
RETENTION = 86_400_000


class Map:
    """A stand-in offset map: the filter reads latest_offset and get()."""

    def __init__(self, offsets: dict[bytes, int], latest: int) -> None:
        self.offsets = offsets
        self.latest_offset = latest

    def get(self, key: bytes) -> int | None:
        return self.offsets.get(key)


def run(
    batch: bytes,
    offset_map: Map,
    *,
    now: int = NOW,
    producers: dict[int, int] | None = None,
    upper: int = 10**9,
) -> tuple[BatchHeader, FilterResult]:
    header, result = filter_batch(
        batch,
        0,
        offset_map=offset_map,
        now_ms=now,
        delete_retention_ms=RETENTION,
        last_data_offsets=producers or {},
        upper_bound_offset=upper,
    )
    return header, result


# -- an encoder written from Kafka's rules, independent of the code under test --------------


def zigzag(value: int) -> bytes:
    zz = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zz > 0x7F:
        out.append((zz & 0x7F) | 0x80)
        zz >>= 7
    out.append(zz)
    return bytes(out)


def kafka_record(offset_delta: int, ts_delta: int, key: bytes | None, value: bytes | None) -> bytes:
    body = b"\x00" + zigzag(ts_delta) + zigzag(offset_delta)
    body += zigzag(-1) if key is None else zigzag(len(key)) + key
    body += zigzag(-1) if value is None else zigzag(len(value)) + value
    body += zigzag(0)  # no headers
    return zigzag(len(body)) + body


def kafka_batch(
    *,
    base_offset: int,
    leader_epoch: int,
    attributes: int,
    last_offset_delta: int,
    base_timestamp: int,
    max_timestamp: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    records: list[bytes],
) -> bytes:
    crc_part = struct.pack(
        ">hiqqqhii",
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    ) + b"".join(records)
    length = 4 + 1 + 4 + len(crc_part)  # leader epoch, magic, crc, then what the CRC covers
    crc = _crc32c.crc32c(crc_part)
    return struct.pack(">qiibI", base_offset, length, leader_epoch, 2, crc) + crc_part


def original() -> bytes:
    """Offsets 100-103 of producer 7 (epoch 3, base sequence 40), leader epoch 5:
    a=1, b=tombstone, a=2, c=3."""
    return build_batch(
        [
            NewRecord(b"a", b"1", T),
            NewRecord(b"b", None, T + 5),
            NewRecord(b"a", b"2", T + 10),
            NewRecord(b"c", b"3", T + 3),
        ],
        base_offset=100,
        partition_leader_epoch=5,
        producer_id=7,
        producer_epoch=3,
        base_sequence=40,
    )


# -- retention --------------------------------------------------------------------------------


def test_a_batch_that_keeps_every_record_is_copied_byte_for_byte() -> None:
    batch = build_batch([NewRecord(b"a", b"1", T), NewRecord(b"b", b"2", T)], base_offset=10)
    _h, result = run(batch, Map({b"a": 10, b"b": 11}, latest=11))
    assert result == FilterResult(batch, 2, 2, 0, True)


def test_records_after_the_maps_latest_offset_are_kept_even_without_a_key() -> None:
    batch = build_batch([NewRecord(None, b"x", T), NewRecord(b"a", b"1", T)], base_offset=10)
    _h, result = run(batch, Map({b"a": 99}, latest=9))
    assert result.copied and result.data == batch


def test_an_older_record_of_a_key_goes_and_a_key_the_map_lacks_stays() -> None:
    batch = build_batch([NewRecord(b"a", b"1", T), NewRecord(b"z", b"9", T)], base_offset=10)
    _h, result = run(batch, Map({b"a": 50}, latest=60))
    _, records = decode_batch(result.data)
    assert [(r.offset, r.key) for r in records] == [(11, b"z")]


def test_keyless_records_below_the_latest_offset_are_dropped_and_counted() -> None:
    batch = build_batch([NewRecord(None, b"x", T), NewRecord(b"a", b"1", T)], base_offset=10)
    _h, result = run(batch, Map({b"a": 11}, latest=20))
    assert (result.records_read, result.records_kept, result.keyless_dropped) == (2, 1, 1)


def test_an_emptied_batch_goes() -> None:
    batch = build_batch([NewRecord(b"a", b"1", T)], base_offset=10)
    _h, result = run(batch, Map({b"a": 11}, latest=20))
    assert result.data == b"" and result.records_kept == 0


def test_a_control_batch_is_copied_whole() -> None:
    batch = bytearray(build_batch([NewRecord(b"\x00\x00\x00\x00", b"", T)], base_offset=10))
    struct.pack_into(">h", batch, 21, CONTROL_MASK)
    struct.pack_into(">I", batch, 17, _crc32c.crc32c(bytes(batch[21:])))
    _h, result = run(bytes(batch), Map({}, latest=20))
    assert result.copied and result.data == bytes(batch)


# -- the rebuilt batch, against Kafka's builder ------------------------------------------------


def test_a_rebuilt_batch_is_what_kafkas_builder_writes_with_a_new_delete_horizon() -> None:
    # The map says a's latest is 102: offset 100 goes; the tombstone b (101) stays and needs a
    # delete horizon; c stays.
    _h, result = run(original(), Map({b"a": 102, b"b": 101, b"c": 103}, latest=103))
    horizon = NOW + RETENTION
    expected = kafka_batch(
        base_offset=100,
        leader_epoch=5,
        attributes=DELETE_HORIZON_MASK,
        last_offset_delta=3,
        base_timestamp=horizon,  # the base timestamp IS the horizon
        max_timestamp=T + 10,  # the largest kept record's
        producer_id=7,
        producer_epoch=3,
        base_sequence=40,
        records=[
            kafka_record(1, T + 5 - horizon, b"b", None),
            kafka_record(2, T + 10 - horizon, b"a", b"2"),
            kafka_record(3, T + 3 - horizon, b"c", b"3"),
        ],
    )
    assert result.data == expected
    header = check_batch(result.data)  # the CRC covers attributes..end
    assert header.last_offset == 103 and header.record_count == 3
    _, records = decode_batch(result.data)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in records] == [
        (101, T + 5, b"b", None),
        (102, T + 10, b"a", b"2"),
        (103, T + 3, b"c", b"3"),
    ]


def test_a_rebuilt_batch_without_tombstones_takes_its_first_kept_records_timestamp() -> None:
    _h, result = run(original(), Map({b"a": 102, b"b": 200, b"c": 103}, latest=103))
    expected = kafka_batch(
        base_offset=100,
        leader_epoch=5,
        attributes=0,
        last_offset_delta=3,
        base_timestamp=T + 10,
        max_timestamp=T + 10,
        producer_id=7,
        producer_epoch=3,
        base_sequence=40,
        records=[kafka_record(2, 0, b"a", b"2"), kafka_record(3, -7, b"c", b"3")],
    )
    assert result.data == expected


def test_a_batch_with_a_horizon_keeps_it_and_its_tombstones_until_then() -> None:
    _h, first = run(original(), Map({b"a": 102, b"b": 101, b"c": 103}, latest=103))
    horizon = NOW + RETENTION
    # Before the horizon: every record stays, the batch is copied as it is.
    _h, again = run(first.data, Map({b"a": 102, b"b": 101, b"c": 103}, latest=103), now=horizon - 1)
    assert again.copied and again.data == first.data
    # At the horizon the tombstone goes; the rebuilt batch keeps the same horizon.
    _h, later = run(first.data, Map({b"a": 102, b"b": 101, b"c": 103}, latest=103), now=horizon)
    header = read_header(later.data)
    assert header.attributes & DELETE_HORIZON_MASK and header.base_timestamp == horizon
    _, records = decode_batch(later.data)
    assert [r.offset for r in records] == [102, 103]


def test_a_tombstone_whose_key_is_newer_elsewhere_goes_at_once() -> None:
    _h, result = run(original(), Map({b"a": 102, b"b": 500, b"c": 103}, latest=103))
    assert not read_header(result.data).attributes & DELETE_HORIZON_MASK


# -- empty batches -----------------------------------------------------------------------------


def expected_empty(max_timestamp: int) -> bytes:
    return kafka_batch(
        base_offset=100,
        leader_epoch=5,
        attributes=0,
        last_offset_delta=3,
        base_timestamp=-1,
        max_timestamp=max_timestamp,
        producer_id=7,
        producer_epoch=3,
        base_sequence=40,
        records=[],
    )


def test_an_active_producers_last_batch_stays_as_a_header() -> None:
    gone = Map({b"a": 900, b"b": 900, b"c": 900}, latest=1000)
    _h, result = run(original(), gone, producers={7: 103})
    assert result.data == expected_empty(T + 10)
    header = check_batch(result.data)
    assert (header.base_offset, header.last_offset, header.record_count) == (100, 103, 0)
    assert header.last_sequence == 43  # the producer's sequence survives
    # Not its last batch, or another producer's: the batch goes.
    assert run(original(), gone, producers={7: 200})[1].data == b""
    assert run(original(), gone, producers={8: 103})[1].data == b""


def test_the_batch_that_ends_the_cleaning_round_stays_as_a_header() -> None:
    gone = Map({b"a": 900, b"b": 900, b"c": 900}, latest=1000)
    _h, result = run(original(), gone, upper=104)
    assert result.data == expected_empty(T + 10)


def test_an_empty_batch_of_a_producer_no_longer_active_goes() -> None:
    gone = Map({b"a": 900, b"b": 900, b"c": 900}, latest=1000)
    _h, emptied = run(original(), gone, producers={7: 103})
    _h, result = run(emptied.data, gone)
    assert result.data == b"" and result.records_read == 0
